"""Issue 20, item 4: GET /procnode/metrics in the Prometheus text format, judged by
python3-prometheus-client's parser: jobs by processor and outcome, stage durations as histograms,
queue depth and oldest queued age, intake, deliveries, workers, database up; and the main gauges
in Orthanc's own /tools/metrics-prometheus."""
import json
import os
import re
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from conftest import CHEST_CT
from helpers import wait_jobs_finished
from orthanc import send_dicom

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
RULES = {"rules": [{"id": "ct", "match": {"attribute": "Modality", "equals": "CT"},
                    "action": {"pipeline": "volume-stats", "device": "cpu"}}]}


def scrape(orthanc, path):
    with urllib.request.urlopen(orthanc.url + path, timeout=20) as response:
        content_type = response.headers.get("Content-Type", "")
        text = response.read().decode("utf-8")
    samples = {}
    for family in text_string_to_metric_families(text):  # raises on anything not in the format
        samples[(family.name, "family")] = family.type
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return content_type, samples


def test_the_exposition_parses_and_counts_what_happened(orthanc_factory, job_db):
    orthanc = orthanc_factory({"Database": job_db[1], "Workers": 2}).start()
    orthanc.put("/procnode/rules", RULES)
    content_type, before = scrape(orthanc, "/procnode/metrics")
    assert content_type.startswith("text/plain") and "version=0.0.4" in content_type, content_type
    assert before[("procnode_database_up", ())] == 1
    assert before[("procnode_jobs", (("state", "queued"),))] == 0
    workers = (("gpu", "no"), ("kind", "plugin"))
    orthanc.wait_for(lambda: scrape(orthanc, "/procnode/metrics")[1].get(("procnode_worker_threads", workers)) == 2, 30,
                     "the plugin's worker pool (2 threads) registered")

    send_dicom(orthanc, [CHEST_CT])
    [job] = wait_jobs_finished(orthanc, 1)
    assert job["state"] == "done", job
    _, after = scrape(orthanc, "/procnode/metrics")
    assert after[("procnode_jobs_finished_total", (("outcome", "done"), ("processor", "volume-stats")))] == 1
    assert after[("procnode_jobs_device_total", (("device", "cpu"),))] == 1
    assert after[("procnode_jobs", (("state", "done"),))] == 1
    assert after[("procnode_oldest_queued_job_seconds", ())] == 0
    for stage in ("fetch", "volume", "process", "report", "store"):
        count = after[("procnode_stage_duration_seconds_count", (("stage", stage),))]
        inf = after[("procnode_stage_duration_seconds_bucket", (("le", "+Inf"), ("stage", stage)))]
        assert count == inf == 1, stage
    process_seconds = after[("procnode_stage_duration_seconds_sum", (("stage", "process"),))]
    assert 0 < process_seconds < 60 and abs(process_seconds * 1000 - job["result"]["timings_ms"]["process"]) < 1
    assert after[("procnode_intake_pending", ())] == 0

    # The sample Grafana dashboard (docker/) asks only for metrics the node exposes.
    dashboard = json.load(open(os.path.join(ROOT, "docker", "grafana-procnode.json")))
    exposed = {name for name, _ in after}  # families (counters without _total) and samples
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            for name in re.findall(r"\bprocnode_[a-z_]+", target["expr"]):
                assert name in exposed, (panel["title"], name)

    # Orthanc's own metrics carry the main gauges (floats, as Orthanc 1.10 takes them).
    _, orthanc_metrics = scrape(orthanc, "/tools/metrics-prometheus")
    assert orthanc_metrics[("procnode_database_up", ())] == 1
    assert orthanc_metrics[("procnode_jobs_queued", ())] == 0
    assert ("procnode_deliveries_dead", ()) in orthanc_metrics


def test_a_database_outage_shows_in_the_metrics(orthanc_factory, pg, job_db):
    orthanc = orthanc_factory({"Database": job_db[1], "Workers": 0, "DatabaseConnectTimeoutSeconds": 2,
                               "DatabaseStatementTimeoutSeconds": 3}).start()
    pg.psql("postgres", f"ALTER DATABASE {job_db[0]} WITH ALLOW_CONNECTIONS false")
    pg.psql("postgres", f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{job_db[0]}'")
    try:
        _, down = scrape(orthanc, "/procnode/metrics")
        assert down[("procnode_database_up", ())] == 0
        assert ("procnode_jobs", (("state", "queued"),)) not in down, "no stale figures while it is down"
    finally:
        pg.psql("postgres", f"ALTER DATABASE {job_db[0]} WITH ALLOW_CONNECTIONS true")
    # Back alone: the broken connections are dropped and new ones made at the next scrapes.
    orthanc.wait_for(lambda: scrape(orthanc, "/procnode/metrics")[1][("procnode_database_up", ())] == 1, 30,
                     "the database reported up again")
