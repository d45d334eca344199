"""Issue 12, items 1-4: nothing lost or stuck when the job database goes away, a study deleted and
sent again is processed again, and a database that never answers does not hang Orthanc.

Each test has a PostgreSQL cluster of its own, stopped and started again under a running Orthanc
(as a database restart or outage would), and DCMTK storescu as the scanner."""
import socket
import threading
import time

import pytest

from conftest import CHEST_CT
from helpers import JOB_TIMEOUT, copies, jobs, result_series
from orthanc import send_dicom
from pgcluster import PgCluster


@pytest.fixture
def own_pg():
    with PgCluster() as cluster:
        yield cluster


def config(db, **extra):
    return dict({"Database": db, "Workers": 1, "LeaseSeconds": 6, "HeartbeatSeconds": 2, "PollSeconds": 0.5,
                 "DatabaseConnectTimeoutSeconds": 2}, **extra)


def job_state(orthanc, job_id, states=("done", "failed", "cancelled")):
    return orthanc.wait_for(lambda: (lambda j: j if j["state"] in states else None)(
        orthanc.get(f"/procnode/jobs/{job_id}")), JOB_TIMEOUT, f"job {job_id} in {states}")


def test_a_study_stable_while_the_database_is_down_is_routed_once_it_is_back(orthanc_factory, own_pg):
    # Before: intake gave up after 5 attempts (about 10 s); the study was never processed.
    orthanc = orthanc_factory(config(own_pg.create_database("jobs")), stable_age=1).start()
    own_pg.halt()
    send_dicom(orthanc, [CHEST_CT])
    orthanc.wait_for(lambda: orthanc.get("/procnode/status")["intake"]["waiting_for_database"], 60,
                     "status saying intake waits for the database")
    assert "intake: waiting for the job database" in orthanc.log_tail(200000)
    time.sleep(15)  # longer than the old five attempts
    own_pg.resume()
    [job] = orthanc.wait_for(lambda: [j for j in jobs(orthanc) if j["state"] == "done"] or None, JOB_TIMEOUT + 30,
                             "the study routed and processed after the outage")
    assert job["pipeline"] == "volume-stats"
    status = orthanc.get("/procnode/status")["intake"]
    assert status["waiting_for_database"] is False and status["problem"] is None, status
    assert "the job database answers again" in orthanc.log_tail(200000)


def test_a_study_whose_stable_event_was_lost_with_orthanc_is_found_by_reconciliation(orthanc_factory, own_pg):
    db = own_pg.create_database("jobs")
    orthanc = orthanc_factory(config(db), stable_age=1).start()
    own_pg.halt()
    send_dicom(orthanc, [CHEST_CT])
    orthanc.wait_for(lambda: "not enqueued yet" in orthanc.log_tail(200000), 60, "intake failing on the outage")
    orthanc.kill()  # the in-memory intake list dies with it; the intake table was never written
    own_pg.resume()
    again = orthanc_factory(config(db), stable_age=1)
    again.dir, again.log_path, again.http_port, again.dicom_port = orthanc.dir, orthanc.log_path, orthanc.http_port, orthanc.dicom_port
    again.start()
    [job] = again.wait_for(lambda: [j for j in jobs(again) if j["state"] == "done"] or None, JOB_TIMEOUT,
                           "the study routed after the restart")
    assert "1 stable and not routed yet, routed now" in again.log_tail(200000)
    again.kill()


def test_a_paused_database_delays_but_loses_nothing_and_orthanc_keeps_answering(orthanc_factory, own_pg):
    # Every PostgreSQL process stopped (SIGSTOP): new connections time out after the connect timeout,
    # queries on open ones wait. Orthanc keeps storing and answering; once resumed the study is routed.
    orthanc = orthanc_factory(config(own_pg.create_database("jobs")), stable_age=1).start()
    own_pg.pause()
    try:
        send_dicom(orthanc, [CHEST_CT])
        assert orthanc.get("/studies"), "Orthanc stores the study while the database is paused"
        time.sleep(8)
        assert orthanc.alive()
    finally:
        own_pg.unpause()
    [job] = orthanc.wait_for(lambda: [j for j in jobs(orthanc) if j["state"] == "done"] or None, JOB_TIMEOUT + 30,
                             "the study processed once the database runs again")
    assert job["pipeline"] == "volume-stats"
    assert orthanc.get("/procnode/status")["database"]["ok"] is True


