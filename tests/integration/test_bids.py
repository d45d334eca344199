"""Research exports: an anonymized route sends a brain MR study (MPRAGE, resting-state EPI, DWI and
one series the mapping does not name) to a BIDS destination, and results to a PACS that accepts
only STOW-RS.

Judges: the BIDS validator (npm bids-validator, pinned in tests/judges/bids-validator) reports 0
errors; the planted identity appears in no file (every byte, gzip opened, and every file name);
the dataset's layout, modes, participants and sessions are as configured; the same study sent again
replaces its session; a second study of the same patient becomes ses-2. STOW: a second Orthanc
with the DICOMweb plugin receives the results through the first one's DICOMweb client.
"""
import glob
import gzip
import json
import os
import stat
import subprocess

import pydicom
from pydicom.uid import generate_uid

from conftest import CHEST_CT, SHARED_DATA
from helpers import wait_jobs_finished
from orthanc import OrthancServer, send_dicom

HERE = os.path.dirname(os.path.abspath(__file__))
VALIDATOR = os.path.join(HERE, "..", "judges", "bids-validator", "node_modules", ".bin", "bids-validator")
DICOMWEB_PLUGIN = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"
VAULT_KEYS = "k1:" + "cd" * 32
PLANTED = ["WESTWOOD^HARRIET^QUILL", "MRN-BIDS-77310", "19610419", "Quillfield Neuro Centre", "ACC-55821"]

SERIES = [  # folder, series number, description (what the mapping matches)
    (os.path.join(SHARED_DATA, "mr-brain-sag-mprage"), 2, "T1 MPRAGE sag"),
    (os.path.join(SHARED_DATA, "dcm_qa_nih", "In", "20180918GE", "mr_0004"), 3, "rest bold"),
    (os.path.join(SHARED_DATA, "dcm_qa_uih", "In", "DTI_134434", "dti_tra_dir16_AP_SaveBySlc__140028"), 4, "dti 16 dir"),
    (os.path.join(SHARED_DATA, "dcm_qa_nih", "In", "20180918Si", "mr_0003"), 5, "localizer"),
]
MAPPING = [{"match": {"SeriesDescription": "*mprage*"}, "datatype": "anat", "suffix": "T1w"},
           {"match": {"SeriesDescription": "*rest*"}, "datatype": "func", "suffix": "bold", "entities": {"task": "rest"}},
           {"match": {"SeriesDescription": "dti*"}, "datatype": "dwi", "suffix": "dwi"}]


def planted_study(out, series=SERIES, study_uid=None):
    """The series as one study of one patient, PHI planted, sex and age kept for participants.tsv."""
    study_uid = study_uid or generate_uid()
    for folder, number, description in series:
        series_uid = generate_uid()
        target = os.path.join(out, str(number))
        os.makedirs(target)
        for path in sorted(glob.glob(os.path.join(folder, "**", "*"), recursive=True)):
            if not os.path.isfile(path):
                continue
            try:
                ds = pydicom.dcmread(path)
            except Exception:
                continue  # README, LICENSE
            ds.PatientName, ds.PatientID, ds.PatientBirthDate = PLANTED[0], PLANTED[1], PLANTED[2]
            ds.InstitutionName, ds.AccessionNumber = PLANTED[3], PLANTED[4]
            ds.PatientSex, ds.PatientAge = "F", "063Y"
            ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
            ds.StudyDate, ds.StudyTime = "20240311", "101500"
            ds.SeriesNumber, ds.SeriesDescription = number, description
            ds.SOPInstanceUID = generate_uid()
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            ds.save_as(os.path.join(target, os.path.basename(path)))
    return out


def validate(root):
    result = subprocess.run([VALIDATOR, root, "--json"], capture_output=True, text=True, timeout=300)
    report = json.loads(result.stdout)
    return report["issues"]["errors"], report["issues"]["warnings"]


def planted_in(root):
    """Every file with a planted term in its bytes (gzip opened) or its path."""
    hits = []
    terms = [t.encode() for t in PLANTED] + [t.split("^")[0].encode() for t in PLANTED if "^" in t]
    for path in glob.glob(os.path.join(root, "**", "*"), recursive=True):
        if any(t.decode() in path for t in terms):
            hits.append(path)
        if not os.path.isfile(path):
            continue
        with open(path, "rb") as f:
            data = f.read()
        if path.endswith(".gz"):
            data = gzip.decompress(data)
        if any(t in data or t.lower() in data for t in terms):
            hits.append(path)
    return hits


def deliveries(orthanc, job_id):
    return {d["destination"]: d for d in orthanc.get(f"/procnode/jobs/{job_id}")["deliveries"]}


