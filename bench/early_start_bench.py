"""Early start against StableAge: latency from the last C-STORE to the results in Orthanc (job
done, its result series stored) for the chest CT (ImagesInAcquisition set to its count, as most
scanners send it) with a series-level lung-emphysema rule and StableAge 10, with the early start
(the default) and without it (ProcNode.EarlyStart false), in one run. Also the processing time of
the job itself (claim to done), which bounds what any start can reach.

    /usr/bin/python3 bench/early_start_bench.py [--runs 3] [--stable-age 10] [--build build]
"""
import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..")
sys.path.insert(0, os.path.join(ROOT, "tests", "harness"))
from orthanc import OrthancServer, send_dicom  # noqa: E402
from pgcluster import PgCluster  # noqa: E402
sys.path.insert(0, HERE)
from benchlib import chest_ct_copy  # noqa: E402

RULES = {"rules": [{"id": "lungs", "level": "series", "match": {"attribute": "Modality", "equals": "CT"},
                    "action": {"pipeline": "lung-emphysema"}}]}


def job_seconds(job):
    parse = lambda t: datetime.fromisoformat(t.replace("Z", "+00:00"))  # noqa: E731
    return (parse(job["finished_at"]) - parse(job["started_at"])).total_seconds()


def latencies(plugin, folders, early, stable_age):
    out = []
    with PgCluster() as pg:
        db = pg.create_database("bench")
        with OrthancServer(plugin, {"Database": db, "Workers": 2, "PollSeconds": 0.1, "EarlyStart": early},
                           verbose=False, stable_age=stable_age) as orthanc:
            orthanc.put("/procnode/rules", RULES)
            for n, folder in enumerate(folders):
                send_dicom(orthanc, [folder])
                sent = time.perf_counter()
                jobs = orthanc.wait_for(lambda: (lambda js: js if len(js) == n + 1 and
                                                 all(j["state"] in ("done", "failed") for j in js) else None)(
                    orthanc.get("/procnode/jobs")), 600, "the job finished", interval=0.05)
                out.append((time.perf_counter() - sent, job_seconds(jobs[0])))
                if jobs[0]["state"] != "done":
                    raise RuntimeError(f"job failed: {jobs[0]['error']}")
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--stable-age", type=int, default=10)
    parser.add_argument("--build", default=os.path.join(ROOT, "build"))
    args = parser.parse_args()
    plugin = os.path.abspath(os.path.join(args.build, "plugin", "libOrthancProcNode.so"))
    work = tempfile.mkdtemp(prefix="early-start-bench-")
    try:
        folders = [chest_ct_copy(os.path.join(work, f"study-{n}"), images_in_acquisition=True) for n in range(2 * args.runs)]
        early = latencies(plugin, folders[:args.runs], True, args.stable_age)
        stable = latencies(plugin, folders[args.runs:], False, args.stable_age)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"chest CT (64 x 512 x 512), series-level lung-emphysema rule, StableAge {args.stable_age}, {args.runs} run(s) each")
    print(f"{'start':22} {'last C-STORE -> results s (median)':>36} {'job s':>7}")
    for name, rows in (("early (own count)", early), ("at StableAge", stable)):
        print(f"{name:22} {statistics.median(r[0] for r in rows):36.2f} {statistics.median(r[1] for r in rows):7.2f}")
    print(f"ratio StableAge / early: {statistics.median(r[0] for r in stable) / statistics.median(r[0] for r in early):.1f}x")


if __name__ == "__main__":
    main()
