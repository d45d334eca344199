"""Issue 13, item 7: a series complete by its own count starts its series-level rules before the
study is stable; a series that announces nothing waits for Orthanc's StableAge; the study stable
later makes no second job for the series that started early."""
import glob
import os

import pydicom

from conftest import SHARED_DATA
from helpers import JOB_TIMEOUT, jobs
from orthanc import send_dicom

STUDY = os.path.join(SHARED_DATA, "ct-chest-lung-dx-a0001")
RULES = {"rules": [{"id": "ct-series", "level": "series", "match": {"attribute": "Modality", "equals": "CT"},
                    "action": {"pipeline": "volume-stats", "device": "cpu"}}]}


def announced_copy(folder, workdir):
    """The series with ImagesInAcquisition set to its instance count, as many scanners send it."""
    out = os.path.join(workdir, "announced")
    os.makedirs(out)
    paths = sorted(glob.glob(os.path.join(folder, "*")))
    for i, path in enumerate(paths):
        ds = pydicom.dcmread(path)
        ds.ImagesInAcquisition = len(paths)
        ds.save_as(os.path.join(out, f"{i:03d}.dcm"))
    return out


def test_a_series_complete_by_its_count_starts_before_stable_age(orthanc_factory, job_db, workdir):
    orthanc = orthanc_factory({"Database": job_db[1], "Workers": 1}, stable_age=15).start()
    orthanc.put("/procnode/rules", RULES)
    send_dicom(orthanc, [announced_copy(os.path.join(STUDY, "lung-kernel"), workdir)])
    [early] = orthanc.wait_for(lambda: jobs(orthanc) or None, 10, "a job before the study is stable")
    study = orthanc.get(f"/studies/{early['study']}")
    assert study["IsStable"] is False, "the job was made before StableAge"
    assert early["series"] is not None
    log = open(orthanc.log_path).read()
    assert "series complete by its own count (64 of 64): started before the study is stable" in log

    # The other kernel announces nothing: its job waits until the study is stable.
    send_dicom(orthanc, [os.path.join(STUDY, "standard-kernel")])
    later = orthanc.wait_for(lambda: (lambda js: js if len(js) == 2 else None)(jobs(orthanc)), JOB_TIMEOUT,
                             "the second series' job once the study is stable")
    # Its job came from Orthanc's stable-series event, not from an early start (the study turns
    # stable at about the same moment: the same StableAge after the same last instance).
    assert open(orthanc.log_path).read().count("started before the study is stable") == 1, "the second series started early"
    orthanc.wait_for(lambda: orthanc.get(f"/studies/{early['study']}")["IsStable"] or None, 30, "the study stable")
    series = [j["series"] for j in later]
    assert len(set(series)) == 2 and series.count(early["series"]) == 1, "stable later: still one job for the early series"
    finished = orthanc.wait_for(lambda: (lambda js: js if all(j["state"] == "done" for j in js) else None)(jobs(orthanc)),
                                JOB_TIMEOUT, "both jobs done")
    assert len(finished) == 2


def test_early_start_can_be_turned_off(orthanc_factory, job_db, workdir):
    orthanc = orthanc_factory({"Database": job_db[1], "Workers": 0, "EarlyStart": False}, stable_age=4).start()
    orthanc.put("/procnode/rules", RULES)
    send_dicom(orthanc, [announced_copy(os.path.join(STUDY, "lung-kernel"), workdir)])
    [job] = orthanc.wait_for(lambda: jobs(orthanc) or None, JOB_TIMEOUT, "the job at StableAge")
    assert orthanc.get(f"/studies/{job['study']}")["IsStable"] is True
    assert "started before the study is stable" not in open(orthanc.log_path).read()