def test_an_anonymized_route_exports_a_valid_pseudonymous_bids_dataset(workdir, pg, orthanc_factory, job_db):
    bids = os.path.join(workdir, "bids")
    orthanc = orthanc_factory(
        {"Database": job_db[1], "Workers": 1, "PhiVault": pg.create_database(f"vault_bids_{os.getpid()}"),
         "Destinations": {"RESEARCH": {"Kind": "bids", "Root": bids, "Name": "procnode BIDS test",
                                       "FileMode": "0640", "DirectoryMode": "0750"}}},
        env={"PROCNODE_VAULT_KEYS": VAULT_KEYS, "PROCNODE_ANONYMIZATION_SECRET": "bids secret"}).start()
    rule = {"id": "brain-research", "match": {"attribute": "Modality", "equals": "MR"},
            "action": {"pipeline": "volume-stats", "destinations": ["RESEARCH"],
                       "anonymize": {"project": "brain-study", "options": ["retain-patient-characteristics", "retain-safe-private",
                                                                              "allow-recognizable-features"]},
                       "bids": MAPPING}}
    # A research export is pseudonymous and needs its mapping: both refused with the field named.
    code, body = orthanc.get_status("/procnode/rules", "PUT", {"rules": [dict(rule, action=dict(rule["action"], anonymize=False))]})
    assert code == 400 and body["errors"][0]["pointer"] == "/rules/0/action/destinations/0", body
    no_mapping = {k: v for k, v in rule["action"].items() if k != "bids"}
    code, body = orthanc.get_status("/procnode/rules", "PUT", {"rules": [dict(rule, action=no_mapping)]})
    assert code == 400 and body["errors"][0]["pointer"] == "/rules/0/action/bids", body
    code, body = orthanc.get_status("/procnode/rules", "PUT", {"rules": [dict(rule, action=dict(
        rule["action"], bids=[{"match": {"SeriesDescription": "*"}, "datatype": "func", "suffix": "bold"}]))]})
    assert code == 400 and body["errors"][0]["pointer"] == "/rules/0/action/bids/0/entities", body
    orthanc.put("/procnode/rules", {"rules": [rule]})

    source = planted_study(os.path.join(workdir, "study1"))
    send_dicom(orthanc, [source], calling_aet="MR01")
    [job] = wait_jobs_finished(orthanc, 1, timeout=300)
    assert job["state"] == "done", job["error"]
    sent = orthanc.wait_for(lambda: (lambda d: d if d["RESEARCH"]["state"] == "sent" else None)(deliveries(orthanc, job["id"])),
                            180, "the BIDS export")
    assert sent["RESEARCH"]["last_error"] is None

    # The BIDS validator: 0 errors.
    errors, warnings = validate(bids)
    assert errors == [], json.dumps(errors, indent=1)[:4000]
    print(f"bids-validator: 0 errors, {len(warnings)} warning(s): {[w['key'] for w in warnings]}")

    # Layout: one pseudonymous subject, ses-1, the three mapped series; the localizer skipped.
    subjects = [d for d in os.listdir(bids) if d.startswith("sub-")]
    assert len(subjects) == 1 and subjects[0][4:].isalnum(), subjects
    sub = subjects[0]
    files = sorted(os.path.relpath(p, bids) for p in glob.glob(os.path.join(bids, sub, "**", "*"), recursive=True)
                   if os.path.isfile(p))
    expected = {f"{sub}/ses-1/anat/{sub}_ses-1_T1w.nii.gz", f"{sub}/ses-1/anat/{sub}_ses-1_T1w.json",
                f"{sub}/ses-1/func/{sub}_ses-1_task-rest_bold.nii.gz", f"{sub}/ses-1/func/{sub}_ses-1_task-rest_bold.json",
                f"{sub}/ses-1/dwi/{sub}_ses-1_dwi.nii.gz", f"{sub}/ses-1/dwi/{sub}_ses-1_dwi.json",
                f"{sub}/ses-1/dwi/{sub}_ses-1_dwi.bval", f"{sub}/ses-1/dwi/{sub}_ses-1_dwi.bvec", f"{sub}/{sub}_sessions.tsv"}
    assert set(files) == expected, files
    with open(os.path.join(bids, sub, "ses-1", "func", f"{sub}_ses-1_task-rest_bold.json")) as f:
        assert json.load(f)["TaskName"] == "rest"
    assert "series 5 (MR): no mapping matched" in orthanc.log_tail(400000)
    with open(os.path.join(bids, "participants.tsv")) as f:
        assert f.read().splitlines() == ["participant_id\tage\tsex", f"{sub}\t63\tF"]
    with open(os.path.join(bids, sub, f"{sub}_sessions.tsv")) as f:
        assert f.read().splitlines() == ["session_id", "ses-1"], "dates were not kept: no acq_time"
    with open(os.path.join(bids, "dataset_description.json")) as f:
        assert json.load(f)["Name"] == "procnode BIDS test"
    derivatives = glob.glob(os.path.join(bids, "derivatives", "procnode", sub, "ses-1", "*"))
    assert sorted(os.path.basename(p) for p in derivatives) == [f"{sub}_ses-1_desc-volumestatsmeasurements.json",
                                                                 f"{sub}_ses-1_desc-volumestatsreport1.dcm"], derivatives
    report = pydicom.dcmread(os.path.join(bids, "derivatives", "procnode", sub, "ses-1", f"{sub}_ses-1_desc-volumestatsreport1.dcm"))
    assert report.PatientID == sub[4:] or report.PatientID.replace("-", "") == sub[4:], "the pseudonymous report"
    # Read-only for the group, nothing for others.
    for path in glob.glob(os.path.join(bids, "**", "*"), recursive=True):
        mode = stat.S_IMODE(os.stat(path).st_mode)
        assert mode == (0o750 if os.path.isdir(path) else 0o640), (path, oct(mode))

    # No planted identity anywhere (an independent scan of every byte and name).
    assert planted_in(bids) == []

    # Delivered again (resend): the same session is replaced, not duplicated.
    before = {p: os.stat(p).st_mtime_ns for p in glob.glob(os.path.join(bids, sub, "**", "*.nii.gz"), recursive=True)}
    orthanc.post(f"/procnode/jobs/{job['id']}/resend", {})
    orthanc.wait_for(lambda: (lambda d: d["RESEARCH"]["state"] == "sent" and d["RESEARCH"]["attempts"] >= 1
                              and all(os.stat(p).st_mtime_ns != t for p, t in before.items() if os.path.exists(p)))(
        deliveries(orthanc, job["id"])), 180, "the second export")
    assert sorted(os.path.relpath(p, bids) for p in glob.glob(os.path.join(bids, sub, "**", "*"), recursive=True)
                  if os.path.isfile(p)) == files

    # A second study of the same patient: ses-2, and sessions.tsv lists both.
    second = planted_study(os.path.join(workdir, "study2"), [SERIES[2]])
    send_dicom(orthanc, [second], calling_aet="MR01")
    jobs = wait_jobs_finished(orthanc, 2, timeout=300)
    newest = max(jobs, key=lambda j: j["id"])
    orthanc.wait_for(lambda: deliveries(orthanc, newest["id"]).get("RESEARCH", {}).get("state") == "sent", 180,
                     "the second study's export")
    assert os.path.isfile(os.path.join(bids, sub, "ses-2", "dwi", f"{sub}_ses-2_dwi.nii.gz"))
    with open(os.path.join(bids, sub, f"{sub}_sessions.tsv")) as f:
        assert f.read().splitlines() == ["session_id", "ses-1", "ses-2"]
    errors, _ = validate(bids)
    assert errors == [], errors
    assert planted_in(bids) == []
    assert PLANTED[1] not in orthanc.log_tail(400000) and "WESTWOOD" not in orthanc.log_tail(400000)


