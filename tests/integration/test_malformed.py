"""Bad input among good: the good study is processed, the bad one is rejected or its job fails
with a message naming it, and Orthanc keeps running. Bad configuration stops start-up clearly."""
import glob
import os

import pydicom
from pydicom.uid import generate_uid

from conftest import CHEST_CT, SHARED_DATA
from helpers import jobs, result_series, wait_jobs_finished
from orthanc import send_dicom

MALFORMED = ["MR_truncated.dcm", "badVR.dcm", "rtplan_truncated.dcm", "no_meta.dcm", "meta_missing_tsyntax.dcm",
             "ExplVR_LitEndNoMeta.dcm"]


def broken_study(folder):
    """Three chest CT slices as a new study; the middle one's PixelData cut to 1000 bytes."""
    os.makedirs(folder)
    study, series = generate_uid(), generate_uid()
    broken_uid = None
    for i, path in enumerate(sorted(glob.glob(os.path.join(CHEST_CT, "*")))[:3]):
        ds = pydicom.dcmread(path)
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.PatientID = "BROKEN-1"
        if i == 1:
            ds.PixelData = ds.PixelData[:1000]
            broken_uid = ds.SOPInstanceUID
        ds.save_as(os.path.join(folder, f"slice{i}.dcm"), write_like_original=True)
    return broken_uid


def test_bad_files_among_good_ones_fail_clearly_and_the_good_study_is_processed(orthanc_factory, job_db, workdir):
    orthanc = orthanc_factory({"Database": job_db[1], "Workers": 2}).start()
    broken_uid = broken_study(os.path.join(workdir, "broken"))
    corpus = [os.path.join(SHARED_DATA, "debian-pydicom-test-files", name) for name in MALFORMED]
    sent = send_dicom(orthanc, [CHEST_CT, os.path.join(workdir, "broken")] + corpus, allow_failures=True)
    print("\nstorescu said:\n" + sent.stderr[-2000:])

    finished = wait_jobs_finished(orthanc, 2)
    assert orthanc.alive()
    [broken_instance] = [match["ID"] for match in orthanc.post("/tools/lookup", broken_uid.encode())]
    by_state = {}
    for job in finished:
        by_state.setdefault(job["state"], []).append(job)
        if job["state"] == "failed":
            assert job["error"], job
            assert job["error"].startswith("instance ") or "study" in job["error"], job["error"]
    [good] = [j for j in by_state["done"] if j["result"]["instances"] == 64]
    assert len(result_series(orthanc, good["study"])) == 1

    [broken] = [j for j in by_state["failed"] if broken_instance in j["error"]]
    assert "PixelData holds 1000 bytes, expected 524288" in broken["error"]
    assert broken["attempts"] == 1, "bad input is not retried"
    assert result_series(orthanc, broken["study"]) == []
    assert orthanc.get("/procnode/status")["database"]["ok"]


def test_a_job_database_newer_than_the_binary_stops_orthanc_with_a_clear_error(orthanc_factory, job_db, pg):
    orthanc = orthanc_factory({"Database": job_db[1]}).start()  # creates the schema
    orthanc.stop()
    pg.psql(job_db[0], "INSERT INTO procnode_schema_migrations (version, name) VALUES (999, '0999_future')")
    again = orthanc_factory({"Database": job_db[1]})
    assert again.start(expect_failure=True) != 0
    assert "job database schema is at version 999, newer than this procnode" in again.log_tail()


def test_a_bad_configuration_stops_orthanc_naming_the_key(orthanc_factory, job_db):
    orthanc = orthanc_factory({"Database": job_db[1], "Workers": "two"})
    assert orthanc.start(expect_failure=True) != 0
    assert "ProcNode.Workers: must be an integer from 0 to 64" in orthanc.log_tail()


def test_an_unreachable_database_stops_orthanc_saying_so(orthanc_factory):
    orthanc = orthanc_factory({"Database": "postgresql://nobody@127.0.0.1:1/none?connect_timeout=2"})
    assert orthanc.start(expect_failure=True) != 0
    assert "job database unreachable" in orthanc.log_tail()
