"""Bone density benchmark: `procnode process bone-density` end to end (DICOM folder in; labels,
measurements, SEG, SR, PDF and Encapsulated PDF out) on both kernels of the shared chest CT, beside
the time dcm2niix takes only to convert the same series to NIfTI (the floor of any tool that reads
the study, as Comp2Comp does before its model runs), in one run.

    /usr/bin/python3 bench/bone_bench.py [--runs 5] [--build build]

Each row: median wall time over --runs runs and peak RSS (GNU time), and procnode's own stage
times (volume: reading and decoding; process: the processor; report: PDF, SEG, SR). Comp2Comp,
the open-source peer, is not run: it needs PyTorch and its model weights, neither in Debian nor
downloadable here; its authors give about 90 s per CT for the spine model alone.
"""
import json
import os
import statistics
import subprocess

from benchlib import arguments, timed

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "..", "shared", "data", "ct-chest-lung-dx-a0001")


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


if __name__ == "__main__":
    main()
