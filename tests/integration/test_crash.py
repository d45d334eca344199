"""Orthanc dies (SIGKILL) or stops (SIGTERM) while a job runs: the job finishes exactly once."""
import pytest

from conftest import CHEST_CT
from helpers import JOB_TIMEOUT, jobs, result_series
from orthanc import send_dicom

LEASE = 4  # seconds; heartbeat every 1 s


def config(db, pause_after=None, seconds=60):
    procnode = {"Database": db, "Workers": 1, "LeaseSeconds": LEASE, "HeartbeatSeconds": 1,
                "PollSeconds": 0.5}
    if pause_after:
        procnode["TestHooks"] = {"PauseAfterStage": pause_after, "PauseSeconds": seconds}
    return procnode


def paused_job(orthanc, stage):
    """The running job, once it is paused by the test hook after `stage`."""
    message = f"paused after {stage} (TestHooks)"
    return orthanc.wait_for(
        lambda: next((j for j in jobs(orthanc) if j["state"] == "running" and j["progress_message"] == message), None),
        JOB_TIMEOUT, f"a running job {message}")


def restart(orthanc_factory, killed, procnode):
    """The same Orthanc (storage, index, ports) started again, with `procnode` settings."""
    server = orthanc_factory(procnode)
    server.dir, server.log_path = killed.dir, killed.log_path
    server.http_port, server.dicom_port = killed.http_port, killed.dicom_port
    return server.start()


@pytest.mark.parametrize("killed_after", ["volume", "store"])
def test_sigkill_mid_job_then_restart_finishes_once_with_one_result(orthanc_factory, job_db, killed_after):
    orthanc = orthanc_factory(config(job_db[1], pause_after=killed_after)).start()
    send_dicom(orthanc, [CHEST_CT])
    job = paused_job(orthanc, killed_after)
    if killed_after == "store":
        assert len(result_series(orthanc, job["study"])) == 1, "the result is stored before the kill"

    orthanc.kill()
    restarted = restart(orthanc_factory, orthanc, config(job_db[1]))

    done = restarted.wait_for(lambda: (lambda j: j if j["state"] in ("done", "failed") else None)(
        restarted.get(f"/procnode/jobs/{job['id']}")), JOB_TIMEOUT + LEASE, "the reclaimed job to finish")
    assert done["state"] == "done", done
    assert done["attempts"] == 2
    kinds = [e["kind"] for e in done["events"]]
    assert kinds == ["enqueued", "claimed", "reclaimed", "done"], kinds
    [series] = result_series(restarted, job["study"])
    assert len(series["Instances"]) == 1, "exactly one result instance"
    assert len(jobs(restarted)) == 1


def test_clean_shutdown_releases_the_running_job_and_a_restart_finishes_it(orthanc_factory, job_db):
    orthanc = orthanc_factory(config(job_db[1], pause_after="volume")).start()
    send_dicom(orthanc, [CHEST_CT])
    job = paused_job(orthanc, "volume")
    assert orthanc.stop(timeout=60) == 0, orthanc.log_tail()

    restarted = restart(orthanc_factory, orthanc, config(job_db[1]))
    released = restarted.get(f"/procnode/jobs/{job['id']}")
    assert "released" in [e["kind"] for e in released["events"]]
    done = restarted.wait_for(lambda: (lambda j: j if j["state"] == "done" else None)(
        restarted.get(f"/procnode/jobs/{job['id']}")), JOB_TIMEOUT, "the released job to finish")
    assert done["attempts"] == 1, "a release at shutdown does not count as an attempt"
    assert len(result_series(restarted, job["study"])) == 1


def test_a_study_waiting_to_be_complete_survives_a_sigkill_and_is_routed_after_the_restart(orthanc_factory, job_db):
    # The rule waits (up to 10 s) for an SR series that never comes; Orthanc dies while it waits.
    orthanc = orthanc_factory(config(job_db[1])).start()
    orthanc.put("/procnode/rules", {"rules": [{"id": "ct-with-report", "match": {"attribute": "Modality", "equals": "CT"},
                                               "wait_for": {"series": {"attribute": "Modality", "equals": "SR"},
                                                            "max_wait_seconds": 10},
                                               "action": {"pipeline": "volume-stats"}}]})
    send_dicom(orthanc, [CHEST_CT])
    orthanc.wait_for(lambda: "waiting to be complete" in orthanc.log_tail(200000), 60, "the study waiting")
    orthanc.kill()
    assert jobs_after_restart(orthanc_factory, orthanc) == 1


def jobs_after_restart(orthanc_factory, killed):
    # No new StableStudy comes for a study that was already stable: the intake table brings it back.
    again = restart(orthanc_factory, killed, config(killed.procnode["Database"]))
    [job] = again.wait_for(lambda: [j for j in jobs(again) if j["state"] == "done"] or None, JOB_TIMEOUT,
                           "the waiting study routed after the restart")
    assert job["rule"]["id"] == "ct-with-report"
    assert "1 stable and not routed yet, routed now" in again.log_tail(200000)
    return len(jobs(again))
