"""procnode worker (issue 13, item 4): a standalone process that claims jobs from the job database,
fetches the study from the Orthanc that enqueued it over REST (with credentials from the
environment), runs the pipeline and stores the results back; SIGTERM releases its running jobs,
and `--once JOB_ID` runs one given job."""
import json
import os
import signal
import subprocess
import time

from conftest import CHEST_CT
from helpers import JOB_TIMEOUT, jobs, result_series
from orthanc import send_dicom

USERS = {"worker": "w-secret", "admin": "a-secret"}


def start_worker(cli_path, orthanc, db, *extra, env=None):
    environment = dict(os.environ, PROCNODE_ORTHANC_PASSWORD=USERS["worker"], **(env or {}))
    log = open(os.path.join(orthanc.dir, f"worker-{time.time_ns()}.log"), "w+")
    process = subprocess.Popen([cli_path, "worker", "--db", db, "--orthanc", orthanc.url, "--orthanc-user", "worker",
                                "--workers", "1", "--lease-seconds", "6", *extra],
                               stdout=log, stderr=subprocess.STDOUT, env=environment)
    return process, log


def paused_job(cli_path, orthanc, db, stage):
    """A standalone worker whose configuration pauses jobs after `stage` (test hook), the chest CT
    sent, and (worker, its log, the job once paused there)."""
    config = os.path.join(orthanc.dir, f"pause-after-{stage}.json")
    with open(config, "w") as f:
        json.dump({"ProcNode": {"TestHooks": {"PauseAfterStage": stage, "PauseSeconds": 60}}}, f)
    worker, log = start_worker(cli_path, orthanc, db, "--config", config)
    send_dicom(orthanc, [CHEST_CT])
    job = orthanc.wait_for(lambda: next((j for j in jobs(orthanc) if j["state"] == "running"
                                         and f"paused after {stage}" in j["progress_message"]), None),
                           JOB_TIMEOUT, f"the job running in the worker, paused after {stage}")
    return worker, log, job


def log_text(log):
    log.flush()
    log.seek(0)
    return log.read()


def test_a_standalone_worker_runs_the_job_and_stores_results_in_orthanc(orthanc_factory, job_db, cli_path):
    orthanc = orthanc_factory({"Database": job_db[1], "Workers": 0}, users=USERS).start()
    worker, log = start_worker(cli_path, orthanc, job_db[1])
    try:
        send_dicom(orthanc, [CHEST_CT])
        [job] = orthanc.wait_for(lambda: [j for j in jobs(orthanc) if j["state"] == "done"] or None, JOB_TIMEOUT,
                                 "the job done by the standalone worker")
        detail = orthanc.get(f"/procnode/jobs/{job['id']}")
        claimed = next(e for e in detail["events"] if e["kind"] == "claimed")
        assert f"/{worker.pid}/" in claimed["owner"], claimed
        assert len(result_series(orthanc, job["study"])) == 1, "results stored back over REST"
        text = log_text(log)
        assert "worker: Orthanc" in text and "as worker" in text
        assert USERS["worker"] not in text, "the password never reaches the log"
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0, log_text(log)
        assert "worker: stopped" in log_text(log)
    finally:
        if worker.poll() is None:
            worker.kill()


def test_sigterm_releases_a_running_job_and_once_runs_it(orthanc_factory, job_db, cli_path):
    # The in-plugin pool holds no worker; the job is paused after its volume stage by the test hook,
    # which the standalone worker reads from its configuration file.
    orthanc = orthanc_factory({"Database": job_db[1], "Workers": 0}, users=USERS).start()
    worker, log, job = paused_job(cli_path, orthanc, job_db[1], "volume")
    try:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0, log_text(log)
    finally:
        if worker.poll() is None:
            worker.kill()
    released = orthanc.get(f"/procnode/jobs/{job['id']}")
    assert released["state"] == "queued" and "released" in [e["kind"] for e in released["events"]], released

    environment = dict(os.environ, PROCNODE_ORTHANC_PASSWORD=USERS["worker"])
    once = subprocess.run([cli_path, "worker", "--db", job_db[1], "--orthanc", orthanc.url, "--orthanc-user", "worker",
                           "--once", str(job["id"])], capture_output=True, text=True, timeout=300, env=environment)
    assert once.returncode == 0, once.stderr[-3000:]
    assert json.loads(once.stdout) == {"job": job["id"], "state": "done"}
    assert orthanc.get(f"/procnode/jobs/{job['id']}")["state"] == "done"
    assert len(result_series(orthanc, job["study"])) == 1
    again = subprocess.run([cli_path, "worker", "--db", job_db[1], "--orthanc", orthanc.url, "--orthanc-user", "worker",
                            "--once", str(job["id"])], capture_output=True, text=True, timeout=60, env=environment)
    assert again.returncode == 2 and json.loads(again.stdout)["state"] == "not claimable", again.stdout


