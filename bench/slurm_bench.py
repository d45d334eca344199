"""The Slurm executor against the local one, in one run on this machine (a throwaway one-node Slurm
cluster, tests/harness/slurm.py): (1) one chest CT through the lung-emphysema rule: enqueued to
claimed (for Slurm: submission, scheduling, the batch job starting `procnode worker --once`) and
claimed to done; (2) N small studies (the GE head CT of dcm_qa_ct, copies with fresh UIDs) through
volume-stats: total time, with at most --max-submitted batch jobs in Slurm at once. The local
executor runs --threads in-plugin workers; each batch job asks for one CPU.

    /usr/bin/python3 bench/slurm_bench.py [--studies 12] [--threads 2] [--max-submitted 3] [--build build]
"""
import argparse
import json
import os
import statistics
import sys
import tempfile
from datetime import datetime

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..")
sys.path.insert(0, os.path.join(ROOT, "tests", "harness"))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from orthanc import OrthancServer  # noqa: E402
from pgcluster import PgCluster  # noqa: E402
from slurm import SlurmCluster, available  # noqa: E402
from helpers import copy_study  # noqa: E402
sys.path.insert(0, HERE)
from benchlib import chest_ct_copy, send_and_wait  # noqa: E402

SHARED = os.environ.get("PROCNODE_SHARED_DATA", os.path.join(ROOT, "..", "shared", "data"))


def at(job, kind):
    event = next(e for e in job["events"] if e["kind"] == kind)
    return datetime.fromisoformat(event["at"].replace("Z", "+00:00"))


def run(plugin, cli, work, executor, pipeline, folders, threads, max_submitted, cluster):
    with PgCluster() as pg:
        db = pg.create_database("bench")
        rules = {"rules": [{"id": "bench", "match": {"attribute": "Modality", "equals": "CT"},
                            "action": {"pipeline": pipeline, "executor": executor}}]}
        rules_file = os.path.join(work, f"rules-{executor}-{pipeline}.json")
        with open(rules_file, "w") as f:
            json.dump(rules, f)
        worker_config = os.path.join(work, f"worker-{executor}-{pipeline}.json")
        settings = {"Kind": "local", "WorkerConfig": worker_config, "LogDirectory": os.path.join(work, "slurm-logs"),
                    "SlurmConf": cluster.conf, "Procnode": cli, "PollSeconds": 0.5, "CpusPerJob": 1,
                    "MaxSubmitted": max_submitted}
        procnode = {"Database": db, "Workers": threads if executor == "local" else 0, "PollSeconds": 0.2,
                    "RulesFile": rules_file, "Executor": settings}
        with OrthancServer(plugin, procnode, verbose=False, stable_age=1) as orthanc:
            with open(worker_config, "w") as f:
                json.dump({"ProcNode": {"Database": db}, "Orthanc": {"Url": orthanc.url}}, f)
            listed, elapsed = send_and_wait(orthanc, folders, interval=0.1)
            details = [orthanc.get(f"/procnode/jobs/{j['id']}") for j in listed]
            assert all(j["state"] == "done" for j in details), [(j["id"], j["error"]) for j in details]
            to_start = [(at(j, "claimed") - at(j, "enqueued")).total_seconds() for j in details]
            running = [(at(j, "done") - at(j, "claimed")).total_seconds() for j in details]
            return elapsed, statistics.mean(to_start), statistics.mean(running)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=12)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-submitted", type=int, default=3)
    parser.add_argument("--build", default=os.path.join(ROOT, "build"))
    args = parser.parse_args()
    if available():
        sys.exit(f"slurm_bench: {available()}")
    plugin = os.path.abspath(os.path.join(args.build, "plugin", "libOrthancProcNode.so"))
    cli = os.path.abspath(os.path.join(args.build, "cli", "procnode"))
    with tempfile.TemporaryDirectory(prefix="procnode-slurm-bench-") as work:
        chest = chest_ct_copy(os.path.join(work, "chest"))
        heads = [copy_study(os.path.join(SHARED, "dcm_qa_ct", "In", "GE"), os.path.join(work, f"head-{n}"), n)
                 for n in range(args.studies)]
        with SlurmCluster(directory=os.path.join(work, "cluster"), memory_mb=8192) as cluster:
            rows = []
            for executor in ("local", "slurm"):
                total, to_start, running = run(plugin, cli, work, executor, "lung-emphysema", [chest], args.threads,
                                               args.max_submitted, cluster)
                rows.append((executor, total, to_start, running))
            print(f"\none chest CT, lung-emphysema ({os.cpu_count()} CPUs)")
            print(f"{'executor':10} {'sent->done s':>13} {'enqueued->claimed s':>20} {'claimed->done s':>16}")
            for executor, total, to_start, running in rows:
                print(f"{executor:10} {total:13.2f} {to_start:20.2f} {running:16.2f}")
            print(f"slurm/local sent->done: {rows[1][1] / rows[0][1]:.2f}x")
            many = []
            for executor in ("local", "slurm"):
                total, to_start, running = run(plugin, cli, work, executor, "volume-stats", heads, args.threads,
                                               args.max_submitted, cluster)
                many.append((executor, total, to_start, running))
            print(f"\n{args.studies} head CTs, volume-stats (local: {args.threads} threads; Slurm: at most "
                  f"{args.max_submitted} batch jobs of 1 CPU)")
            print(f"{'executor':10} {'total s':>8} {'studies/min':>12} {'mean enqueued->claimed s':>25} {'mean claimed->done s':>21}")
            for executor, total, to_start, running in many:
                print(f"{executor:10} {total:8.2f} {args.studies / total * 60:12.1f} {to_start:25.2f} {running:21.2f}")
            print(f"slurm/local total: {many[1][1] / many[0][1]:.2f}x")


if __name__ == "__main__":
    main()
