"""The lung processor end to end: a rule sends the chest CT (storescu) to lung-emphysema in
Orthanc; its measurements reach the job record; the study gains an Encapsulated PDF, a SEG and a
TID 1500 SR, each judged by dciodvfy (0 errors), the SR by PixelMed's DicomSRValidator, both by
dcmjs (OHIF's parser), and retrievable over DICOMweb. The same study through the CLI gives the
same figures and a label NIfTI on the series' own grid (nibabel against dcm2niix run live); a
rule that sends an MR to it fails the job at once with the reason."""
import glob
import json
import os

import nibabel
import numpy
import pydicom

from conftest import CHEST_CT, SHARED_DATA
from helpers import dciodvfy_errors, dcmjs_read, pixelmed_sr_report, result_series, run, save, wait_jobs_finished
from orthanc import send_dicom

BRAIN_MR = os.path.join(SHARED_DATA, "mr-brain-sag-mprage")
DICOMWEB_PLUGIN = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"

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


def check_seg_and_sr(orthanc, results, m, workdir):
    seg_path = save(orthanc, results["SEG"]["Instances"][0], os.path.join(workdir, "lung-seg.dcm"))
    sr_path = save(orthanc, results["SR"]["Instances"][0], os.path.join(workdir, "lung-sr.dcm"))
    assert dciodvfy_errors(seg_path) == []
    assert dciodvfy_errors(sr_path) == []
    pixelmed = pixelmed_sr_report(sr_path)
    assert "Found Root Template TID_1500" in pixelmed and "Root Template Validation Complete" in pixelmed, pixelmed
    assert not [line for line in pixelmed.splitlines() if line.startswith("Error")], pixelmed

    # SEG: every frame on a source CT plane, referencing that instance, in its Frame of Reference.
    ct = {pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID: pydicom.dcmread(p, stop_before_pixels=True)
          for p in glob.glob(os.path.join(CHEST_CT, "*")) if not p.endswith("LICENSE")}
    seg = pydicom.dcmread(seg_path)
    some_ct = next(iter(ct.values()))
    assert seg.FrameOfReferenceUID == some_ct.FrameOfReferenceUID
    assert seg.StudyInstanceUID == some_ct.StudyInstanceUID and seg.PatientID == some_ct.PatientID
    for frame in seg.PerFrameFunctionalGroupsSequence:
        source = frame.DerivationImageSequence[0].SourceImageSequence[0]
        assert source.ReferencedSOPInstanceUID in ct
        ipp = [float(x) for x in frame.PlanePositionSequence[0].ImagePositionPatient]
        expected = [float(x) for x in ct[source.ReferencedSOPInstanceUID].ImagePositionPatient]
        assert max(abs(a - b) for a, b in zip(ipp, expected)) < 1e-3

    # dcmjs reads the segments with exactly the labelled voxels, and the SR with the job's figures.
    read = dcmjs_read(seg_path, sr_path)
    pixels = {s["label"]: s["pixels"] for s in read["seg"]["segments"]}
    assert pixels == {"Right lung": m["right_lung"]["voxels"], "Left lung": m["left_lung"]["voxels"],
                      "Emphysema": m["total"]["emphysema_voxels"]}, pixels
    groups = {g["tracking"]: g for g in read["sr"]["groups"]}
    assert sorted(groups) == ["Emphysema", "Left lung", "Right lung"]
    for tracking, side in (("Right lung", "right_lung"), ("Left lung", "left_lung")):
        values = {x["concept"]: (x["value"], x["unit"]) for x in groups[tracking]["measurements"]}
        assert abs(values["Volume"][0] - m[side]["volume_ml"]) < 1e-3 * m[side]["volume_ml"] and values["Volume"][1] == "mL"
        assert abs(values["Attenuation Coefficient"][0] - m[side]["mean_lung_density_hu"]) < 0.01
        assert values["Attenuation Coefficient"][1] == "[hnsf'U]"
        assert abs(values["Percent of lung volume below -950 HU"][0] - m[side]["laa950_percent"]) < 1e-3
        assert values["15th percentile lung density"][0] == m[side]["perc15_hu"]
    assert [groups[t]["segment"] for t in ("Right lung", "Left lung", "Emphysema")] == [1, 2, 3]

    # DICOMweb (Orthanc's plugin): QIDO finds the SEG and SR series, WADO-RS gives their metadata.
    study_uid = seg.StudyInstanceUID
    found = orthanc.get(f"/dicom-web/studies/{study_uid}/series")
    modalities = sorted(s["00080060"]["Value"][0] for s in found)
    assert modalities == ["CT", "DOC", "SEG", "SR"], modalities
    metadata = orthanc.get(f"/dicom-web/studies/{study_uid}/series/{seg.SeriesInstanceUID}/instances/{seg.SOPInstanceUID}/metadata")
    assert metadata[0]["00080016"]["Value"][0] == "1.2.840.10008.5.1.4.1.1.66.4"


def test_a_chest_rule_runs_lung_emphysema_and_records_the_measurements(orthanc_factory, job_db, workdir, cli_path):
    orthanc = orthanc_factory({"Database": job_db[1], "Workers": 2}, extra_plugins=[DICOMWEB_PLUGIN],
                              extra_config={"DicomWeb": {"Enable": True, "Root": "/dicom-web/"}}).start()
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

    # The results: an Encapsulated PDF, a SEG and an SR in the study.
    results = {s["MainDicomTags"]["Modality"]: s for s in result_series(orthanc, lung["study"])}
    assert sorted(results) == ["DOC", "SEG", "SR"], sorted(results)
    assert [r["kind"] for r in lung["result"]["results"]] == ["encapsulated-pdf", "seg", "sr"]
    check_seg_and_sr(orthanc, results, m, workdir)

    # The report: valid, holding the figures and no identity.
    path = save(orthanc, results["DOC"]["Instances"][0], os.path.join(workdir, "lung-report.dcm"))
    assert dciodvfy_errors(path) == []
    ds = pydicom.dcmread(path)
    pdf = os.path.join(workdir, "lung-report.pdf")
    with open(pdf, "wb") as f:
        f.write(ds.EncapsulatedDocument[:int(ds.EncapsulatedDocumentLength)])
    rendered = run(["pdftoppm", "-r", "50", "-png", pdf, os.path.join(workdir, "lung-report-page")])
    assert rendered.returncode == 0, rendered.stderr
    pages = sorted(glob.glob(os.path.join(workdir, "lung-report-page*.png")))
    assert 1 <= len(pages) <= 3 and all(os.path.getsize(p) > 10000 for p in pages), pages
    text = run(["pdftotext", "-layout", pdf, "-"]).stdout
    assert "LAA%-950" in text and f"{m['total']['volume_ml']:.0f}" in text, text
    for heading in ("Key images", "Measurements", "Lung density histogram", "Method", "Provenance"):
        assert heading in text, heading
    assert f"chest-ct@1" in text and "lung-emphysema@1" in text
    source = pydicom.dcmread(sorted(glob.glob(os.path.join(CHEST_CT, "*")))[0])
    assert str(source.PatientID) in text, "a clinical report names its patient"

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