def test_results_reach_a_pacs_that_accepts_only_stow(workdir, orthanc_factory, job_db):
    archive = OrthancServer(DICOMWEB_PLUGIN, {}, workdir=os.path.join(workdir, "archive"),
                            extra_config={"DicomWeb": {"Enable": True, "Root": "/dicom-web/"}}, ready_path="/system").start()
    try:
        orthanc = orthanc_factory(
            {"Database": job_db[1], "Workers": 1, "Destinations": {"WEB": {"Kind": "dicomweb", "Server": "archive"}}},
            extra_plugins=[DICOMWEB_PLUGIN],
            extra_config={"DicomWeb": {"Enable": True, "Root": "/dicom-web/",
                                       "Servers": {"archive": [f"{archive.url}/dicom-web/"]}}}).start()
        orthanc.put("/procnode/rules", {"rules": [{"id": "chest", "match": {"attribute": "Modality", "equals": "CT"},
                                                   "action": {"pipeline": "lung-emphysema", "destinations": ["WEB"]}}]})
        send_dicom(orthanc, [CHEST_CT], calling_aet="CT01")
        [job] = wait_jobs_finished(orthanc, 1, timeout=300)
        assert job["state"] == "done", job["error"]
        try:
            orthanc.wait_for(lambda: deliveries(orthanc, job["id"])["WEB"]["state"] == "sent", 120, "the STOW delivery")
        except AssertionError:
            raise AssertionError(f"STOW delivery: {deliveries(orthanc, job['id'])['WEB']}")
        stored = sorted(orthanc.get(f"/instances/{r['stored']}")["MainDicomTags"]["SOPInstanceUID"]
                        for r in job["result"]["results"])
        received = sorted(archive.get(f"/instances/{i}")["MainDicomTags"]["SOPInstanceUID"] for i in archive.get("/instances"))
        assert received == stored and len(received) == 3
    finally:
        archive.kill()
