"""Radiomics benchmark: `procnode process radiomics` on the IBSI CT phantom (CT series + RTSTRUCT,
one region of 125 256 voxels) in each of IBSI's configurations A-E: median wall time end to end
(DICOM reading, RTSTRUCT rasterisation, every feature family, CSV, PDF), the processor stage alone
(from the job's timings) and peak RSS. pyradiomics, the tool sites use today (about 2.9 s per region
single-threaded as reported), is not packaged in Debian and cannot be installed here, so the
comparison is with that figure; the issue's goal is under 0.3 s per region in configuration C.

    /usr/bin/python3 bench/radiomics_bench.py [--runs 5] [--build build]
"""
import json
import os
import shutil
import statistics

from benchlib import ROOT, arguments, timed

CT = os.path.join(ROOT, "..", "shared", "data", "ibsi", "ibsi_1_ct_radiomics_phantom", "dicom")


def main():
    args, cli = arguments(5)
    print(f"{'configuration':14} {'wall s':>7} {'process s':>9} {'peak MiB':>9}")
    for configuration in "ABCDE":
        process = []
        wall, rss, out = timed([cli, "process", "radiomics", CT, "--out", "{out}", "--param", f"configuration={configuration}"],
                               args.runs, keep_last=True)
        with open(os.path.join(out, "measurements.json")) as f:
            process.append(json.load(f)["timings_ms"]["process"] / 1000)
        shutil.rmtree(out, ignore_errors=True)
        print(f"{configuration:14} {wall:7.3f} {statistics.median(process):9.3f} {rss:9.0f}")


if __name__ == "__main__":
    main()
