"""Issue 12, items 5-7: requests that crashed or hung Orthanc, or let an exception escape the plugin.

Each payload goes to a real Orthanc with the plugin; after each, Orthanc must still be alive and
answer the next request. Before the fix: 100 nested conditions or a regex of 300 nested groups
killed Orthanc (stack overflow on an HTTP thread), a 1,000-level dry-run body too (dump()), a
backtracking regex held a thread at 100 % CPU for ever, and %FF, 1e3, huge numbers, invalid UTF-8
and a 50 MB body were answered 500, misread or stored."""
import json
import os
import urllib.error
import urllib.request

import pytest

from conftest import CHEST_CT
from orthanc import send_dicom


def raw(orthanc, method, path, body=None, timeout=20):
    """(status, parsed JSON or None); `body` as bytes, sent exactly as given."""
    request = urllib.request.Request(orthanc.url + path, data=body, method=method)
    if body is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            text = response.read()
            code = response.status
    except urllib.error.HTTPError as e:
        text, code = e.read(), e.code
    try:
        return code, json.loads(text)
    except ValueError:
        return code, None


def nested(levels, group):
    leaf = {"attribute": "Modality", "equals": "CT"}
    text = json.dumps(leaf)
    for _ in range(levels):
        text = '{"not": ' + text + "}" if group == "not" else '{"' + group + '": [' + text + "]}"
    return text


def rule_set(match_text):
    return ('{"rules": [{"id": "r", "match": ' + match_text + ', "action": {"pipeline": "volume-stats"}}]}').encode()


@pytest.fixture(scope="module")
def orthanc(plugin_path, tmp_path_factory):
    from orthanc import OrthancServer
    from pgcluster import PgCluster
    with PgCluster() as pg:
        server = OrthancServer(plugin_path, {"Database": pg.create_database("hostile"), "Workers": 0},
                               workdir=str(tmp_path_factory.mktemp("hostile")))
        with server:
            yield server


def alive(orthanc):
    assert orthanc.alive(), orthanc.log_tail()
    code, status = raw(orthanc, "GET", "/procnode/status")
    assert code == 200 and status["name"] == "procnode", status


@pytest.mark.parametrize("group", ["not", "all", "any"])
def test_deeply_nested_conditions_are_refused_and_orthanc_lives(orthanc, group):
    code, body = raw(orthanc, "POST", "/procnode/rules/validate", rule_set(nested(100, group)))
    assert code == 200 and body["valid"] is False, body
    assert "levels deep" in body["errors"][0]["reason"], body
    # Within the JSON limit, but past the condition limit: refused at the first condition too deep.
    code, body = raw(orthanc, "POST", "/procnode/rules/validate", rule_set(nested(20, group)))
    assert body["valid"] is False and "more than 16 levels deep" in body["errors"][0]["reason"], body
    assert body["errors"][0]["pointer"].startswith("/rules/0/match/"), body
    code, _ = raw(orthanc, "PUT", "/procnode/rules", rule_set(nested(100, group)))
    assert code == 400
    alive(orthanc)


def test_a_regex_of_300_nested_groups_is_refused_and_orthanc_lives(orthanc):
    pattern = "(" * 300 + "a" + ")" * 300
    code, body = raw(orthanc, "POST", "/procnode/rules/validate",
                     rule_set(json.dumps({"attribute": "Modality", "regex": pattern})))
    assert code == 200 and body["valid"] is False, body
    assert body["errors"][0]["pointer"] == "/rules/0/match/regex", body
    pattern = "(" * 100 + "a" + ")" * 100
    code, body = raw(orthanc, "POST", "/procnode/rules/validate",
                     rule_set(json.dumps({"attribute": "Modality", "regex": pattern})))
    assert body["valid"] is False and "nests groups more than 16" in body["errors"][0]["reason"], body
    code, body = raw(orthanc, "POST", "/procnode/rules/validate",
                     rule_set(json.dumps({"attribute": "Modality", "regex": "(CT)\\1"})))
    assert body["valid"] is False and "backreferences" in body["errors"][0]["reason"], body
    alive(orthanc)


def test_a_dry_run_nested_1000_levels_is_refused_and_orthanc_lives(orthanc):
    body = ('{"study": "x", "rules": ' + "[" * 1000 + "]" * 1000 + "}").encode()
    code, answer = raw(orthanc, "POST", "/procnode/rules/dry-run", body)
    assert code == 400 and "nests more than 64 levels" in answer["error"], answer
    alive(orthanc)


