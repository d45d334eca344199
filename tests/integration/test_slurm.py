"""Jobs on a real Slurm cluster (issue 14): a throwaway one-node cluster (Debian's munged,
slurmctld, slurmd; tests/harness/slurm.py) beside PostgreSQL and Orthanc. The node submits each
Slurm job as a batch job running `procnode worker --once ID` (the compute node is this machine),
follows it with squeue, cancels it with scancel, and maps a batch job that ended without finishing
its job to the retry policy in Slurm's words."""
import json
import os
import subprocess
import time

import pytest

from conftest import CHEST_CT, SHARED_DATA
from helpers import JOB_TIMEOUT, copy_study, jobs, result_series
from orthanc import send_dicom

import slurm as slurm_harness

pytestmark = pytest.mark.skipif(slurm_harness.available() is not None, reason=str(slurm_harness.available()))

HEAD_CT = os.path.join(SHARED_DATA, "dcm_qa_ct", "In", "GE")


@pytest.fixture
def cluster(workdir):
    cluster = slurm_harness.SlurmCluster(directory=os.path.join(workdir, "slurm"), memory_mb=8192)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


def slurm_node(orthanc_factory, job_db, cluster, cli_path, workdir, rules, executor=None, worker=None, procnode=None):
    """An Orthanc whose rules send jobs to Slurm, with no local worker; the compute node's worker
    configuration (job database, this Orthanc's URL, test hooks) in a file as a site would keep it."""
    worker_config = os.path.join(workdir, "worker.json")
    rules_file = os.path.join(workdir, "rules.json")
    with open(rules_file, "w") as f:
        json.dump(rules, f)
    settings = {"Kind": "slurm", "WorkerConfig": worker_config, "LogDirectory": os.path.join(workdir, "slurm-logs"),
                "SlurmConf": cluster.conf, "Procnode": cli_path, "PollSeconds": 0.5, "CpusPerJob": 1}
    settings.update(executor or {})
    orthanc = orthanc_factory({"Database": job_db[1], "Workers": 0, "RulesFile": rules_file, "Executor": settings,
                               **(procnode or {})})
    with open(worker_config, "w") as f:
        json.dump({"ProcNode": {"Database": job_db[1], **(worker or {})}, "Orthanc": {"Url": orthanc.url}}, f)
    return orthanc.start()


def rule(pipeline="volume-stats", **action):
    return {"rules": [{"id": "to-slurm", "match": {"attribute": "Modality", "equals": "CT"},
                       "action": {"pipeline": pipeline, "executor": "slurm", **action}}]}


def job_where(orthanc, predicate, what, timeout=JOB_TIMEOUT):
    return orthanc.wait_for(lambda: next((orthanc.get(f"/procnode/jobs/{j['id']}") for j in jobs(orthanc) if predicate(j)), None),
                            timeout, what)


def squeue(cluster):
    return cluster.run(["squeue", "-h", "-o", "%i|%T"], check=False).stdout.split()


def test_a_chest_ct_runs_as_a_slurm_job_and_its_results_come_back(orthanc_factory, job_db, cluster, cli_path, workdir):
    orthanc = slurm_node(orthanc_factory, job_db, cluster, cli_path, workdir, rule("lung-emphysema"))
    status = orthanc.get("/procnode/status")
    assert status["executor"]["slurm"] is True and status["executor"]["problem"] is None, status["executor"]
    sent = time.time()
    send_dicom(orthanc, [CHEST_CT])
    job = job_where(orthanc, lambda j: j["state"] in ("done", "failed"), "the lung job finished through Slurm", 300)
    assert job["state"] == "done", job
    assert job["executor"] == "slurm" and job["slurm"]["job_id"].isdigit(), job.get("slurm")
    kinds = [e["kind"] for e in job["events"]]
    assert kinds[:3] == ["enqueued", "submitted", "claimed"] and kinds[-1] == "done", kinds
    submitted = next(e for e in job["events"] if e["kind"] == "submitted")
    assert submitted["message"] == "Slurm job " + job["slurm"]["job_id"]
    # The script is on the job (REST) and kept with the batch job's log; it holds no secret.
    script = job["slurm"]["script"]
    assert f"worker --once {job['id']}" in script and "#SBATCH --no-requeue" in script, script
    assert job_db[1] not in script and "postgresql://" not in script
    folder = os.path.join(workdir, "slurm-logs", f"job-{job['id']}")
    assert any(name.endswith(".sh") for name in os.listdir(folder)), os.listdir(folder)
    log = os.path.join(folder, f"slurm-{job['slurm']['job_id']}.out")
    assert os.path.exists(log), os.listdir(folder)
    assert len(result_series(orthanc, job["study"])) == 3, "PDF, SEG and SR stored back by the compute node's worker"
    assert job["result"]["measurements"]["total"]["volume_ml"] > 1000
    claimed = next(e for e in job["events"] if e["kind"] == "claimed")
    print(f"slurm path: sent to done {time.time() - sent:.1f} s; claimed by {claimed['owner']}")


