"""Radiomics batch benchmark: `procnode radiomics` over single-image cases, the grid systems'
50 000-image workload. Each case is one slice of the shared chest CT with its lung region (a NIfTI
label image made from lung-emphysema's labels of that slice: right and left lung, two regions),
features in 2D on the native grid (re-segmented to [-1000, 400] HU, bin size 25, every family, the
texture families aggregated per slice: aggregation=2D).
Reports cases/s and regions/s with --jobs 1 and 2, peak RSS, and the time extrapolated to 50 000
images (the issue's goal: under 10 minutes on 2 cores; the grid systems took 240-270 minutes on
20 CPUs). pyradiomics, the peer, is not packaged in Debian and cannot be installed here.

    /usr/bin/python3 bench/radiomics_batch_bench.py [--runs 1] [--build build] (cases: 4 x the 64 slices)
"""
import glob
import os
import re
import shutil
import subprocess
import tempfile
import time

import nibabel  # Debian's python3-nibabel
import numpy
import pydicom

from benchlib import CHEST, arguments


def make_cases(cli, folder, copies):
    lung = os.path.join(folder, "lung")
    subprocess.run([cli, "process", "lung-emphysema", CHEST, "--out", lung], check=True, capture_output=True)
    labels = nibabel.load(os.path.join(lung, "labels.nii.gz"))
    data = numpy.asarray(labels.dataobj)
    inverse = numpy.linalg.inv(labels.affine)
    masks = os.path.join(folder, "masks")
    cases = os.path.join(folder, "cases")
    os.makedirs(masks)
    files = [p for p in sorted(glob.glob(os.path.join(CHEST, "*"))) if not p.endswith("LICENSE")]
    n = 0
    for path in files:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        lps = numpy.array([float(x) for x in ds.ImagePositionPatient])
        ras = numpy.array([-lps[0], -lps[1], lps[2], 1.0])  # NIfTI is RAS
        k = int(round((inverse @ ras)[2]))
        plane = data[:, :, k]
        # Right lung (labels 1 and 3) and left lung (2 and 4) as labels 1 and 2.
        mask = numpy.where(numpy.isin(plane, (1, 3)), 1, numpy.where(numpy.isin(plane, (2, 4)), 2, 0)).astype(numpy.uint8)
        if not mask.any():
            continue
        affine = labels.affine.copy()
        affine[:, 3] = labels.affine @ numpy.array([0, 0, k, 1.0])
        for c in range(copies):
            name = f"case-{n:05d}"
            os.makedirs(os.path.join(cases, name))
            os.symlink(path, os.path.join(cases, name, os.path.basename(path)))
            nibabel.save(nibabel.Nifti1Image(mask[:, :, None], affine), os.path.join(masks, name + ".nii.gz"))
            n += 1
    return cases, masks, n


def main():
    args, cli = arguments(1)
    work = tempfile.mkdtemp(prefix="radiomics-batch-")
    try:
        cases, masks, count = make_cases(cli, work, 4)
        print(f"{count} single-image cases (chest CT slices with lung, 2 regions each)")
        print(f"{'jobs':>4} {'cases/s':>8} {'regions/s':>9} {'peak MiB':>9} {'50 000 images':>14}")
        for jobs in (1, 2):
            best = None
            for _ in range(args.runs):
                out = os.path.join(work, f"features-{jobs}.csv")
                for stale in glob.glob(out + "*"):
                    os.remove(stale)
                start = time.perf_counter()
                result = subprocess.run(["/usr/bin/time", "-f", "%M", cli, "radiomics", cases, "--out", out, "--masks", masks,
                                         "--jobs", str(jobs), "--param", "interpolation=none", "--param", "range=-1000,400",
                                         "--param", "discretisation=bin_size", "--param", "bin_width=25", "--param", "aggregation=2D"],
                                        capture_output=True, text=True)
                seconds = time.perf_counter() - start
                if result.returncode != 0:
                    raise RuntimeError(result.stderr[-2000:])
                rss = int(result.stderr.strip().splitlines()[-1]) / 1024
                rows = int(re.search(r"(\d+) row", result.stdout).group(1))
                if best is None or seconds < best[0]:
                    best = (seconds, rss, rows)
            seconds, rss, rows = best
            rate = count / seconds
            print(f"{jobs:>4} {rate:8.1f} {rows / seconds:9.1f} {rss:9.0f} {50000 / rate / 60:11.1f} min")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
