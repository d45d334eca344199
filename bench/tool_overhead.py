"""External-tool overhead: what procnode adds to a tool that does nothing, on the chest CT
(512 x 512 x 64, lung kernel), against the same job with a native processor, in one run.

    /usr/bin/python3 bench/tool_overhead.py [--runs 5] [--build build]

The tool `noop` (a shell line writing an empty measurements.json and a one-line report.json) runs
through `procnode process` (folder in, DICOM results out). Per run, from the job's own summary:
the process stage (input NIfTI written, sandbox made, tool run, outputs read and checked) minus the
tool's runtime as the sandbox measured it; the report + store stages (PDF, Encapsulated PDF); and
the whole command's wall time, beside `procnode process volume-stats` on the same series (the
native processor's in-process cost). Also: bubblewrap alone (`bwrap ... /bin/true`), the floor of
any sandboxed start. Medians over --runs. A container start (mercure, MONAI Deploy, XNAT's
Container Service run each tool in a fresh container) is not measured here: these machines have no
container engine.
"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from benchlib import arguments  # noqa: E402

CHEST = os.path.join(HERE, "..", "..", "shared", "data", "ct-chest-lung-dx-a0001", "lung-kernel")
NOOP = {"manifest_version": 1, "name": "noop", "version": "1", "description": "does nothing: the overhead probe",
        "command": ["/bin/sh", "-c", "echo '{\"measurements\": []}' > /output/measurements.json; "
                                     "echo '{\"sections\": [{\"heading\": \"Nothing\"}]}' > /output/report.json"],
        "outputs": {"measurements": True, "report": True}}


def run_once(cli, processor, tools, source):
    out = tempfile.mkdtemp(prefix="tool-bench-")
    try:
        start = time.perf_counter()
        result = subprocess.run([cli, "process", processor, source, "--tools", tools, "--out", out],
                                capture_output=True, text=True)
        wall = time.perf_counter() - start
        if result.returncode != 0:
            raise RuntimeError(f"{processor}: {result.stderr[-800:]}")
        with open(os.path.join(out, "measurements.json")) as f:
            summary = json.load(f)
        return wall, summary
    finally:
        shutil.rmtree(out, ignore_errors=True)


def bwrap_floor(runs):
    argv = ["bwrap", "--unshare-all", "--die-with-parent", "--new-session", "--ro-bind", "/usr", "/usr",
            "--symlink", "usr/bin", "/bin", "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64",
            "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--clearenv", "/usr/bin/true"]
    times = []
    for _ in range(runs * 4):
        start = time.perf_counter()
        subprocess.run(argv, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    args, cli = arguments(5)
    tools = tempfile.mkdtemp(prefix="tool-bench-tools-")
    os.makedirs(os.path.join(tools, "noop"))
    with open(os.path.join(tools, "noop", "tool.json"), "w") as f:
        json.dump(NOOP, f)
    rows = {"noop": [], "volume-stats": []}
    try:
        for _ in range(args.runs):
            for processor in rows:  # interleaved, so both see the same machine state
                rows[processor].append(run_once(cli, processor, tools, CHEST))
    finally:
        shutil.rmtree(tools, ignore_errors=True)
    med = statistics.median
    noop = rows["noop"]
    native = rows["volume-stats"]
    process_ms = [s["timings_ms"]["process"] for _, s in noop]
    tool_ms = [s["tool"]["runtime_seconds"] * 1000 for _, s in noop]
    overhead_ms = [p - t for p, t in zip(process_ms, tool_ms)]
    results_ms = [s["timings_ms"]["report"] + s["timings_ms"]["store"] for _, s in noop]
    native_process_ms = [s["timings_ms"]["process"] for _, s in native]
    native_results_ms = [s["timings_ms"]["report"] + s["timings_ms"]["store"] for _, s in native]
    print(f"chest CT {noop[0][1]['dims']}, {args.runs} runs, medians")
    print(f"  noop tool: process stage {med(process_ms):.1f} ms, of which the tool itself {med(tool_ms):.1f} ms")
    print(f"  procnode's overhead in the process stage (NIfTI out, sandbox, outputs in): {med(overhead_ms):.1f} ms")
    print(f"  report + store (PDF, Encapsulated PDF): {med(results_ms):.1f} ms (volume-stats: {med(native_results_ms):.1f} ms)")
    print(f"  overhead beyond the tool's runtime, results included: {med(overhead_ms) + med(results_ms):.1f} ms (goal < 150 ms)")
    print(f"  volume-stats (native) process stage: {med(native_process_ms):.1f} ms")
    print(f"  whole command: noop {med([w for w, _ in noop]) * 1000:.0f} ms, volume-stats {med([w for w, _ in native]) * 1000:.0f} ms "
          f"(ratio {med([w for w, _ in noop]) / med([w for w, _ in native]):.2f})")
    print(f"  bubblewrap alone (bwrap ... /usr/bin/true): {bwrap_floor(args.runs) * 1000:.1f} ms")
    print("  container start: not measured (no container engine on these machines)")


if __name__ == "__main__":
    main()