def test_scancel_outside_procnode_retries_then_fails_with_slurms_reason(orthanc_factory, job_db, cluster, cli_path, workdir):
    # The batch jobs wait an hour to begin (never start here), so they can be cancelled from outside.
    orthanc = slurm_node(orthanc_factory, job_db, cluster, cli_path, workdir, rule(),
                         executor={"ExtraOptions": ["--begin=now+3600"]},
                         procnode={"MaxAttempts": 2, "RetryBackoffSeconds": 0.5})
    send_dicom(orthanc, [copy_study(HEAD_CT, os.path.join(workdir, "head"))])
    seen = []
    for attempt in range(2):
        job = job_where(orthanc, lambda j: j.get("slurm") and j["slurm"]["tracked"] and j["slurm"]["reason"] == "BeginTime"
                        and j["slurm"]["job_id"] not in seen, f"batch job {attempt + 1} pending in Slurm (BeginTime)")
        assert job["slurm"]["state"] == "PENDING" and "to start (BeginTime)" in (job["waiting_for"] or ""), job
        seen.append(job["slurm"]["job_id"])
        cluster.run(["scancel", seen[-1]])
    job = job_where(orthanc, lambda j: j["state"] == "failed", "the job failed after its second batch job was cancelled")
    assert f"Slurm job {seen[1]} was cancelled outside procnode (CANCELLED" in job["error"], job["error"]
    retry = [e for e in job["events"] if e["kind"] == "retry"]
    assert len(retry) == 1 and f"Slurm job {seen[0]} was cancelled outside procnode" in retry[0]["message"], job["events"]
    assert job["attempts"] == 2 and not job["slurm"]["tracked"]


def test_cancelling_in_procnode_cancels_the_slurm_job(orthanc_factory, job_db, cluster, cli_path, workdir):
    orthanc = slurm_node(orthanc_factory, job_db, cluster, cli_path, workdir, rule(),
                         executor={"ExtraOptions": ["--begin=now+3600"]})
    send_dicom(orthanc, [copy_study(HEAD_CT, os.path.join(workdir, "head"))])
    job = job_where(orthanc, lambda j: j.get("slurm") and j["slurm"]["state"] == "PENDING", "the batch job pending")
    batch = job["slurm"]["job_id"]
    assert f"{batch}|PENDING" in squeue(cluster)
    orthanc.post(f"/procnode/jobs/{job['id']}/cancel", {})
    orthanc.wait_for(lambda: not any(line.startswith(batch + "|") and "PENDING" in line for line in squeue(cluster)), 30,
                     "the batch job gone from Slurm's queue")
    done = orthanc.get(f"/procnode/jobs/{job['id']}")
    assert done["state"] == "cancelled", done
    time.sleep(2)  # a few polls later nothing was submitted again
    assert orthanc.get(f"/procnode/jobs/{job['id']}")["state"] == "cancelled"
    assert [e["kind"] for e in orthanc.get(f"/procnode/jobs/{job['id']}")["events"]].count("submitted") == 1


def test_cancelling_a_running_job_ends_its_batch_job(orthanc_factory, job_db, cluster, cli_path, workdir):
    orthanc = slurm_node(orthanc_factory, job_db, cluster, cli_path, workdir, rule(),
                         worker={"TestHooks": {"PauseAfterStage": "volume", "PauseSeconds": 120}})
    send_dicom(orthanc, [copy_study(HEAD_CT, os.path.join(workdir, "head"))])
    job = job_where(orthanc, lambda j: j["state"] == "running" and "paused after volume" in j["progress_message"],
                    "the job running in its batch job")
    batch = job["slurm"]["job_id"]
    orthanc.post(f"/procnode/jobs/{job['id']}/cancel", {})
    done = job_where(orthanc, lambda j: j["state"] == "cancelled", "the running job cancelled", 60)
    orthanc.wait_for(lambda: all(not line.startswith(batch + "|RUNNING") for line in squeue(cluster)), 30,
                     "its batch job no longer running")
    assert [e["kind"] for e in done["events"]].count("submitted") == 1 and done["error"] is None, done["events"]


