"""Routing rules in a running Orthanc: versioned saves, refusals with JSON pointers, dry-run
explanations, rule-driven jobs recording their rule version, rollback, admin-only writes,
and job retry/cancel."""
import os
import time

from conftest import CHEST_CT, SHARED_DATA
from helpers import jobs, wait_jobs_finished
from orthanc import send_dicom

BRAIN_MR = os.path.join(SHARED_DATA, "mr-brain-sag-mprage")

CHEST_ONLY = {
    "rules": [
        {"id": "chest-ct", "description": "Chest CT to the lung processor",
         "match": {"all": [{"attribute": "Modality", "equals": "CT"},
                           {"any": [{"attribute": "BodyPartExamined", "in": ["CHEST", "LUNG"]},
                                    {"attribute": "StudyDescription", "contains": "chest", "case_sensitive": False}]},
                           {"attribute": "CallingAET", "equals": "CT01"}]},
         "action": {"pipeline": "lung-emphysema", "parameters": {"variant": "fast"}, "priority": 5}},
        {"id": "brain-mr", "description": "Brain MR: nowhere yet", "enabled": False,
         "match": {"attribute": "Modality", "equals": "MR"},
         "action": {"pipeline": "volume-stats"}},
    ]
}


def study_with_modality(orthanc, modality):
    for study in orthanc.get("/studies"):
        if any(s["MainDicomTags"].get("Modality") == modality for s in orthanc.get(f"/studies/{study}/series")):
            return study
    raise AssertionError(f"no {modality} study")


def test_rules_route_chest_ct_only_and_explain_why(orthanc_factory, job_db):
    # The author of a saved rule set is the user Orthanc verified (no X-Procnode-Author any more).
    orthanc = orthanc_factory({"Database": job_db[1], "Workers": 2}, users={"radiographer": "r-secret"}).start()
    assert orthanc.get("/procnode/rules")["version"] == 0, "the built-in default until one is saved"

    broken = {"rules": [{"id": "x", "match": {"attribute": "Modalty", "equals": "CT"},
                         "action": {"pipeline": "volume-stats"}}]}
    code, body = orthanc.get_status("/procnode/rules", "PUT", broken)
    assert code == 400, body
    assert body["errors"] == [{"pointer": "/rules/0/match/attribute", "reason": "unknown attribute keyword \"Modalty\""}]
    assert orthanc.get("/procnode/rules")["version"] == 0, "a refused rule set leaves the active one"
    assert orthanc.post("/procnode/rules/validate", broken)["valid"] is False

    saved = orthanc.put("/procnode/rules", CHEST_ONLY, headers={"X-Procnode-Comment": "chest only"})
    assert saved["version"] == 1
    assert orthanc.get("/procnode/status")["rules"]["version"] == 1

    send_dicom(orthanc, [CHEST_CT], calling_aet="CT01")
    send_dicom(orthanc, [BRAIN_MR], calling_aet="MR01", allow_failures=True)  # its LICENSE file is no DICOM
    [job] = wait_jobs_finished(orthanc, 1)
    time.sleep(orthanc.stable_age + 3)  # the MR becomes stable too, and must create nothing
    assert len(jobs(orthanc)) == 1
    assert job["state"] == "done" and job["rule"] == {"id": "chest-ct", "version": 1} and job["priority"] == 5
    assert job["pipeline"] == "lung-emphysema"
    assert 3000 < job["result"]["measurements"]["total"]["volume_ml"] < 9000, job["result"]["measurements"]

    mr = study_with_modality(orthanc, "MR")
    dry = orthanc.post("/procnode/rules/dry-run", {"study": mr})
    assert dry["rule_set_version"] == 1 and dry["jobs"] == [] and dry["calling_aet"] == "MR01"
    assert dry["called_aet"] == orthanc.aet
    chest = next(r for r in dry["rules"] if r["rule"] == "chest-ct")
    assert chest["fires"] is False
    assert chest["first_failed_condition"]["pointer"] == "/rules/0/match/all/0"
    assert chest["first_failed_condition"]["actual"] == '"MR"'
    assert next(r for r in dry["rules"] if r["rule"] == "brain-mr")["why"] == "disabled"

    # A candidate rule set is tried before it goes live; then saved, it is used at once (no restart).
    with_brain = {"rules": [CHEST_ONLY["rules"][0], dict(CHEST_ONLY["rules"][1], enabled=True)]}
    trial = orthanc.post("/procnode/rules/dry-run", {"study": mr, "rules": with_brain})
    assert [r["rule"] for r in trial["rules"] if r["fires"]] == ["brain-mr"]
    assert orthanc.put("/procnode/rules", with_brain)["version"] == 2
    assert orthanc.post("/procnode/rules/dry-run", {"study": mr})["rule_set_version"] == 2

    history = orthanc.get("/procnode/rules/history")
    assert [h["version"] for h in history] == [2, 1]
    assert history[1]["author"] == "radiographer" and history[1]["comment"] == "chest only"
    rolled = orthanc.post("/procnode/rules/rollback", {"version": 1})
    assert rolled["version"] == 3
    assert orthanc.get("/procnode/rules")["rules"] == CHEST_ONLY
    assert orthanc.get("/procnode/rules/history/3")["comment"] == "rollback to version 1"


