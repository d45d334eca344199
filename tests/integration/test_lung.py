"""The lung processor end to end: a rule sends the chest CT (storescu) to lung-emphysema in
Orthanc, its measurements reach the job record and the report; the same study through the CLI
gives the same figures and a label NIfTI on the series' own grid (judged by nibabel against
dcm2niix run live); a rule that sends an MR to it fails the job at once with the reason."""
import glob
import json
import os

import nibabel
import numpy
import pydicom

from conftest import CHEST_CT, SHARED_DATA
from helpers import dciodvfy_errors, result_series, run, save, wait_jobs_finished
from orthanc import send_dicom

BRAIN_MR = os.path.join(SHARED_DATA, "mr-brain-sag-mprage")

RULES = {
    "rules": [
        {"id": "chest-ct", "description": "Chest CT to the lung processor",
         "match": {"all": [{"attribute": "Modality", "equals": "CT"},
                           {"attribute": "StudyDescription", "contains": "chest", "case_sensitive": False}]},
         "action": {"pipeline": "lung-emphysema", "parameters": {"variant": "fast"}, "device": "auto"}},
        {"id": "mr-misrouted", "description": "A mistake: MR to the lung processor",
         "match": {"attribute": "Modality", "equals": "MR"},
         "action": {"pipeline": "lung-emphysema"}},
    ]
}


def test_a_chest_rule_runs_lung_emphysema_and_records_the_measurements(orthanc_factory, job_db, workdir, cli_path):
    orthanc = orthanc_factory({"Database": job_db[1], "Workers": 2}).start()
    code, body = orthanc.get_status("/procnode/rules", "PUT", {"rules": [dict(RULES["rules"][0], action={
        "pipeline": "lung-emphysema", "parameters": {"smoothing_mm": 9}})]})
    assert code == 400 and body["errors"][0]["pointer"] == "/rules/0/action/parameters/smoothing_mm", body
    assert "outside [0, 5]" in body["errors"][0]["reason"], body
    assert orthanc.put("/procnode/rules", RULES)["version"] == 1

    send_dicom(orthanc, [CHEST_CT], calling_aet="CT01")
    send_dicom(orthanc, [BRAIN_MR], calling_aet="MR01", allow_failures=True)
    finished = wait_jobs_finished(orthanc, 2)
    [lung] = [j for j in finished if j["rule"]["id"] == "chest-ct"]
    [mr] = [j for j in finished if j["rule"]["id"] == "mr-misrouted"]

    # The misrouted MR: failed at once (bad input is not retried), saying why.
    assert mr["state"] == "failed" and mr["attempts"] == 1, mr
    assert "lung-emphysema: the study has no CT series" in mr["error"], mr["error"]

    # The chest CT: done, with the measurements on the job.
    assert lung["state"] == "done", lung
    assert lung["pipeline"] == "lung-emphysema"
    m = lung["result"]["measurements"]
    assert 3000 < m["total"]["volume_ml"] < 9000, m
    assert 0.6 < m["left_right_volume_ratio"] < 1.05, m
    assert m["airway"]["found"] and m["airway"]["carina_slice"] >= 0
    assert lung["result"]["parameters"]["variant"] == "fast"
    assert lung["device"] == "cpu" or lung["device"].startswith("cuda:")
    print(f"\nlung-emphysema in Orthanc: timings {lung['result']['timings_ms']}, processor {m['timings_ms']}")

    # The report: an Encapsulated PDF in the study, valid, holding the figures and no identity.
    [series] = result_series(orthanc, lung["study"])
    path = save(orthanc, series["Instances"][0], os.path.join(workdir, "lung-report.dcm"))
    assert dciodvfy_errors(path) == []
    ds = pydicom.dcmread(path)
    pdf = os.path.join(workdir, "lung-report.pdf")
    with open(pdf, "wb") as f:
        f.write(ds.EncapsulatedDocument[:int(ds.EncapsulatedDocumentLength)])
    text = run(["pdftotext", "-layout", pdf, "-"]).stdout
    assert "LAA%-950" in text and f"{m['total']['volume_ml']:.0f}" in text, text
    source = pydicom.dcmread(sorted(glob.glob(os.path.join(CHEST_CT, "*")))[0])
    assert str(source.PatientName) not in text

    # The CLI on the same folder: the same figures (the same volume through either source).
    out = os.path.join(workdir, "cli-lung")
    result = run([cli_path, "process", "lung-emphysema", CHEST_CT, "--out", out, "--device", "cpu"])
    assert result.returncode == 0, result.stderr
    with open(os.path.join(out, "measurements.json")) as f:
        cli = json.load(f)["measurements"]
    for side in ("right_lung", "left_lung", "total"):
        for key in ("voxels", "emphysema_clusters", "perc15_hu"):
            assert cli[side][key] == m[side][key], (side, key)
        assert abs(cli[side]["mean_lung_density_hu"] - m[side]["mean_lung_density_hu"]) < 1e-6

    # labels.nii.gz lies on the series' grid: same shape and affine as dcm2niix's NIfTI of it,
    # and its label counts are the recorded voxel counts.
    labels = nibabel.load(os.path.join(out, "labels.nii.gz"))
    reference_dir = os.path.join(workdir, "dcm2niix-chest")
    os.makedirs(reference_dir, exist_ok=True)
    converted = run(["dcm2niix", "-z", "n", "-f", "ct", "-o", reference_dir, CHEST_CT])
    assert converted.returncode == 0, converted.stdout + converted.stderr
    reference = nibabel.load(os.path.join(reference_dir, "ct.nii"))
    assert labels.shape == reference.shape
    assert numpy.allclose(labels.affine, reference.affine, atol=1e-4), (labels.affine, reference.affine)
    values = numpy.asarray(labels.dataobj)
    assert set(numpy.unique(values)) <= {0, 1, 2, 3, 4}
    assert int(numpy.isin(values, (1, 3)).sum()) == cli["right_lung"]["voxels"]
    assert int(numpy.isin(values, (2, 4)).sum()) == cli["left_lung"]["voxels"]
    # Where the labels say lung, the CT (dcm2niix's) is lung density; where they say emphysema, below -950 HU.
    ct = reference.get_fdata()
    assert -900 < ct[numpy.isin(values, (1, 2, 3, 4))].mean() < -700
    assert ct[numpy.isin(values, (3, 4))].max() < -950
    for name in ("overlay-axial.png", "overlay-coronal.png", "report.pdf", "report-pdf.dcm"):
        assert os.path.getsize(os.path.join(out, name)) > 1000, name