def test_a_batch_job_that_never_starts_is_cancelled_and_retried_then_failed(orthanc_factory, job_db, cluster, cli_path,
                                                                           workdir):
    orthanc = slurm_node(orthanc_factory, job_db, cluster, cli_path, workdir, rule(),
                         executor={"ExtraOptions": ["--begin=now+3600"], "StartTimeoutSeconds": 2},
                         procnode={"MaxAttempts": 2, "RetryBackoffSeconds": 0.5})
    send_dicom(orthanc, [copy_study(HEAD_CT, os.path.join(workdir, "head"))])
    job = job_where(orthanc, lambda j: j["state"] == "failed", "the job failed after two batch jobs that never started", 60)
    assert "did not start within 2 s (PENDING, reason BeginTime); cancelled (Executor.StartTimeoutSeconds)" in job["error"], job["error"]
    batches = [e["message"].split()[-1] for e in job["events"] if e["kind"] == "submitted"]
    assert len(batches) == 2, job["events"]
    states = cluster.run(["squeue", "-h", "--states=all", "-o", "%i|%T", "-j", ",".join(batches)]).stdout.split()
    assert all(line.endswith("|CANCELLED") for line in states), states


def test_a_time_limit_too_short_fails_with_timeout(orthanc_factory, job_db, cluster, cli_path, workdir):
    # The worker pauses 300 s after the volume stage (test hook); Slurm's limit is one minute.
    orthanc = slurm_node(orthanc_factory, job_db, cluster, cli_path, workdir, rule(),
                         executor={"TimeLimitSeconds": 60},
                         worker={"TestHooks": {"PauseAfterStage": "volume", "PauseSeconds": 300}})
    send_dicom(orthanc, [copy_study(HEAD_CT, os.path.join(workdir, "head"))])
    job = job_where(orthanc, lambda j: j["state"] == "failed", "the job failed on Slurm's time limit", 240)
    assert "TIMEOUT" in job["error"] and "time limit" in job["error"], job["error"]
    assert [e["kind"] for e in job["events"]].count("submitted") == 1, "a time limit is not retried with the same limit"


def test_at_most_max_submitted_batch_jobs_are_in_slurm(orthanc_factory, job_db, cluster, cli_path, workdir):
    orthanc = slurm_node(orthanc_factory, job_db, cluster, cli_path, workdir, rule(), executor={"MaxSubmitted": 3})
    studies = [copy_study(HEAD_CT, os.path.join(workdir, f"head-{n}"), n) for n in range(12)]
    send_dicom(orthanc, studies)
    most, started = 0, time.time()
    while time.time() - started < 600:
        most = max(most, len(squeue(cluster)))
        listed = jobs(orthanc)
        if len(listed) == 12 and all(j["state"] in ("done", "failed") for j in listed):
            break
        time.sleep(0.1)
    listed = jobs(orthanc)
    assert len(listed) == 12 and all(j["state"] == "done" for j in listed), [(j["id"], j["state"], j["error"]) for j in listed]
    assert 1 <= most <= 3, f"{most} batch jobs in Slurm at once"
    print(f"12 studies through Slurm (at most {most} at once): {time.time() - started:.1f} s")


def test_a_compute_node_lost_mid_job_is_recovered_with_one_result(orthanc_factory, job_db, cluster, cli_path, workdir):
    # The worker pauses 15 s after the volume stage (test hook); meanwhile slurmd and the worker are
    # killed outright, as when a compute node loses power. Slurm ends the batch job; procnode
    # queues the job again and, once the node is back, it runs and stores its result once.
    orthanc = slurm_node(orthanc_factory, job_db, cluster, cli_path, workdir, rule(),
                         worker={"TestHooks": {"PauseAfterStage": "volume", "PauseSeconds": 15}},
                         procnode={"RetryBackoffSeconds": 0.5, "LeaseSeconds": 10})
    send_dicom(orthanc, [copy_study(HEAD_CT, os.path.join(workdir, "head"))])
    job = job_where(orthanc, lambda j: j["state"] == "running" and "paused after volume" in j["progress_message"],
                    "the job running on the compute node, paused after its volume stage")
    first = job["slurm"]["job_id"]
    cluster.kill_node()
    subprocess.run(["pkill", "-KILL", "-f", f"worker --once {job['id']} "], check=False)
    retried = job_where(orthanc, lambda j: any(e["kind"] == "retry" for e in orthanc.get(f"/procnode/jobs/{j['id']}")["events"]),
                        "the job queued again after its node failed", 120)
    retry = next(e for e in retried["events"] if e["kind"] == "retry")
    # Slurm's words: NODE_FAIL once the controller gives the node up, or FAILED (JobLaunchFailure)
    # when it learns sooner that the job's step is gone.
    assert f"Slurm job {first}" in retry["message"] and ("NODE_FAIL" in retry["message"] or "FAILED" in retry["message"]), retry
    cluster.start_node()
    done = job_where(orthanc, lambda j: j["state"] in ("done", "failed"), "the job done on the node back in service", 180)
    assert done["state"] == "done", done
    assert done["slurm"]["job_id"] != first and done["attempts"] == 2
    assert len(result_series(orthanc, done["study"])) == 1, "exactly one result"