def test_writes_need_an_admin_and_jobs_can_be_cancelled_and_retried(orthanc_factory, job_db):
    orthanc = orthanc_factory({"Database": job_db[1], "Workers": 0, "Admins": ["admin"]},
                              users={"admin": "secret-a", "viewer": "secret-v"}).start()
    orthanc.auth = ("viewer", "secret-v")
    code, body = orthanc.get_status("/procnode/rules", "PUT", CHEST_ONLY)
    assert code == 403 and "viewer" in body["error"], body
    assert orthanc.get("/procnode/rules")["version"] == 0, "reading is open to every user"
    orthanc.auth = ("admin", "secret-a")
    assert orthanc.put("/procnode/rules", CHEST_ONLY)["version"] == 1
    assert orthanc.get("/procnode/rules/history")[0]["author"] == "admin"

    send_dicom(orthanc, [CHEST_CT], calling_aet="CT01")
    [job] = orthanc.wait_for(lambda: jobs(orthanc) or None, 60, "a queued job (no workers run it)")
    assert job["state"] == "queued"
    orthanc.auth = ("viewer", "secret-v")
    code, _ = orthanc.get_status(f"/procnode/jobs/{job['id']}/cancel", "POST", {})
    assert code == 403
    orthanc.auth = ("admin", "secret-a")
    code, body = orthanc.get_status(f"/procnode/jobs/{job['id']}/retry", "POST", {})
    assert code == 400 and "only failed, cancelled or done jobs" in body["error"], body
    assert orthanc.post(f"/procnode/jobs/{job['id']}/cancel", {})["state"] == "cancelled"
    again = orthanc.post(f"/procnode/jobs/{job['id']}/retry", {})
    assert again["state"] == "queued" and again["attempts"] == 0
    kinds = [e["kind"] for e in orthanc.get(f"/procnode/jobs/{job['id']}")["events"]]
    assert kinds == ["enqueued", "cancelled", "retry-requested"], kinds
    code, _ = orthanc.get_status("/procnode/jobs/999/cancel", "POST", {})
    assert code == 404


def test_a_rule_waiting_for_a_series_holds_the_study_then_routes_it_after_its_maximum_wait(orthanc_factory, job_db):
    orthanc = orthanc_factory({"Database": job_db[1], "Workers": 1}).start()
    waiting_rule = {"rules": [{"id": "ct-with-report",
                               "match": {"attribute": "Modality", "equals": "CT"},
                               "wait_for": {"series": {"attribute": "Modality", "equals": "SR"}, "max_wait_seconds": 6},
                               "action": {"pipeline": "volume-stats"}}]}
    orthanc.put("/procnode/rules", waiting_rule)
    send_dicom(orthanc, [CHEST_CT], calling_aet="CT01")
    sent = time.time()
    study = orthanc.wait_for(lambda: orthanc.get("/studies") or None, 30, "the study")[0]
    dry = orthanc.post("/procnode/rules/dry-run", {"study": study})
    assert dry["rules"][0]["waiting"] is True and "waiting for a series" in dry["rules"][0]["why"]
    [job] = wait_jobs_finished(orthanc, 1, timeout=120)
    assert job["state"] == "done" and job["rule"]["id"] == "ct-with-report"
    assert time.time() - sent >= 6, "not routed before the rule's maximum wait"
    assert "waiting to be complete" in orthanc.log_tail(200000)


