"""External tools end to end (issue 15). The two example tools (tools/) run from routing rules in a
real Orthanc on the brain MR sent by storescu: SEG, TID 1500 SR and the PDF report land in the
study (dciodvfy 0 errors, PixelMed's TID 1500 check, the SR's values equal to the tool's JSON as
dcmjs reads them), the derived image is kept with the job on the input's grid. The same tools run
from `procnode process`. Misbehaving tools (tests/integration/tools/), each a small script, fail
their job with the tool's name and the reason while Orthanc and the other jobs carry on, and
nothing they do reaches outside their sandbox. On an anonymized route a tool sees only the
pseudonym."""
import glob
import json
import os
import shutil
import subprocess
import time

import nibabel
import numpy
import pydicom

from conftest import SHARED_DATA
from helpers import dciodvfy_errors, dcmjs_read, pixelmed_sr_report, result_series, run, save, wait_jobs_finished
from orthanc import send_dicom

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
EXAMPLES = os.path.join(REPO, "tools")
MISBEHAVING = os.path.join(HERE, "tools")
BRAIN_MR = os.path.join(SHARED_DATA, "mr-brain-sag-mprage")
CT_SMALL = os.path.join(SHARED_DATA, "debian-pydicom-test-files", "CT_small.dcm")
VAULT_KEYS = "k1:" + "cd" * 32


def survivors_of(seconds):
    """Processes running `sleep SECONDS` (those ending while looked at are skipped)."""
    found = []
    for path in glob.glob("/proc/[0-9]*/cmdline"):
        try:
            with open(path, "rb") as f:
                if f.read() == b"sleep\0" + seconds.encode() + b"\0":
                    found.append(path)
        except OSError:
            continue
    return found


def one_ct(workdir, name="ct", **attributes):
    folder = os.path.join(workdir, name)
    os.makedirs(folder)
    ds = pydicom.dcmread(CT_SMALL)
    for key, value in attributes.items():
        setattr(ds, key, value)
    ds.save_as(os.path.join(folder, "ct.dcm"))
    return folder