def test_an_outcome_not_recorded_during_an_outage_is_recorded_once_the_database_is_back(orthanc_factory, own_pg):
    # Before: Complete() failed once, the job stayed "running" for ever (the heartbeat renewed it).
    orthanc = orthanc_factory(config(own_pg.create_database("jobs"),
                                     TestHooks={"PauseAfterStage": "volume", "PauseSeconds": 4}), stable_age=1).start()
    send_dicom(orthanc, [CHEST_CT])
    job = orthanc.wait_for(lambda: next((j for j in jobs(orthanc) if j["state"] == "running"
                                         and "paused after volume" in j["progress_message"]), None),
                           JOB_TIMEOUT, "the job paused after its volume stage")
    own_pg.halt()
    orthanc.wait_for(lambda: "outcome not recorded yet" in orthanc.log_tail(200000) or
                     "not recorded" in orthanc.log_tail(200000) or "progress not recorded" in orthanc.log_tail(200000),
                     60, "the job finishing while the database is down")
    time.sleep(10)  # longer than the lease (6 s)
    own_pg.resume()
    done = job_state(orthanc, job["id"])
    assert done["state"] == "done", done
    kinds = [e["kind"] for e in done["events"]]
    assert kinds[-1] == "done", kinds
    assert len(result_series(orthanc, job["study"])) >= 1
    assert orthanc.get("/procnode/status")["running_jobs"] == []


def test_a_study_deleted_and_sent_again_is_processed_again_and_a_done_job_can_be_rerun(orthanc_factory, own_pg):
    orthanc = orthanc_factory(config(own_pg.create_database("jobs")), stable_age=1).start()
    send_dicom(orthanc, [CHEST_CT])
    [job] = orthanc.wait_for(lambda: [j for j in jobs(orthanc) if j["state"] == "done"] or None, JOB_TIMEOUT, "job done")
    # The same study sent again unchanged: no new job, no re-run.
    send_dicom(orthanc, [CHEST_CT])
    time.sleep(4)
    assert len(jobs(orthanc)) == 1
    assert "rerun" not in [e["kind"] for e in orthanc.get(f"/procnode/jobs/{job['id']}")["events"]]

    orthanc._request("DELETE", f"/studies/{job['study']}")
    assert orthanc.get("/studies") == []
    send_dicom(orthanc, [CHEST_CT])
    again = orthanc.wait_for(lambda: (lambda j: j if "rerun" in [e["kind"] for e in j["events"]] and j["state"] == "done"
                                      else None)(orthanc.get(f"/procnode/jobs/{job['id']}")),
                             JOB_TIMEOUT, "the job run again after the study was deleted and sent again")
    assert len(jobs(orthanc)) == 1, "still one job"
    assert len(result_series(orthanc, again["study"])) == 1, "the results are back"
    # An admin re-runs a done job (REST; the admin page's Re-run button posts the same).
    rerun = orthanc.post(f"/procnode/jobs/{job['id']}/retry", {})
    assert rerun["state"] in ("queued", "running", "done"), rerun
    final = orthanc.wait_for(lambda: (lambda j: j if j["state"] == "done" and "rerun-requested" in
                                      [e["kind"] for e in j["events"]] else None)(orthanc.get(f"/procnode/jobs/{job['id']}")),
                             JOB_TIMEOUT, "the re-run job done")
    assert len(result_series(orthanc, final["study"])) == 1, "a re-run replaces its results"


def test_a_database_that_accepts_and_never_answers_stops_orthanc_with_a_reason(orthanc_factory):
    # Before: Orthanc's start-up hung for ever with no log line.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    held = []
    stop = threading.Event()

    def accept():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])  # accepted, never answered
            except OSError:
                pass

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        port = listener.getsockname()[1]
        orthanc = orthanc_factory({"Database": f"postgresql://procnode@127.0.0.1:{port}/jobs",
                                   "DatabaseConnectTimeoutSeconds": 2})
        started = time.time()
        assert orthanc.start(timeout=60, expect_failure=True) != 0
        assert time.time() - started < 60
        log = orthanc.log_tail()
        assert f"job database: connecting to 127.0.0.1:{port}/jobs (gives up after 2 s" in log, log
        assert "cannot start" in log, log
        assert held, "the listener saw the connection"
    finally:
        stop.set()
        thread.join()
        for s in held:
            s.close()
        listener.close()


