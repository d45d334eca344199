"""The admin page end to end in Debian's headless Chromium (playwright-core from npm), with
Orthanc's authentication on: an admin builds a rule set in the forms (chest CT to the lung
processor, with a destination that never answers; brain MR nowhere), sees a misspelt attribute
flagged at its field, fixes it, saves, dry-runs, replays a draft over three stored studies, watches
the job the saved rule makes, opens its page, resends its dead delivery, compares two versions and
rolls back; a user who is not an admin sees the same pages read-only (ui_test.mjs says what is
checked). Screenshots are kept in $PROCNODE_UI_SCREENSHOTS (default: the build folder) to be
looked at."""
import os
import shutil
import subprocess
import time

import pydicom
import pytest

from conftest import BUILD_DIR, CHEST_CT, SHARED_DATA
from helpers import copy_study, wait_jobs_finished
from orthanc import send_dicom
from ports import free_port

UI_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "ui")


@pytest.mark.skipif(not os.path.exists("/usr/bin/chromium"), reason="Debian's chromium is not installed")
def test_admin_page_edits_validates_saves_dry_runs_and_lists_jobs(orthanc_factory, job_db, workdir):
    assert os.path.isdir(os.path.join(UI_DIR, "node_modules", "playwright-core")), \
        "run scripts/install-deps.sh (npm ci in tests/ui)"
    # NOWHERE: a destination that never answers (a closed port): its deliveries end as dead letters.
    users = {"admin": "a-secret", "viewer": "v-secret"}
    orthanc = orthanc_factory({"Database": job_db[1], "Workers": 2, "DeliveryBackoffSeconds": 1, "DeliveryMaxAttempts": 1,
                               "Destinations": {"NOWHERE": "nowhere"}, "Admins": ["admin"],
                               "ViewerUrl": "https://viewer.example/ohif/viewer?StudyInstanceUIDs={StudyInstanceUID}"
                                            "&SeriesInstanceUIDs={SeriesInstanceUID}"},
                              users=users,
                              extra_config={"DicomModalities": {"nowhere": ["NOWHERE", "127.0.0.1", free_port()]}}).start()
    # A head CT from another scanner whose StudyDescription is markup: the page must show it as text.
    head = copy_study(os.path.join(SHARED_DATA, "dcm_qa_ct", "In", "GE"), os.path.join(workdir, "head-ct"))
    for name in os.listdir(head):
        ds = pydicom.dcmread(os.path.join(head, name))
        ds.StudyDescription = "<script>window.pwned=1</script>Head"
        ds.save_as(os.path.join(head, name))
    send_dicom(orthanc, [CHEST_CT], calling_aet="CT01")
    send_dicom(orthanc, [os.path.join(SHARED_DATA, "mr-brain-sag-mprage")], calling_aet="MR01", allow_failures=True)
    send_dicom(orthanc, [head], calling_aet="CT02")
    finished = wait_jobs_finished(orthanc, 3)  # made by the built-in default rule (version 0)
    studies = {orthanc.get(f"/studies/{j['study']}")["MainDicomTags"].get("StudyDescription", ""): j["study"] for j in finished}
    [head_study] = [s for d, s in studies.items() if d.startswith("<script>")]
    [job] = [j for j in finished if j["result"] and j["result"]["modality"] == "CT" and j["study"] != head_study]
    [mr_job] = [j for j in finished if j["result"] and j["result"]["modality"] == "MR"]
    shots = os.environ.get("PROCNODE_UI_SCREENSHOTS", os.path.join(BUILD_DIR, "ui-screenshots"))
    shutil.rmtree(shots, ignore_errors=True)
    os.makedirs(shots)
    node = shutil.which("node")
    env = dict(os.environ, PROCNODE_UI_ADMIN="admin:" + users["admin"], PROCNODE_UI_VIEWER="viewer:" + users["viewer"])
    browser = subprocess.Popen([node, os.path.join(UI_DIR, "ui_test.mjs"), orthanc.url, shots, job["study"], mr_job["study"],
                                head_study], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=UI_DIR, env=env)
    deadline = time.time() + 180
    while not os.path.exists(os.path.join(shots, "saved")) and browser.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    if os.path.exists(os.path.join(shots, "saved")):
        # A new series of the chest study arrives: the saved rule (version 1) routes it.
        send_dicom(orthanc, [os.path.join(SHARED_DATA, "ct-chest-lung-dx-a0001", "standard-kernel")], calling_aet="CT01")
    output, _ = browser.communicate(timeout=300)
    print(output)
    assert browser.returncode == 0, output
    assert sorted(os.listdir(shots)) == ["1-loaded.png", "2-validation-error.png", "3-dry-run.png", "3b-dry-run-mr.png",
                                         "3c-replay.png", "4-jobs.png", "5-job-page.png", "6-history.png", "7-read-only.png", "saved"]