def test_the_example_tools_run_from_rules_and_their_results_land_in_the_study(orthanc_factory, job_db, workdir):
    work = os.path.join(workdir, "work")
    orthanc = orthanc_factory({"Database": job_db[1], "Workers": 2, "ToolsDirectory": EXAMPLES,
                               "WorkDirectory": work}).start()
    processors = {p["name"]: p for p in orthanc.get("/procnode/processors")}
    assert processors["normalize-intensity"]["kind"] == "external" and processors["volume-stats"]["kind"] == "native"
    assert processors["normalize-intensity"]["details"]["requirements"]["memory_mb"] == 4096
    assert processors["volume-above"]["parameters"]["properties"]["threshold"]["default"] == 200

    # A tool's parameters are checked when the rule set is saved, as a native processor's.
    code, body = orthanc.get_status("/procnode/rules", "PUT", {"rules": [{
        "id": "bad", "match": {"attribute": "Modality", "equals": "MR"},
        "action": {"pipeline": "normalize-intensity", "parameters": {"method": "median"}}}]})
    assert code == 400 and body["errors"][0]["pointer"] == "/rules/0/action/parameters/method", body
    orthanc.put("/procnode/rules", {"mode": "all", "rules": [
        {"id": "normalize", "match": {"attribute": "Modality", "equals": "MR"},
         "action": {"pipeline": "normalize-intensity", "parameters": {"method": "zscore"}}},
        {"id": "above", "match": {"attribute": "Modality", "equals": "MR"},
         "action": {"pipeline": "volume-above", "parameters": {"threshold": 100}}}]})
    send_dicom(orthanc, [BRAIN_MR], allow_failures=True)  # its LICENSE file is no DICOM
    finished = wait_jobs_finished(orthanc, 2, timeout=300)
    by_rule = {j["rule"]["id"]: j for j in finished}
    for job in finished:
        assert job["state"] == "done", job["error"]

    # normalize-intensity: provenance, the derived image kept with the job, SEG + SR + PDF.
    normalize = orthanc.get(f"/procnode/jobs/{by_rule['normalize']['id']}")
    result = normalize["result"]
    tool = result["tool"]
    assert tool["tool"] == "normalize-intensity" and tool["exit_code"] == 0 and len(tool["manifest_sha256"]) == 64
    assert tool["peak_memory_mb"] > 50 and tool["runtime_seconds"] > 0
    assert "progress: 1.00 done" in tool["stdout_tail"]
    files = {f["name"]: f for f in result["files"]}
    assert files["normalized.nii.gz"]["kept"] is True
    kept = os.path.join(work, "jobs", str(normalize["id"]), "normalized.nii.gz")
    derived = nibabel.load(kept)
    # ... and downloadable over REST, as the admin page links it; other names are not served.
    with open(kept, "rb") as f:
        assert orthanc.get_raw(f"/procnode/jobs/{normalize['id']}/files/normalized.nii.gz") == f.read()
    code, body = orthanc.get_status(f"/procnode/jobs/{normalize['id']}/files/labels.nii.gz")
    assert code == 404 and "kept no file labels.nii.gz" in json.dumps(body), body
    series_id = [s for s in orthanc.get(f"/studies/{normalize['study']}/series")
                 if s["MainDicomTags"]["Modality"] == "MR"][0]["ID"]
    nifti_path = os.path.join(workdir, "series.nii.gz")
    with open(nifti_path, "wb") as f:
        f.write(orthanc.get_raw(f"/procnode/series/{series_id}/nifti"))
    source = nibabel.load(nifti_path)
    assert derived.shape == source.shape
    assert numpy.allclose(derived.affine, source.affine, atol=1e-3)
    assert "normalize-intensity" in derived.header["descrip"].tobytes().decode()

    m = result["measurements"]["labels"]["Foreground"]
    data = numpy.asarray(derived.dataobj)
    mask = numpy.abs(data - (source.get_fdata() - m["Mean before normalization"]["value"]) /
                     m["SD before normalization"]["value"]) < 1e-3
    assert mask.mean() > 0.999  # z-score of the input everywhere, with the tool's own mean and SD
    results = {s["MainDicomTags"]["Modality"]: s for s in result_series(orthanc, normalize['study'])}
    assert sorted(results) == ["DOC", "SEG", "SR"], sorted(results)
    paths = {kind: save(orthanc, results[kind]["Instances"][0], os.path.join(workdir, f"normalize-{kind}.dcm"))
             for kind in results}
    for kind, path in paths.items():
        assert dciodvfy_errors(path) == [], kind
    pixelmed = pixelmed_sr_report(paths["SR"])
    assert "Found Root Template TID_1500" in pixelmed and "Root Template Validation Complete" in pixelmed, pixelmed
    read = dcmjs_read(paths["SEG"], paths["SR"])
    [segment] = read["seg"]["segments"]
    assert segment["label"] == "Foreground" and segment["type"] == "Tissue"
    [group] = read["sr"]["groups"]
    assert group["tracking"] == "Foreground"
    values = {x["concept"]: (x["value"], x["unit"]) for x in group["measurements"]}
    # Every per-label number of the tool's measurements.json, as the SR holds it.
    assert values["Volume"] == (m["Foreground volume"]["value"], "mL"), values
    for name in ("Mean before normalization", "SD before normalization", "CV before normalization",
                 "Mean after normalization", "SD after normalization"):
        assert values[name] == (m[name]["value"], m[name]["unit"]), (name, values)
    voxel_ml = abs(numpy.linalg.det(source.affine[:3, :3])) / 1000
    assert abs(segment["pixels"] * voxel_ml - m["Foreground volume"]["value"]) < 0.01
    pdf = pydicom.dcmread(paths["DOC"]).EncapsulatedDocument
    text = subprocess.run(["pdftotext", "-", "-"], input=pdf, capture_output=True).stdout.decode()
    assert "Intensity normalization" in text and "External tool" in text and "normalize-intensity 1.0.0" in text

    # volume-above (plain shell): measurements and a report section, no labels, so no SEG or SR.
    above = orthanc.get(f"/procnode/jobs/{by_rule['above']['id']}")["result"]
    g = above["measurements"]["global"]
    assert g["Threshold"] == {"value": 100, "unit": "1"}
    voxels = source.get_fdata()
    assert g["Voxels above threshold"]["value"] == int((voxels > 100).sum())
    assert abs(g["Share above threshold"]["value"] - 100 * (voxels > 100).mean()) < 1e-3
    stored = [r["kind"] for r in above["results"]]
    assert stored == ["encapsulated-pdf"], stored
    assert orthanc.alive()