def test_wrong_orthanc_credentials_are_refused_naming_the_cause(orthanc_factory, job_db, cli_path):
    orthanc = orthanc_factory({"Database": job_db[1], "Workers": 0}, users=USERS).start()
    result = subprocess.run([cli_path, "worker", "--db", job_db[1], "--orthanc", orthanc.url, "--orthanc-user", "worker"],
                            capture_output=True, text=True, timeout=60,
                            env=dict(os.environ, PROCNODE_ORTHANC_PASSWORD="wrong"))
    assert result.returncode == 1, result.stderr
    assert "HTTP 401 (check the worker's Orthanc credentials)" in result.stderr, result.stderr
    assert "wrong" not in result.stderr


def test_a_worker_killed_mid_job_is_replaced_by_another_and_the_results_exist_once(orthanc_factory, job_db, cli_path):
    orthanc = orthanc_factory({"Database": job_db[1], "Workers": 0}, users=USERS).start()
    doomed, _, job = paused_job(cli_path, orthanc, job_db[1], "store")
    assert len(result_series(orthanc, job["study"])) == 1, "stored before the kill"
    doomed.kill()  # SIGKILL: no release; the lease (6 s) must expire
    doomed.wait(timeout=30)
    rescuer, rescuer_log = start_worker(cli_path, orthanc, job_db[1])
    try:
        done = orthanc.wait_for(lambda: (lambda j: j if j["state"] == "done" else None)(
            orthanc.get(f"/procnode/jobs/{job['id']}")), JOB_TIMEOUT + 10, "the job finished by the second worker")
        kinds = [e["kind"] for e in done["events"]]
        assert kinds == ["enqueued", "claimed", "reclaimed", "done"], kinds
        assert done["attempts"] == 2
        [series] = result_series(orthanc, job["study"])
        assert len(series["Instances"]) == 1, "exactly one result instance"
        assert len(jobs(orthanc)) == 1
    finally:
        rescuer.kill()


def test_a_job_that_needs_a_gpu_waits_saying_so_and_workers_are_listed(orthanc_factory, job_db, cli_path):
    # No GPU here: a rule asking for one makes a job no worker may claim, and it says why.
    orthanc = orthanc_factory({"Database": job_db[1], "Workers": 1, "Gpu": "auto"}, users=USERS).start()
    orthanc.auth = ("admin", USERS["admin"])
    orthanc.put("/procnode/rules", {"rules": [{"id": "gpu-only", "match": {"attribute": "Modality", "equals": "CT"},
                                               "action": {"pipeline": "volume-stats", "device": "gpu"}}]})
    worker, log = start_worker(cli_path, orthanc, job_db[1])
    try:
        send_dicom(orthanc, [CHEST_CT])
        [job] = orthanc.wait_for(lambda: jobs(orthanc) or None, JOB_TIMEOUT, "the job")
        time.sleep(3)  # both pools poll several times
        job = orthanc.get(f"/procnode/jobs/{job['id']}")
        assert job["state"] == "queued" and job["needs_gpu"] is True, job
        # 512 x 512 x 64 voxels at volume-stats' 4 bytes per voxel: 0.1 GiB of device memory.
        assert job["waiting_for"] == "a worker with a GPU and 0.1 GiB: none is running", job
        assert job["spec"]["requirements"]["device_memory_bytes"] == 512 * 512 * 64 * 4, job["spec"]
        workers = orthanc.wait_for(lambda: (lambda ws: ws if len(ws) == 2 else None)(orthanc.get("/procnode/workers")),
                                   30, "the plugin pool and the standalone worker registered")
        assert sorted(w["kind"] for w in workers) == ["plugin", "standalone"], workers
        assert all(w["live"] and w["gpu"] is None and w["orthanc"] == "procnode-test" for w in workers), workers
        assert all(w["host_memory_bytes"] > 2**30 and w["gpu_memory_bytes"] == 0 for w in workers), workers
        standalone = next(w for w in workers if w["kind"] == "standalone")
        assert f"/{worker.pid}/" in standalone["owner"]
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0
        assert [w["kind"] for w in orthanc.get("/procnode/workers")] == ["plugin"], "a stopped worker unregisters"
    finally:
        if worker.poll() is None:
            worker.kill()