def test_a_database_restart_while_jobs_run_and_studies_arrive_loses_nothing_and_doubles_nothing(orthanc_factory, own_pg,
                                                                                                 workdir):
    """Issue 20, item 6: PostgreSQL restarted with a job running and a study arriving: Orthanc keeps
    receiving, and afterwards every study is routed and processed exactly once."""
    first, second, third = copies(CHEST_CT, 3, workdir)
    orthanc = orthanc_factory(config(own_pg.create_database("jobs"), Workers=1), stable_age=1).start()
    orthanc.put("/procnode/rules", {"rules": [{"id": "lungs", "match": {"attribute": "Modality", "equals": "CT"},
                                               "action": {"pipeline": "lung-emphysema", "device": "cpu"}}]})
    send_dicom(orthanc, [first])
    send_dicom(orthanc, [second])
    orthanc.wait_for(lambda: any(j["state"] == "running" for j in jobs(orthanc)), JOB_TIMEOUT, "a job running")
    own_pg.halt()
    sender = threading.Thread(target=send_dicom, args=(orthanc, [third]))
    sender.start()  # arrives during the outage: Orthanc must keep receiving
    sender.join(timeout=120)
    assert not sender.is_alive()
    time.sleep(4)
    own_pg.resume()
    done = orthanc.wait_for(lambda: (lambda js: js if len(js) == 3 and all(j["state"] == "done" for j in js) else None)(
        jobs(orthanc)), JOB_TIMEOUT * 3, "three jobs done after the restart")
    studies = orthanc.get("/studies")
    assert len(studies) == 3 and sorted(j["study"] for j in done) == sorted(studies), "one job per study"
    for study in studies:
        assert len(result_series(orthanc, study)) == 3, "one PDF, SEG and SR series per study, not two sets"
        inputs = [s for s in orthanc.get(f"/studies/{study}/series") if s["MainDicomTags"].get("Modality") == "CT"]
        assert len(inputs) == 1 and len(inputs[0]["Instances"]) == 64, "every instance received"


def test_a_database_stopped_for_30_seconds_shows_in_status_and_metrics_and_the_node_resumes_alone(orthanc_factory,
                                                                                                  own_pg):
    """Issue 20, item 6: PostgreSQL stopped for 30 s. Throughout, Orthanc answers, its status says the
    database is down and the exposition says procnode_database_up 0 (parsed by prometheus_client);
    a study that arrives meanwhile waits; once PostgreSQL is back, nobody touches the node and it
    reports the database up, routes the study and processes it."""
    from test_metrics import scrape
    orthanc = orthanc_factory(config(own_pg.create_database("jobs")), stable_age=1).start()
    assert scrape(orthanc, "/procnode/metrics")[1][("procnode_database_up", ())] == 1
    own_pg.halt()
    stopped = time.time()
    send_dicom(orthanc, [CHEST_CT])
    seen_down = {"status": 0, "metrics": 0, "intake": 0}
    while time.time() - stopped < 30:
        asked = time.time()
        status = orthanc.get("/procnode/status")
        assert time.time() - asked < 10, "status answers within the connect timeout, not after the outage"
        if status["database"]["ok"] is False:
            seen_down["status"] += 1
            assert "job database" in status["database"]["error"], status["database"]
        if status["intake"]["waiting_for_database"]:
            seen_down["intake"] += 1
        if scrape(orthanc, "/procnode/metrics")[1][("procnode_database_up", ())] == 0:
            seen_down["metrics"] += 1
        time.sleep(2)
    assert orthanc.alive()
    assert seen_down["status"] >= 5 and seen_down["metrics"] >= 5 and seen_down["intake"] >= 3, seen_down
    assert orthanc.get("/studies"), "the study was stored during the outage"
    own_pg.resume()
    orthanc.wait_for(lambda: scrape(orthanc, "/procnode/metrics")[1][("procnode_database_up", ())] == 1, 30,
                     "the metrics saying the database is up again")
    [job] = orthanc.wait_for(lambda: [j for j in jobs(orthanc) if j["state"] == "done"] or None, JOB_TIMEOUT + 30,
                             "the study that arrived during the outage processed")
    assert job["pipeline"] == "volume-stats"
    status = orthanc.get("/procnode/status")
    assert status["database"]["ok"] is True and status["intake"]["waiting_for_database"] is False, status
