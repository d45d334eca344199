"""The admin page end to end in Debian's headless Chromium (playwright-core from npm):
load, see a validation error at its JSON pointer, fix, save, dry-run on the chest CT, see the jobs.
Screenshots are kept in $PROCNODE_UI_SCREENSHOTS (default: the build folder) to be looked at."""
import os
import shutil
import subprocess

import pytest

from conftest import BUILD_DIR, CHEST_CT
from helpers import wait_jobs_finished
from orthanc import send_dicom

UI_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "ui")


@pytest.mark.skipif(not os.path.exists("/usr/bin/chromium"), reason="Debian's chromium is not installed")
def test_admin_page_edits_validates_saves_dry_runs_and_lists_jobs(orthanc_factory, job_db):
    assert os.path.isdir(os.path.join(UI_DIR, "node_modules", "playwright-core")), \
        "run scripts/install-deps.sh (npm ci in tests/ui)"
    orthanc = orthanc_factory({"Database": job_db[1], "Workers": 2}).start()
    send_dicom(orthanc, [CHEST_CT], calling_aet="CT01")
    [job] = wait_jobs_finished(orthanc, 1)  # made by the built-in default rule (version 0)
    shots = os.environ.get("PROCNODE_UI_SCREENSHOTS", os.path.join(BUILD_DIR, "ui-screenshots"))
    shutil.rmtree(shots, ignore_errors=True)
    os.makedirs(shots)
    node = shutil.which("node")
    result = subprocess.run([node, os.path.join(UI_DIR, "ui_test.mjs"), orthanc.url, shots, job["study"]],
                            capture_output=True, text=True, timeout=300, cwd=UI_DIR)
    print(result.stdout + result.stderr)
    assert result.returncode == 0, result.stdout + result.stderr
    assert sorted(os.listdir(shots)) == ["1-loaded.png", "2-validation-error.png", "3-dry-run.png", "4-jobs.png"]