def test_a_standalone_worker_on_a_submit_host_submits_for_an_orthanc_without_slurm(orthanc_factory, job_db, cluster, cli_path,
                                                                                    workdir):
    # The Orthanc's host has no Slurm client (Submit false): a `procnode worker` with the same
    # Executor section in its configuration submits and follows the Orthanc's Slurm jobs.
    orthanc = slurm_node(orthanc_factory, job_db, cluster, cli_path, workdir, rule(), executor={"Submit": False})
    assert orthanc.get("/procnode/status")["executor"]["submits_here"] is False
    submitter_config = os.path.join(workdir, "submitter.json")
    with open(submitter_config, "w") as f:
        json.dump({"ProcNode": {"Database": job_db[1], "Executor": {
            "Kind": "slurm", "WorkerConfig": os.path.join(workdir, "worker.json"), "SlurmConf": cluster.conf,
            "LogDirectory": os.path.join(workdir, "slurm-logs"), "Procnode": cli_path, "PollSeconds": 0.5, "CpusPerJob": 1}},
                   "Orthanc": {"Url": orthanc.url}}, f)
    send_dicom(orthanc, [copy_study(HEAD_CT, os.path.join(workdir, "head"))])
    job_where(orthanc, lambda j: j["state"] == "queued", "the job enqueued")
    time.sleep(2)  # four of the Orthanc node's polls
    assert jobs(orthanc)[0]["state"] == "queued" and not jobs(orthanc)[0]["slurm"]["job_id"], "the Orthanc node submits nothing"
    log_path = os.path.join(workdir, "submitter.log")
    with open(log_path, "w") as log:
        submitter = subprocess.Popen([cli_path, "worker", "--config", submitter_config, "--workers", "1"],
                                     stdout=log, stderr=subprocess.STDOUT)
    try:
        job = job_where(orthanc, lambda j: j["state"] in ("done", "failed"), "the job done through the submitter's Slurm")
        assert job["state"] == "done" and job["slurm"]["job_id"], job
        claimed = next(e for e in job["events"] if e["kind"] == "claimed")
        assert f"/{submitter.pid}/" not in claimed["owner"], "run by the batch job's worker, not by the submitter's pool"
    finally:
        submitter.terminate()
        submitter.wait(timeout=30)
    with open(log_path) as f:
        assert "submitted to Slurm as job" in f.read()


def test_an_external_tool_runs_in_its_sandbox_on_the_compute_node(orthanc_factory, job_db, cluster, cli_path, workdir):
    # Issue 15, item 6: a tool's job goes to Slurm with the tool manifest's CPUs and time limit, and
    # the compute node's worker runs it in the same sandbox as a local worker would.
    tools = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "tools")
    orthanc = slurm_node(orthanc_factory, job_db, cluster, cli_path, workdir,
                         rule("volume-above", parameters={"threshold": 100}),
                         procnode={"ToolsDirectory": tools}, worker={"ToolsDirectory": tools})
    send_dicom(orthanc, [copy_study(HEAD_CT, os.path.join(workdir, "head"))])
    job = job_where(orthanc, lambda j: j["state"] in ("done", "failed"), "the tool's job finished through Slurm", 300)
    assert job["state"] == "done", job["error"]
    script = job["slurm"]["script"]
    assert "#SBATCH --cpus-per-task=1\n" in script and "#SBATCH --time=2\n" in script, script  # the manifest's 1 CPU, 120 s
    tool = job["result"]["tool"]
    assert tool["tool"] == "volume-above" and tool["exit_code"] == 0 and len(tool["manifest_sha256"]) == 64, tool
    measured = job["result"]["measurements"]["global"]
    assert measured["Threshold"] == {"value": 100, "unit": "1"} and measured["Voxels above threshold"]["value"] > 0, measured
    claimed = next(e for e in job["events"] if e["kind"] == "claimed")
    assert claimed["owner"] != "", claimed
    assert [r["kind"] for r in job["result"]["results"]] == ["encapsulated-pdf"]
    assert len(result_series(orthanc, job["study"])) == 1, "the report stored back by the compute node's worker"