def test_misbehaving_tools_fail_their_jobs_with_the_reason_and_harm_nothing(orthanc_factory, job_db, workdir):
    work = os.path.join(workdir, "work")
    tools = os.path.join(workdir, "tools")
    shutil.copytree(MISBEHAVING, tools)
    orthanc = orthanc_factory({"Database": job_db[1], "Workers": 2, "ToolsDirectory": tools, "WorkDirectory": work}).start()
    expected = {
        "sleeper": "tool sleeper 1: time limit of 2 s reached",
        "memory-hog": "tool memory-hog 1: exit code 1: memory limit of 256 MiB reached (MemoryError)",
        "escape": "cannot create /input/image.nii: Read-only file system",
        "network": "Connection refused",
        "exit-three": "tool exit-three 1: exit code 3; last lines of its stderr: fatal: the phantom is not a brain",
        "wrong-grid": "tool wrong-grid: labels.nii.gz: grid 129x128x1 is not the input's 128x128x1",
        "nan": "tool nan: derived.nii.gz: voxel",
        "big-file": "tool big-file 1: killed by SIGXFSZ: a file reached the size limit of 64 MiB",
    }
    rules = [{"id": name, "match": {"attribute": "Modality", "equals": "CT"},
              "action": {"pipeline": name, **({"parameters": {"port": orthanc.http_port}} if name == "network" else {})}}
             for name in list(expected) + ["orphan"]]
    orthanc.put("/procnode/rules", {"mode": "all", "rules": rules})
    send_dicom(orthanc, [one_ct(workdir)])
    finished = wait_jobs_finished(orthanc, len(rules), timeout=240)
    by_rule = {j["rule"]["id"]: j for j in finished}
    for name, reason in expected.items():
        job = by_rule[name]
        assert job["state"] == "failed", (name, job)
        assert reason in job["error"], (name, job["error"])
        assert job["attempts"] == 1, (name, "a tool's failure is not retried")
    assert "nan: derived.nii.gz: voxel" in by_rule["nan"]["error"] and "is not a finite number" in by_rule["nan"]["error"]
    # The orphan's job is done, and its child did not outlive the sandbox.
    assert by_rule["orphan"]["state"] == "done", by_rule["orphan"]["error"]
    assert survivors_of("3179") == []
    # Nothing escaped: the tools' folders are as shipped, and no run folder is left behind.
    assert not glob.glob(os.path.join(tools, "*", "planted")) and not os.path.exists("/planted")
    assert sorted(os.listdir(os.path.join(tools, "escape"))) == ["escape.sh", "tool.json"]
    assert [name for name in os.listdir(work) if name.startswith("procnode-tool-")] == []
    # Orthanc and the node carry on: a native processor still runs on the same study.
    assert orthanc.alive()
    orthanc.put("/procnode/rules", {"rules": [{"id": "after", "match": {"attribute": "Modality", "equals": "CT"},
                                               "action": {"pipeline": "volume-stats"}}]})
    send_dicom(orthanc, [one_ct(workdir, "ct2", SeriesInstanceUID=pydicom.uid.generate_uid(),
                                SOPInstanceUID=pydicom.uid.generate_uid())])
    done = wait_jobs_finished(orthanc, len(rules) + 1, timeout=120)
    assert [j for j in done if j["rule"]["id"] == "after"][0]["state"] == "done"


