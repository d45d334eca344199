"""Standalone workers against the in-plugin pool: throughput of N chest-CT studies (copies of the
shared chest CT with fresh UIDs) through the lung-emphysema rule, on one Orthanc and one job
database, in one run: (a) the in-plugin pool, (b) one standalone `procnode worker` process, (c) two.
Each configuration runs the same number of worker threads in total (--threads). Also the mean job
duration (claim to done) per configuration: the difference between (b) and (a) is what a standalone
worker pays for fetching the study and storing results over HTTP instead of in process.

    /usr/bin/python3 bench/worker_bench.py [--studies 6] [--threads 2] [--build build]
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from datetime import datetime

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..")
sys.path.insert(0, os.path.join(ROOT, "tests", "harness"))
from orthanc import OrthancServer  # noqa: E402
from pgcluster import PgCluster  # noqa: E402
sys.path.insert(0, HERE)
from benchlib import chest_ct_copy, send_and_wait  # noqa: E402

RULES = {"rules": [{"id": "lungs", "match": {"attribute": "Modality", "equals": "CT"},
                    "action": {"pipeline": "lung-emphysema"}}]}


def copies(count, work):
    """`count` copies of the chest CT, each a study of its own."""
    return [chest_ct_copy(os.path.join(work, f"study-{n}")) for n in range(count)]


def seconds(job, start, end):
    parse = lambda t: datetime.fromisoformat(t.replace("Z", "+00:00"))  # noqa: E731
    return (parse(job[end]) - parse(job[start])).total_seconds()


def run(plugin, cli, folders, in_plugin_threads, processes, threads_each):
    with PgCluster() as pg:
        db = pg.create_database("bench")
        with OrthancServer(plugin, {"Database": db, "Workers": in_plugin_threads, "PollSeconds": 0.2},
                           verbose=False, stable_age=1) as orthanc:
            orthanc.put("/procnode/rules", RULES)
            workers = [subprocess.Popen([cli, "worker", "--db", db, "--orthanc", orthanc.url, "--workers", str(threads_each)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(processes)]
            try:
                jobs, elapsed = send_and_wait(orthanc, folders)
            finally:
                for w in workers:
                    w.terminate()
                    w.wait(timeout=60)
            failed = [j for j in jobs if j["state"] != "done"]
            if failed:
                raise RuntimeError(f"{len(failed)} job(s) failed: {failed[0]['error']}")
            durations = [seconds(j, "started_at", "finished_at") for j in jobs]
            return elapsed, statistics.mean(durations)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--studies", type=int, default=6)
    parser.add_argument("--threads", type=int, default=2, help="worker threads in total, per configuration")
    parser.add_argument("--build", default=os.path.join(ROOT, "build"))
    args = parser.parse_args()
    plugin = os.path.abspath(os.path.join(args.build, "plugin", "libOrthancProcNode.so"))
    cli = os.path.abspath(os.path.join(args.build, "cli", "procnode"))
    work = tempfile.mkdtemp(prefix="worker-bench-")
    try:
        folders = copies(args.studies, work)
        rows = [("in-plugin pool", run(plugin, cli, folders, args.threads, 0, 0)),
                ("1 standalone worker", run(plugin, cli, folders, 0, 1, args.threads)),
                ("2 standalone workers", run(plugin, cli, folders, 0, 2, max(1, args.threads // 2)))]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    base = rows[0][1]
    print(f"{args.studies} chest-CT studies, lung-emphysema, {args.threads} worker thread(s) in total")
    print(f"{'configuration':24} {'all done s':>10} {'studies/min':>11} {'vs plugin':>9} {'job s':>7} {'job - plugin ms':>15}")
    for name, (elapsed, job) in rows:
        print(f"{name:24} {elapsed:10.2f} {60 * args.studies / elapsed:11.1f} {base[0] / elapsed:9.2f} {job:7.2f} "
              f"{1000 * (job - base[1]):15.0f}")


if __name__ == "__main__":
    main()
