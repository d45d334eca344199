"""A chest CT sent by storescu produces one Encapsulated PDF result series in its study."""
import glob
import os
import time

import numpy
import pydicom

from conftest import CHEST_CT
from helpers import dciodvfy_errors, jobs, result_series, run, save, wait_jobs_finished
from orthanc import find_series, send_dicom


def reference_figures(folder):
    """Voxel count, min, max and mean in HU, computed independently with pydicom + numpy."""
    values = []
    for path in sorted(glob.glob(os.path.join(folder, "*"))):
        ds = pydicom.dcmread(path)
        values.append(ds.pixel_array.astype(numpy.float64) * float(ds.RescaleSlope) + float(ds.RescaleIntercept))
    volume = numpy.stack(values)
    return volume.size, volume.min(), volume.max(), volume.mean()


def test_chest_ct_gives_one_validated_result_series_and_one_job(orthanc_factory, job_db, workdir, pg):
    orthanc = orthanc_factory({"Database": job_db[1], "Workers": 2}).start()
    send_dicom(orthanc, [CHEST_CT])
    last_store = time.time()

    [job] = wait_jobs_finished(orthanc, 1)
    assert job["state"] == "done", job
    result = result_series(orthanc, job["study"])
    assert len(result) == 1
    seconds = time.time() - last_store
    print(f"\nlast C-STORE -> result in Orthanc and job done: {seconds:.2f} s "
          f"(StableAge 2 s; pipeline timings {job['result']['timings_ms']})")

    # The figures match an independent computation.
    count, lo, hi, mean = reference_figures(CHEST_CT)
    stats = job["result"]["measurements"]
    assert stats["count"] == count == 512 * 512 * 64
    assert stats["min"] == lo and stats["max"] == hi
    assert abs(stats["mean"] - mean) < 1e-6
    assert job["result"]["units"] == "HU"
    assert job["device"] == "cpu" or job["device"].startswith("cuda:")

    # The result: one Encapsulated PDF in the source study, valid to dciodvfy, with the figures.
    [series] = result
    assert series["MainDicomTags"]["Modality"] == "DOC"
    assert len(series["Instances"]) == 1
    path = save(orthanc, series["Instances"][0], os.path.join(workdir, "result.dcm"))
    assert dciodvfy_errors(path) == []
    ds = pydicom.dcmread(path)
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.104.1"
    source = pydicom.dcmread(sorted(glob.glob(os.path.join(CHEST_CT, "*")))[0])
    assert ds.StudyInstanceUID == source.StudyInstanceUID
    assert ds.PatientID == source.PatientID
    pdf = os.path.join(workdir, "result.pdf")
    with open(pdf, "wb") as f:
        f.write(ds.EncapsulatedDocument[:int(ds.EncapsulatedDocumentLength)])
    text = run(["pdftotext", pdf, "-"]).stdout
    assert "16 777 216" in text, text
    assert f"{mean:.2f} HU" in text, text
    assert f"job {job['id']}" in text, text
    # A clinical report names its patient (anonymized routes show the pseudonym: test_anonymize).
    assert f"ID {source.PatientID}" in " ".join(text.split()), text

    # C-FIND sees the result series beside the CT.
    found = find_series(orthanc, source.StudyInstanceUID, workdir)
    assert sorted(f["Modality"] for f in found) == ["CT", "DOC"]

    # Our own result made the study unstable again: still one job after it settles.
    time.sleep(orthanc.stable_age + 3)
    assert len(jobs(orthanc)) == 1

    # The same study sent again, without new instances: still one job, one result.
    send_dicom(orthanc, [CHEST_CT])
    time.sleep(orthanc.stable_age + 3)
    assert len(jobs(orthanc)) == 1
    assert len(result_series(orthanc, job["study"])) == 1
    status = orthanc.get("/procnode/status")
    assert status["queue"]["done"] == 1 and status["queue"]["failed"] == 0


def test_status_and_jobs_endpoints_answer_clearly(orthanc_factory, job_db):
    orthanc = orthanc_factory({"Database": job_db[1], "Workers": 3}).start()
    status = orthanc.get("/procnode/status")
    assert status["version"] == "0.1.0"
    assert status["workers"] == 3
    assert isinstance(status["build"]["cuda"], bool)
    assert status["gpu"]["found"] or status["gpu"]["reason"]
    assert status["queue"] == {"queued": 0, "running": 0, "done": 0, "failed": 0, "cancelled": 0}
    assert status["database"]["ok"] is True

    code, body = orthanc.get_status("/procnode/jobs?state=finished")
    assert code == 400 and "state 'finished'" in body["error"]
    code, body = orthanc.get_status("/procnode/jobs/424242")
    assert code == 404 and "job 424242 does not exist" in body["error"]
    code, body = orthanc.get_status("/procnode/jobs/abc")
    assert code == 400
    assert orthanc.get("/procnode/jobs") == []