def test_an_anonymized_route_shows_the_tool_only_the_pseudonym(orthanc_factory, job_db, workdir, pg):
    vault_name = f"tools_vault_{os.getpid()}"
    vault = pg.create_database(vault_name)
    orthanc = orthanc_factory({"Database": job_db[1], "Workers": 1, "ToolsDirectory": MISBEHAVING, "PhiVault": vault},
                              env={"PROCNODE_VAULT_KEYS": VAULT_KEYS, "PROCNODE_ANONYMIZATION_SECRET": "tool secret"}).start()
    orthanc.put("/procnode/rules", {"rules": [{"id": "research", "match": {"attribute": "Modality", "equals": "CT"},
                                               "action": {"pipeline": "echo-identity",
                                                          "anonymize": {"project": "tool-research"}}}]})
    folder = one_ct(workdir, PatientName="DOE^JOHN^QUINCY", PatientID="MRN-884422", AccessionNumber="ACC-5521")
    original = pydicom.dcmread(os.path.join(folder, "ct.dcm"), stop_before_pixels=True)
    send_dicom(orthanc, [folder])
    [job] = wait_jobs_finished(orthanc, 1, timeout=120)
    assert job["state"] == "done", job["error"]
    assert job["result"]["anonymized"] is True
    dump = json.dumps(orthanc.get(f"/procnode/jobs/{job['id']}"))
    for term in ("DOE", "MRN-884422", "ACC-5521", original.StudyInstanceUID):
        assert term not in dump, term
    # The report the tool wrote (what it saw) is in the pseudonymous study's PDF: the pseudonym only.
    pseudonymous = [s for s in orthanc.get("/studies")
                    if orthanc.get(f"/studies/{s}")["MainDicomTags"]["StudyInstanceUID"] != original.StudyInstanceUID]
    [doc] = [s for s in result_series(orthanc, pseudonymous[0]) if s["MainDicomTags"]["Modality"] == "DOC"]
    pdf = pydicom.dcmread(save(orthanc, doc["Instances"][0], os.path.join(workdir, "echo.dcm"))).EncapsulatedDocument
    text = subprocess.run(["pdftotext", "-", "-"], input=pdf, capture_output=True).stdout.decode()
    assert "What the tool saw" in text and "PN" in text
    for term in ("DOE", "JOHN", "MRN-884422", original.StudyInstanceUID):
        assert term not in text, term


def test_the_example_tools_run_from_the_command_line(cli_path, workdir):
    out = os.path.join(workdir, "above")
    result = run([cli_path, "process", "volume-above", one_ct(workdir), "--tools", EXAMPLES, "--out", out,
                  "--param", "threshold=0"])
    assert result.returncode == 0, result.stderr
    summary = json.load(open(os.path.join(out, "measurements.json")))
    ct = pydicom.dcmread(CT_SMALL)
    hu = ct.pixel_array * float(ct.RescaleSlope) + float(ct.RescaleIntercept)
    assert summary["measurements"]["global"]["Voxels above threshold"]["value"] == int((hu > 0).sum())
    assert summary["tool"]["exit_code"] == 0
    assert sorted(os.listdir(out)) == ["measurements.json", "report-pdf.dcm", "report.pdf", "tool-stdout.log"]

    out = os.path.join(workdir, "normalize")
    result = run([cli_path, "process", "normalize-intensity", BRAIN_MR, "--tools", EXAMPLES, "--out", out,
                  "--param", "method=percentile"])
    assert result.returncode == 0, result.stderr
    for name in ("labels.nii.gz", "normalized.nii.gz", "seg.dcm", "sr.dcm", "report.pdf", "report-pdf.dcm"):
        assert os.path.exists(os.path.join(out, name)), name
    normalized = numpy.asarray(nibabel.load(os.path.join(out, "normalized.nii.gz")).dataobj)
    labels = numpy.asarray(nibabel.load(os.path.join(out, "labels.nii.gz")).dataobj)
    inside = normalized[labels == 1]
    assert abs(numpy.percentile(inside, 1)) < 1e-3 and abs(numpy.percentile(inside, 99) - 1) < 1e-3

    # A tool's failure is exit code 1 with the reason; a bad manifest is bad input: exit 2 with its pointer.
    result = run([cli_path, "process", "exit-three", one_ct(workdir, "ct3"), "--tools", MISBEHAVING,
                  "--out", os.path.join(workdir, "x")])
    assert result.returncode == 1 and "fatal: the phantom is not a brain" in result.stderr, result.stderr
    bad = os.path.join(workdir, "bad.json")
    with open(bad, "w") as f:
        json.dump({"manifest_version": 1, "name": "bad", "version": "1", "description": "x",
                   "command": ["run"], "outputs": {"labels": "yes"}}, f)
    result = run([cli_path, "tools", "validate", bad])
    assert result.returncode == 2 and f"{bad}: /outputs/labels: must be true or false" in result.stderr, result.stderr
    result = run([cli_path, "tools", "validate", os.path.join(EXAMPLES, "normalize-intensity", "tool.json")])
    assert result.returncode == 0 and "valid, tool normalize-intensity 1.0.0" in result.stdout
    listed = json.loads(run([cli_path, "processors", "--tools", EXAMPLES]).stdout)
    assert {"normalize-intensity", "volume-above", "lung-emphysema"} <= {p["name"] for p in listed}
