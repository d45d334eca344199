"""The admin page end to end in Debian's headless Chromium (playwright-core from npm):
load, see a validation error at its JSON pointer, fix, save a rule sending chest CT to the lung
processor (with a destination that never answers) and brain MR nowhere, dry-run it on both studies,
watch the job it makes, see its delivery end as a dead letter and resend it.
Screenshots are kept in $PROCNODE_UI_SCREENSHOTS (default: the build folder) to be looked at."""
import os
import shutil
import subprocess
import time

import pytest

from conftest import BUILD_DIR, CHEST_CT, SHARED_DATA
from helpers import wait_jobs_finished
from orthanc import send_dicom
from ports import free_port

UI_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "ui")


@pytest.mark.skipif(not os.path.exists("/usr/bin/chromium"), reason="Debian's chromium is not installed")
def test_admin_page_edits_validates_saves_dry_runs_and_lists_jobs(orthanc_factory, job_db):
    assert os.path.isdir(os.path.join(UI_DIR, "node_modules", "playwright-core")), \
        "run scripts/install-deps.sh (npm ci in tests/ui)"
    # NOWHERE: a destination that never answers (a closed port): its deliveries end as dead letters.
    orthanc = orthanc_factory({"Database": job_db[1], "Workers": 2, "DeliveryBackoffSeconds": 1, "DeliveryMaxAttempts": 1,
                               "Destinations": {"NOWHERE": "nowhere"}},
                              extra_config={"DicomModalities": {"nowhere": ["NOWHERE", "127.0.0.1", free_port()]}}).start()
    send_dicom(orthanc, [CHEST_CT], calling_aet="CT01")
    send_dicom(orthanc, [os.path.join(SHARED_DATA, "mr-brain-sag-mprage")], calling_aet="MR01", allow_failures=True)
    finished = wait_jobs_finished(orthanc, 2)  # made by the built-in default rule (version 0)
    [job] = [j for j in finished if j["result"] and j["result"]["modality"] == "CT"]
    [mr_job] = [j for j in finished if j["result"] and j["result"]["modality"] == "MR"]
    shots = os.environ.get("PROCNODE_UI_SCREENSHOTS", os.path.join(BUILD_DIR, "ui-screenshots"))
    shutil.rmtree(shots, ignore_errors=True)
    os.makedirs(shots)
    node = shutil.which("node")
    browser = subprocess.Popen([node, os.path.join(UI_DIR, "ui_test.mjs"), orthanc.url, shots, job["study"], mr_job["study"]],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=UI_DIR)
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
                                         "3c-replay.png", "4-jobs.png", "5-job-page.png", "saved"]
