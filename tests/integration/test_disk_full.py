"""Issue 20, item 6: a full disk during a job. Orthanc runs in a mount namespace of its own where
its storage folder and procnode's work directory are a small tmpfs (the test reaches it through
/proc/PID/root); the test fills it while a job is under way. The job waits or fails with the
system's reason in its error, Orthanc keeps answering, the queue keeps working, and once space is
freed the same job completes."""
import errno
import os
import shutil
import time

import pytest

from conftest import CHEST_CT
from helpers import JOB_TIMEOUT, jobs, result_series
from orthanc import send_dicom

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
TMPFS_MB = 96  # the chest CT (33 MB) and its results fit; a filler takes the rest


def launcher(mountpoint):
    """unshare + mount: Orthanc's own tmpfs at `mountpoint`, gone with it."""
    if not shutil.which("unshare"):
        pytest.skip("util-linux unshare is not installed")
    user = [] if os.geteuid() == 0 else ["--map-root-user"]
    script = 'mount -t tmpfs -o size=%dm procnode-test "$0" && mkdir "$0/storage" "$0/work" && exec "$@"' % TMPFS_MB
    return ["unshare", "--mount"] + user + ["sh", "-c", script, mountpoint]


def start_on_tmpfs(orthanc_factory, job_db, workdir, **procnode):
    base = os.path.join(workdir, "orthanc")
    volatile = os.path.join(base, "volatile")
    os.makedirs(volatile)
    orthanc = orthanc_factory(dict({"Database": job_db[1], "Workers": 1, "RetryBackoffSeconds": 1,
                                    "WorkDirectory": os.path.join(volatile, "work")}, **procnode),
                              stable_age=1, launcher=launcher(volatile),
                              extra_config={"StorageDirectory": os.path.join(volatile, "storage"),
                                            "IndexDirectory": os.path.join(base, "index")})
    try:
        orthanc.start()
    except RuntimeError as e:
        if "mount" in str(e) and ("ermission" in str(e) or "not permitted" in str(e)):
            pytest.skip(f"this machine allows no private tmpfs mount: {e}")
        raise
    inside = f"/proc/{orthanc.process.pid}/root{volatile}"  # the tmpfs as Orthanc sees it
    assert os.path.isdir(os.path.join(inside, "storage")), "Orthanc's storage is on its tmpfs"
    return orthanc, inside


def fill(folder):
    """Writes a filler file until the file system is full; returns its path."""
    path = os.path.join(folder, "filler")
    chunk = b"\0" * (1 << 20)
    with open(path, "wb", buffering=0) as f:
        try:
            while True:
                f.write(chunk)
        except OSError as e:
            assert e.errno == errno.ENOSPC, e
    with open(path, "ab", buffering=0) as f:  # the last few blocks
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError:
            pass
    return path


def job_where(orthanc, predicate, timeout, what):
    return orthanc.wait_for(lambda: next((j for j in jobs(orthanc) if predicate(j)), None), timeout, what)


def test_orthancs_storage_full_while_a_job_runs_the_job_waits_with_the_reason_and_completes_once_there_is_room(
        orthanc_factory, job_db, workdir):
    orthanc, inside = start_on_tmpfs(orthanc_factory, job_db, workdir, MaxAttempts=5,
                                     TestHooks={"PauseAfterStage": "volume", "PauseSeconds": 3})
    orthanc.put("/procnode/rules", {"rules": [{"id": "ct", "match": {"attribute": "Modality", "equals": "CT"},
                                               "action": {"pipeline": "lung-emphysema", "device": "cpu"}}]})
    send_dicom(orthanc, [CHEST_CT])
    job = job_where(orthanc, lambda j: j["state"] == "running" and "paused after volume" in j["progress_message"],
                    JOB_TIMEOUT, "the job paused after its volume stage")
    filler = fill(inside)
    # Its results cannot be stored: the attempt fails with Orthanc's reason and a retry is scheduled.
    failed = orthanc.wait_for(lambda: (lambda j: j if j["attempts"] >= 1 and j["state"] in ("queued", "failed")
                                       and j["error"] else None)(orthanc.get(f"/procnode/jobs/{job['id']}")),
                              JOB_TIMEOUT, "the attempt failing on the full storage")
    assert "Orthanc's storage (StorageDirectory) is full or not writable" in failed["error"], failed["error"]
    assert orthanc.alive()
    assert orthanc.get("/system")["Name"] == "procnode-test"
    assert orthanc.get("/procnode/status")["database"]["ok"] is True
    assert result_series(orthanc, job["study"]) == [], "no half set of results"
    os.remove(filler)
    if orthanc.get(f"/procnode/jobs/{job['id']}")["state"] == "failed":
        orthanc.post(f"/procnode/jobs/{job['id']}/retry", {})
    done = orthanc.wait_for(lambda: (lambda j: j if j["state"] == "done" else None)(
        orthanc.get(f"/procnode/jobs/{job['id']}")), JOB_TIMEOUT, "the job done once there is room")
    assert len(result_series(orthanc, done["study"])) == 3, "one PDF, SEG and SR series"


def test_a_full_work_directory_fails_the_tools_job_with_the_reason_and_the_queue_carries_on(orthanc_factory, job_db,
                                                                                            workdir):
    orthanc, inside = start_on_tmpfs(orthanc_factory, job_db, workdir, MaxAttempts=2,
                                     ToolsDirectory=os.path.join(REPO, "tools"),
                                     TestHooks={"PauseAfterStage": "volume", "PauseSeconds": 3})
    orthanc.put("/procnode/rules", {"rules": [{"id": "tool", "match": {"attribute": "Modality", "equals": "CT"},
                                               "action": {"pipeline": "volume-above", "device": "cpu"}}]})
    send_dicom(orthanc, [CHEST_CT])
    job_where(orthanc, lambda j: j["state"] == "running" and "paused after volume" in j["progress_message"],
              JOB_TIMEOUT, "the job paused after its volume stage")
    # The study is stored; the work directory (on the same tmpfs) has no room for the tool's input.
    filler = fill(os.path.join(inside, "work"))
    failed = job_where(orthanc, lambda j: j["state"] == "failed", JOB_TIMEOUT, "the tool's job failing")
    assert "No space left on device" in failed["error"], failed["error"]
    assert failed["attempts"] == 2, failed
    assert orthanc.alive() and orthanc.get("/procnode/status")["database"]["ok"] is True
    os.remove(filler)
    orthanc.post(f"/procnode/jobs/{failed['id']}/retry", {})
    done = orthanc.wait_for(lambda: (lambda j: j if j["state"] == "done" else None)(
        orthanc.get(f"/procnode/jobs/{failed['id']}")), JOB_TIMEOUT, "the job done once there is room")
    assert done["result"]["measurements"], done["result"]