def test_a_draft_replayed_over_stored_studies_shows_what_would_fire_and_enqueues_nothing(orthanc_factory, job_db,
                                                                                        workdir):
    """Issue 21, item 2: the draft and the saved rule set side by side over the last studies."""
    from helpers import copies
    orthanc = orthanc_factory({"Database": job_db[1], "Workers": 0}).start()
    assert orthanc.put("/procnode/rules", CHEST_ONLY)["version"] == 1
    [second_ct] = copies(CHEST_CT, 1, workdir)
    send_dicom(orthanc, [CHEST_CT], calling_aet="CT01")
    send_dicom(orthanc, [BRAIN_MR], calling_aet="MR01", allow_failures=True)
    send_dicom(orthanc, [second_ct], calling_aet="CT02")  # not from CT01: the saved rule does not take it
    orthanc.wait_for(lambda: len(orthanc.get("/studies")) == 3, 60, "three studies stored")
    before = jobs(orthanc)

    draft = {"rules": [dict(CHEST_ONLY["rules"][0], action={"pipeline": "lung-emphysema",
                                                             "parameters": {"variant": "accurate"}, "priority": 5}),
                       dict(CHEST_ONLY["rules"][1], enabled=True)]}
    draft["rules"][0]["match"] = {"attribute": "Modality", "equals": "CT"}  # any CT, whichever scanner
    status, replay = orthanc.get_status("/procnode/rules/replay", "POST", {"rules": draft, "last": 10})
    assert status == 200, replay
    assert replay["rule_set_version"] == 1
    assert replay["totals"]["studies"] == 3, replay["totals"]
    by_study = {row["study"]: row for row in replay["studies"]}
    chest, mr, second = (study_with_modality_and_aet(orthanc, m, aet) for m, aet in
                         (("CT", "CT01"), ("MR", "MR01"), ("CT", "CT02")))
    # The chest CT from CT01: fires now and with the draft; the job's parameters change.
    assert by_study[chest]["now"]["fired"] == ["chest-ct"] and by_study[chest]["draft"]["fired"] == ["chest-ct"]
    [changed] = by_study[chest]["changed"]
    assert changed["now"]["parameters"]["variant"] == "fast" and changed["draft"]["parameters"]["variant"] == "accurate"
    assert by_study[chest]["created"] == [] and by_study[chest]["no_longer_created"] == []
    # The brain MR: nothing now; the enabled brain rule would create a volume-stats job.
    assert by_study[mr]["now"]["fired"] == [] and by_study[mr]["draft"]["fired"] == ["brain-mr"]
    assert [j["pipeline"] for j in by_study[mr]["created"]] == ["volume-stats"]
    assert by_study[mr]["modalities"] == ["MR"]
    # The second CT, from another scanner: nothing now, a lung job with the draft.
    assert by_study[second]["now"]["jobs"] == [] and [j["rule"] for j in by_study[second]["created"]] == ["chest-ct"]
    assert replay["totals"]["created"] == 2 and replay["totals"]["changed"] == 1, replay["totals"]
    # Newest first, and `last` honoured.
    assert [row["study"] for row in orthanc.post("/procnode/rules/replay", {"rules": draft, "last": 1})["studies"]] == [second]
    # A date range that holds today holds all three; one in the past holds none.
    today = time.strftime("%Y%m%d", time.gmtime())
    ranged = orthanc.post("/procnode/rules/replay", {"rules": draft, "from": "20000101", "to": "29991231"})
    assert ranged["totals"]["studies"] == 3, (today, ranged["totals"])
    assert orthanc.post("/procnode/rules/replay", {"rules": draft, "to": "20000101"})["totals"]["studies"] == 0
    # Nothing enqueued, nothing saved.
    assert jobs(orthanc) == before
    assert orthanc.get("/procnode/rules")["version"] == 1
    # A broken draft or request is refused with the reason.
    status, body = orthanc.get_status("/procnode/rules/replay", "POST", {"rules": {"rules": [{"id": "x"}]}})
    assert status == 400 and "rule set is not valid" in str(body), (status, body)
    status, body = orthanc.get_status("/procnode/rules/replay", "POST", {"rules": draft, "last": 0})
    assert status == 400 and "last: must be an integer from 1 to 500" in str(body), (status, body)
    status, body = orthanc.get_status("/procnode/rules/replay", "POST", {"rules": draft, "from": "2026-11-01"})
    assert status == 400 and "from: must be a date as YYYYMMDD" in str(body), (status, body)


def study_with_modality_and_aet(orthanc, modality, aet):
    for study in orthanc.get("/studies"):
        for series in orthanc.get(f"/studies/{study}/series"):
            if series["MainDicomTags"].get("Modality") != modality:
                continue
            if orthanc.get_raw(f"/instances/{series['Instances'][0]}/metadata/RemoteAET").decode() == aet:
                return study
    raise AssertionError(f"no {modality} study from {aet}")
