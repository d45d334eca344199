"""GET /procnode/series/{id}/nifti: the series as gzip NIfTI, equal to dcm2niix's conversion."""
import os
import subprocess
import sys

from conftest import CHEST_CT, SHARED_DATA
from orthanc import send_dicom

JUDGE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "judges", "compare_nifti.py")


def series_by_description(orthanc):
    return {s["MainDicomTags"].get("SeriesDescription", ""): s["ID"]
            for study in orthanc.get("/studies") for s in orthanc.get(f"/studies/{study}/series")}


def test_series_nifti_equals_dcm2niix_and_refusals_are_clear(orthanc_factory, job_db, workdir):
    orthanc = orthanc_factory({"Database": job_db[1], "Workers": 0}).start()  # conversion only, no jobs run
    send_dicom(orthanc, [CHEST_CT, os.path.join(SHARED_DATA, "dcm_qa_ct", "In", "GE")])
    series = series_by_description(orthanc)

    path = os.path.join(workdir, "ct.nii.gz")
    with open(path, "wb") as f:
        f.write(orthanc.get_raw(f"/procnode/series/{series['5mm']}/nifti"))
    reference = os.path.join(workdir, "ref")
    os.makedirs(reference)
    subprocess.run(["dcm2niix", "-z", "n", "-b", "n", "-o", reference, "-f", "ct", CHEST_CT], check=True,
                   capture_output=True, timeout=300)
    judged = subprocess.run([sys.executable, JUDGE, path, os.path.join(reference, "ct.nii")], capture_output=True,
                            text=True, timeout=300)
    assert judged.returncode == 0, judged.stdout

    # The tilted CT with two spacings answers with its first evenly spaced, tilt-corrected part.
    tilted = [sid for description, sid in series.items() if description != "5mm"][0]
    tilted_path = os.path.join(workdir, "tilted.nii.gz")
    with open(tilted_path, "wb") as f:
        f.write(orthanc.get_raw(f"/procnode/series/{tilted}/nifti"))
    import nibabel
    assert nibabel.load(tilted_path).shape == (512, 548, 14)
    with open(tilted_path, "wb") as f:
        f.write(orthanc.get_raw(f"/procnode/series/{tilted}/nifti?part=2"))
    assert nibabel.load(tilted_path).shape == (512, 575, 14), "the 7 mm part"
    code, body = orthanc.get_status(f"/procnode/series/{tilted}/nifti?part=3")
    assert code == 404 and "has 2 part(s)" in body["error"], body

    with open(os.path.join(SHARED_DATA, "debian-pydicom-test-files", "rtplan.dcm"), "rb") as f:
        plan = orthanc.post("/instances", f.read())
    plan_series = orthanc.get(f"/instances/{plan['ID']}")["ParentSeries"]
    code, body = orthanc.get_status(f"/procnode/series/{plan_series}/nifti")
    assert code == 400 and "no PixelData" in body["error"], body
    code, body = orthanc.get_status("/procnode/series/no-such-series/nifti")
    assert code == 404, body
    assert orthanc.alive()
