"""Issue 20, item 2: the audit trail beyond the database tables. One RFC 5424 line per event (who,
what, on what, when, outcome) to the site's collector: start-up configuration without secrets,
refused administration, rule-set changes (saved and refused), job actions, vault access granted
and refused."""
import re
import socket

VAULT_KEYS = "k1:" + "ab" * 32
RULES = {"rules": [{"id": "ct", "match": {"attribute": "Modality", "equals": "CT"}, "action": {"pipeline": "volume-stats"}}]}
RFC5424 = re.compile(r'^<(\d{1,3})>1 (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) (\S+) (\S+) (\d+) (\S+) '
                     r'\[audit@32473 who="((?:[^"\\\]]|\\["\\\]])*)" action="([^"]*)" object="((?:[^"\\\]]|\\["\\\]])*)" '
                     r'outcome="([a-z]+)"\]( .*)?$')


def collector():
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 0))
    server.settimeout(10)
    return server


def events(server, count):
    out = []
    for _ in range(count):
        line = server.recv(65536).decode("utf-8")
        match = RFC5424.match(line)
        assert match, line
        out.append({"line": line, "pri": int(match[1]), "who": match[7], "action": match[8], "object": match[9],
                    "outcome": match[10], "detail": (match[11] or "").strip()})
    return out


def test_security_events_reach_the_collector_as_rfc5424_lines(orthanc_factory, pg, job_db):
    server = collector()
    vault = pg.create_database(job_db[0] + "_vault")
    orthanc = orthanc_factory({"Database": job_db[1], "Workers": 0, "Admins": ["admin"], "VaultRoles": ["officer"],
                               "PhiVault": vault, "Audit": f"udp://127.0.0.1:{server.getsockname()[1]}"},
                              users={"viewer": "v-secret", "admin": "a-secret", "officer": "o-secret"},
                              env={"PROCNODE_VAULT_KEYS": VAULT_KEYS}).start()
    [start] = events(server, 1)
    assert start["action"] == "node.start" and start["who"] == "procnode" and start["outcome"] == "success"
    assert "identity Orthanc authentication" in start["detail"] and "admins admin" in start["detail"], start
    for secret in ("v-secret", "a-secret", VAULT_KEYS, "password="):
        assert secret not in start["line"], "no secret in the start-up record"

    orthanc.auth = ("viewer", "v-secret")
    code, _ = orthanc.get_status("/procnode/rules", "PUT", RULES)
    assert code == 403
    code, _ = orthanc.get_status("/procnode/reidentify", "POST", {"project": "p", "pseudonym": "PN-1", "reason": "audit test"})
    assert code == 403
    orthanc.auth = ("admin", "a-secret")
    assert orthanc.put("/procnode/rules", RULES)["version"] == 1
    code, _ = orthanc.get_status("/procnode/rules", "PUT", {"rules": [{"id": "x"}]})
    assert code == 400
    orthanc.auth = ("officer", "o-secret")
    code, _ = orthanc.get_status("/procnode/reidentify", "POST", {"project": "p", "pseudonym": "PN-unknown", "reason": "audit test"})
    assert code == 404
    recorded = events(server, 5)
    summary = [(e["who"], e["action"], e["outcome"]) for e in recorded]
    assert summary == [("viewer", "admin.PUT", "refused"), ("viewer", "vault.reidentify", "refused"),
                       ("admin", "rules.save", "success"), ("admin", "rules.save", "refused"),
                       ("officer", "vault.reidentify", "failed")], summary
    assert recorded[0]["object"] == "/procnode/rules"
    assert recorded[0]["pri"] == 13 * 8 + 4 and recorded[2]["pri"] == 13 * 8 + 5, "log audit facility; warning or notice"
    assert recorded[2]["object"] == "rule set version 1"
    server.close()