def test_a_backtracking_regex_is_answered_and_orthanc_lives(orthanc):
    # "([0-9.]+)+Z" on a 64-character UID: exponential with a backtracking engine, linear with RE2.
    send_dicom(orthanc, [os.path.join(CHEST_CT, sorted(os.listdir(CHEST_CT))[0])])
    [study] = orthanc.wait_for(lambda: orthanc.get("/studies") or None, 30, "the study")
    uid_rules = {"rules": [{"id": "uid", "match": {"attribute": "StudyInstanceUID", "regex": "([0-9.]+)+Z"},
                            "action": {"pipeline": "volume-stats"}}]}
    code, answer = raw(orthanc, "POST", "/procnode/rules/dry-run",
                       json.dumps({"study": study, "rules": uid_rules}).encode(), timeout=10)
    assert code == 200 and answer["rules"][0]["fires"] is False, answer
    assert len(orthanc.get(f"/studies/{study}")["MainDicomTags"]["StudyInstanceUID"]) > 40
    alive(orthanc)


@pytest.mark.parametrize("path,method,body,status,reason", [
    ("/procnode/jobs/%FF", "GET", None, 400, "not valid UTF-8"),
    ("/procnode/jobs?limit=1e3", "GET", None, 400, "expected a whole number from 1 to 10000"),
    ("/procnode/jobs?limit=0", "GET", None, 400, "expected a whole number from 1 to 10000"),
    ("/procnode/jobs/12abc", "GET", None, 400, "expected a whole number"),
    ("/procnode/jobs/99999999999999999999999", "GET", None, 400, "expected a whole number"),
    ("/procnode/rules/history/99999999999", "GET", None, 400, "expected a whole number from 1 to 2147483647"),
    ("/procnode/rules/validate", "POST", b'{"rules": ["\xff\xfe"]}', 400, "not valid UTF-8"),
    ("/procnode/rules/dry-run", "POST", b'{"study": "\xc0\xaf"}', 400, "not valid UTF-8"),
    ("/procnode/series/%C0%AF/nifti", "GET", None, 400, "not valid UTF-8"),
])
def test_malformed_requests_get_a_4xx_with_a_reason(orthanc, path, method, body, status, reason):
    code, answer = raw(orthanc, method, path, body)
    assert code == status, (code, answer)
    assert reason in answer["error"], answer
    alive(orthanc)


def test_a_body_over_one_mib_is_refused_unread(orthanc):
    big = b'{"rules": [], "description": "' + b"x" * (2 << 20) + b'"}'
    code, answer = raw(orthanc, "PUT", "/procnode/rules", big)
    assert code == 413 and "at most 1048576" in answer["error"], answer
    assert orthanc.get("/procnode/rules")["version"] == 0, "nothing stored"
    alive(orthanc)


@pytest.mark.parametrize("path,status", [
    ("/procnode/ui/index.html", 200),
    ("/procnode/ui/app.js", 200),
    ("/procnode/status", 200),
    ("/procnode/jobs", 200),
    ("/procnode/jobs/999999", 404),
    ("/procnode/ui/nothing.html", 404),
])
def test_every_answer_carries_the_security_headers(orthanc, path, status):
    """Issue 20, item 5: what a hospital's security scanner checks, on pages, JSON and errors alike:
    the admin page runs only its own script and style, nothing is framed or sniffed, no answer is cached."""
    request = urllib.request.Request(orthanc.url + path)
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            code, headers = response.status, response.headers
    except urllib.error.HTTPError as e:
        code, headers = e.code, e.headers
    assert code == status, (path, code)
    csp = headers.get("Content-Security-Policy", "")
    directives = dict((d.strip().split(" ", 1) + [""])[:2] for d in csp.split(";") if d.strip())
    assert directives.get("default-src") == "'none'", csp
    assert directives.get("script-src") == "'self'" and "unsafe-inline" not in csp and "unsafe-eval" not in csp, csp
    assert directives.get("frame-ancestors") == "'none'", csp
    assert headers.get("X-Content-Type-Options") == "nosniff"
    assert headers.get("X-Frame-Options") == "DENY"
    assert "no-store" in headers.get("Cache-Control", "")
