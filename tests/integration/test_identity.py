"""Issue 12, items 8-10: identities come only from what Orthanc verified; the vault is migrated at
start and audits every refusal; RulesFile seeds the rule set.

Before the fix, with Orthanc's authentication off, X-Procnode-Author: admin (or an unchecked Basic
header) saved rules as "admin" and a Basic header naming the officer re-identified a patient,
while status said admins_enforced: true; on a fresh vault a refusal answered 500 with SQL text."""
import base64
import json
import os

from helpers import jobs
from orthanc import send_dicom

VAULT_KEYS = "k1:" + "cd" * 32
RULES = {"rules": [{"id": "ct", "match": {"attribute": "Modality", "equals": "CT"}, "action": {"pipeline": "volume-stats"}}]}


def basic(user, password="whatever"):
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def vault_audit(pg, database):
    return pg.psql(database, "SELECT who, action, outcome, reason FROM audit ORDER BY id")


def test_without_orthanc_authentication_nobody_is_admin_or_officer(orthanc_factory, pg, job_db):
    vault_db = job_db[0] + "_vault"
    vault = pg.create_database(vault_db)
    orthanc = orthanc_factory({"Database": job_db[1], "Workers": 0, "Admins": ["admin"], "VaultRoles": ["officer"],
                               "PhiVault": vault, "AllowAnonymousAdministration": False},
                              env={"PROCNODE_VAULT_KEYS": VAULT_KEYS}).start()
    log = orthanc.log_tail(100000)
    assert "nothing verifies who a caller is" in log, log
    assert "PHI vault: reachable and migrated" in log, log
    status = orthanc.get("/procnode/status")
    assert status["admins_enforced"] is False and status["identity"]["mode"] == "none", status["identity"]
    assert status["identity"]["reidentification"] == "nobody (no caller is verified)"
    assert status["vault"]["ok"] is True, status["vault"]

    for spoof in ({"X-Procnode-Author": "admin"}, basic("admin")):
        code, body = orthanc.get_status("/procnode/rules", "PUT", RULES, headers=spoof)
        assert code == 403 and "verified users" in body["error"], body
    assert orthanc.get("/procnode/rules")["version"] == 0
    code, body = orthanc.get_status("/procnode/jobs/1/retry", "POST", {}, headers={"X-Procnode-Author": "admin"})
    assert code == 403, body

    # A fresh vault (no anonymized job ever ran): 403, not 500 with SQL, and audited.
    code, body = orthanc.get_status("/procnode/reidentify", "POST",
                                    {"project": "p", "pseudonym": "PN-1", "reason": "curious"}, headers=basic("officer"))
    assert code == 403 and "verified user" in body["error"] and "audited" in body["error"], body
    assert "relation" not in json.dumps(body)
    assert vault_audit(pg, vault_db) == [["unverified caller", "refused", "refused", "caller not verified"]]
    assert orthanc.alive()


def test_with_orthanc_authentication_a_spoofed_author_header_changes_nothing(orthanc_factory, pg, job_db):
    vault_db = job_db[0] + "_vault"
    vault = pg.create_database(vault_db)
    orthanc = orthanc_factory({"Database": job_db[1], "Workers": 0, "Admins": ["admin"], "VaultRoles": ["officer"],
                               "PhiVault": vault},
                              users={"viewer": "v-secret", "admin": "a-secret"},
                              env={"PROCNODE_VAULT_KEYS": VAULT_KEYS}).start()
    status = orthanc.get("/procnode/status")
    assert status["admins_enforced"] is True and status["identity"]["mode"] == "orthanc-authentication"
    orthanc.auth = ("viewer", "v-secret")
    code, body = orthanc.get_status("/procnode/rules", "PUT", RULES, headers={"X-Procnode-Author": "admin"})
    assert code == 403 and 'user "viewer"' in body["error"], body
    code, body = orthanc.get_status("/procnode/reidentify", "POST",
                                    {"project": "p", "pseudonym": "PN-1", "reason": "r"}, headers={"X-Procnode-Author": "officer"})
    assert code == 403 and 'user "viewer" is not in the vault role' in body["error"], body
    assert vault_audit(pg, vault_db)[-1] == ["viewer", "refused", "refused", "not in ProcNode.VaultRoles"]
    orthanc.auth = ("admin", "a-secret")
    assert orthanc.put("/procnode/rules", RULES)["version"] == 1
    assert orthanc.get("/procnode/rules/history")[0]["author"] == "admin"


def test_a_trusted_header_names_the_user_only_where_configured(orthanc_factory, job_db):
    orthanc = orthanc_factory({"Database": job_db[1], "Workers": 0, "Admins": ["alice"],
                               "TrustedUserHeader": "X-Remote-User", "AllowAnonymousAdministration": False}).start()
    assert orthanc.get("/procnode/status")["identity"]["mode"] == "trusted-header"
    code, _ = orthanc.get_status("/procnode/rules", "PUT", RULES, headers={"X-Remote-User": "mallory"})
    assert code == 403
    code, _ = orthanc.get_status("/procnode/rules", "PUT", RULES, headers={"X-Procnode-Author": "alice"})
    assert code == 403
    assert orthanc.put("/procnode/rules", RULES, headers={"X-Remote-User": "alice"})["version"] == 1
    assert orthanc.get("/procnode/rules/history")[0]["author"] == "alice"


def test_rules_file_seeds_the_rule_set_and_a_saved_one_wins(orthanc_factory, job_db, workdir):
    path = os.path.join(workdir, "rules.json")
    with open(path, "w") as f:
        json.dump(RULES, f)
    orthanc = orthanc_factory({"Database": job_db[1], "Workers": 0, "RulesFile": path}).start()
    rules = orthanc.get("/procnode/rules")
    assert rules["version"] == 1 and rules["author"] == "RulesFile" and rules["rules"] == RULES, rules
    orthanc.kill()

    other = {"rules": [dict(RULES["rules"][0], id="other")]}
    with open(path, "w") as f:
        json.dump(other, f)
    again = orthanc_factory({"Database": job_db[1], "Workers": 0, "RulesFile": path})
    again.dir, again.log_path = orthanc.dir, orthanc.log_path
    again.start()
    assert again.get("/procnode/rules")["version"] == 1, "the saved rule set wins over the file"
    assert "not loaded: rule set version 1 is saved in the job database and wins" in again.log_tail(100000)
    again.kill()


def test_an_invalid_rules_file_stops_orthanc_with_the_reason(orthanc_factory, job_db, workdir):
    path = os.path.join(workdir, "broken.json")
    with open(path, "w") as f:
        json.dump({"rules": [{"id": "x", "match": {"attribute": "Modalty", "equals": "CT"},
                              "action": {"pipeline": "volume-stats"}}]}, f)
    orthanc = orthanc_factory({"Database": job_db[1], "Workers": 0, "RulesFile": path})
    assert orthanc.start(expect_failure=True) != 0
    assert "ProcNode.RulesFile " + path in orthanc.log_tail() and "Modalty" in orthanc.log_tail(), orthanc.log_tail()
