"""Bone density benchmark: `procnode process bone-density` end to end (DICOM folder in; labels,
measurements, SEG, SR, PDF and Encapsulated PDF out) on both kernels of the shared chest CT, beside
the time dcm2niix takes only to convert the same series to NIfTI (the floor of any tool that reads
the study, as Comp2Comp does before its model runs), in one run.

    /usr/bin/python3 bench/bone_bench.py [--runs 5] [--build build]

Each row: median wall time over --runs runs and peak RSS (GNU time), and procnode's own stage
times (volume: reading and decoding; process: the processor; report: PDF, SEG, SR). Then in
Orthanc: --runs copies of the chest CT (lung kernel, fresh UIDs) sent one after another through a
bone-density rule, one worker: each job's stage times and claim-to-done time, medians. Comp2Comp,
the open-source peer, is not run: it needs PyTorch and its model weights, neither in Debian nor
downloadable here; its authors give about 90 s per CT for the spine model alone.
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile
from datetime import datetime

from benchlib import arguments, chest_ct_copy, timed

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, ".."))
DATA = os.path.join(HERE, "..", "..", "shared", "data", "ct-chest-lung-dx-a0001")


def in_orthanc(build, runs):
    sys.path.insert(0, os.path.join(ROOT, "tests", "harness"))
    sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
    from orthanc import OrthancServer
    from pgcluster import PgCluster
    plugin = os.path.abspath(os.path.join(build, "plugin", "libOrthancProcNode.so"))
    at = lambda job, kind: datetime.fromisoformat(next(e["at"] for e in job["events"] if e["kind"] == kind).replace("Z", "+00:00"))
    with tempfile.TemporaryDirectory() as work, PgCluster() as pg:
        folders = [chest_ct_copy(os.path.join(work, f"ct{i}")) for i in range(runs)]
        procnode = {"Database": pg.create_database("bench"), "Workers": 1, "PollSeconds": 0.2}
        with OrthancServer(plugin, procnode, verbose=False, stable_age=1) as orthanc:
            orthanc.put("/procnode/rules", {"rules": [{"id": "bone", "match": {"attribute": "Modality", "equals": "CT"},
                                                       "action": {"pipeline": "bone-density"}}]})
            stages, claimed_to_done = {}, []
            for count, folder in enumerate(folders, start=1):
                job = send_and_wait_one(orthanc, folder, count)
                job = orthanc.get(f"/procnode/jobs/{job['id']}")
                assert job["state"] == "done", job["error"]
                for stage, ms in job["result"]["timings_ms"].items():
                    stages.setdefault(stage, []).append(ms)
                claimed_to_done.append((at(job, "done") - at(job, "claimed")).total_seconds())
    summary = ", ".join(f"{stage} {statistics.median(ms):.0f}" for stage, ms in stages.items() if statistics.median(ms) >= 1)
    print(f"in Orthanc (lung kernel, {runs} studies one after another): claimed to done {statistics.median(claimed_to_done):.2f} s; "
          f"stages (median ms): {summary}")


def send_and_wait_one(orthanc, folder, count):
    """Sends one more study and waits for its job (the `count`-th), returning it."""
    from orthanc import send_dicom
    send_dicom(orthanc, [folder])
    jobs = orthanc.wait_for(lambda: (lambda js: js if len(js) == count and all(j["state"] in ("done", "failed") for j in js) else None)(
        orthanc.get("/procnode/jobs")), 600, "the job finished", interval=0.05)
    return max(jobs, key=lambda j: j["id"])


def main():
    args, cli = arguments(5)
    print(f"{'kernel':16} {'procnode s':>10} {'RSS MiB':>8} {'dcm2niix s':>10} {'RSS MiB':>8} {'ratio':>6}   stages (median ms)")
    for kernel in ("standard-kernel", "lung-kernel"):
        folder = os.path.join(DATA, kernel)
        ours_s, ours_rss, out = timed([cli, "process", "bone-density", folder, "--out", "{out}"], args.runs, keep_last=True)
        stages = {}
        for _ in range(args.runs):  # stage times from the job summaries of further runs
            result = subprocess.run([cli, "process", "bone-density", folder, "--out", out], capture_output=True, text=True)
            with open(os.path.join(out, "measurements.json")) as f:
                for stage, ms in json.load(f)["timings_ms"].items():
                    stages.setdefault(stage, []).append(ms)
        peer_s, peer_rss, _ = timed(["dcm2niix", "-z", "n", "-o", "{out}", folder], args.runs)
        summary = ", ".join(f"{stage} {statistics.median(ms):.0f}" for stage, ms in stages.items() if statistics.median(ms) >= 1)
        print(f"{kernel:16} {ours_s:10.2f} {ours_rss:8.0f} {peer_s:10.2f} {peer_rss:8.0f} {ours_s / peer_s:6.2f}   {summary}")
        with open(os.path.join(out, "measurements.json")) as f:
            key = json.load(f)["measurements"]["key"]
        print(f"{'':16} key level {key['level']}: {key['mean_hu']} HU, {key['triage']}")
    in_orthanc(args.build, args.runs)


if __name__ == "__main__":
    main()
