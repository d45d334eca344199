"""Lung segmentation + emphysema benchmark: `procnode process lung-emphysema` (CPU; fast and
accurate variants) against a straightforward ITK 5.2 pipeline doing the same steps
(bench/itk_lung), on both kernels of the shared chest CT, in one run.

    /usr/bin/python3 bench/lung_bench.py [--runs 3] [--build build]

Needs libinsighttoolkit5-dev (bench/debian-packages.txt); the ITK peer is built into
BUILD/bench-itk-lung on first use. Each row: median wall time over --runs runs, end to end from
the DICOM folder to labels + measurements (procnode also writes its PDF report, the Encapsulated
PDF and two overlay PNGs), and peak RSS from GNU time. Agreement: Dice of each lung and the total
volume / LAA%-950 of both tools. plastimatch 1.9.4's `segment` has no lung mode (body only), so it
is not a peer here. GPU rows appear where a GPU is present (--device gpu).
"""
import json
import os
import shutil
import subprocess

import nibabel
import numpy

from benchlib import arguments, build_cmake_peer, timed

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..")
DATA = os.path.join(ROOT, "..", "shared", "data", "ct-chest-lung-dx-a0001")
KERNELS = ("lung-kernel", "standard-kernel")


def dice(a, b):
    return 2.0 * numpy.logical_and(a, b).sum() / max(1, a.sum() + b.sum())


def main():
    args, cli = arguments(3)
    itk = build_cmake_peer(os.path.abspath(args.build), "itk_lung", "itk_lung")
    status = json.loads(subprocess.run([cli, "status"], capture_output=True, text=True).stdout)
    devices = ["cpu"] + (["gpu"] if status["gpu"]["found"] else [])
    rows, agreement = [], []
    for kernel in KERNELS:
        folder = os.path.join(DATA, kernel)
        volume_mib = 512 * 512 * 64 * 4 / 2**20  # the float32 volume procnode processes
        peer_s, peer_rss, peer_out = timed([itk, folder, "{out}"], args.runs, keep_last=True)
        for device in devices:
            for variant in ("fast", "accurate"):
                ours_s, ours_rss, ours_out = timed([cli, "process", "lung-emphysema", folder, "--out", "{out}",
                                                    "--device", device, "--param", f"variant={variant}"], args.runs,
                                                   keep_last=True)
                rows.append((kernel, f"{variant}/{device}", ours_s, peer_s, ours_rss, peer_rss, volume_mib))
                if variant == "fast" and device == "cpu":
                    # Both on one voxel grid: ITK writes its own row order, procnode dcm2niix's.
                    ours_img = nibabel.as_closest_canonical(nibabel.load(os.path.join(ours_out, "labels.nii.gz")))
                    peer_img = nibabel.as_closest_canonical(nibabel.load(os.path.join(peer_out, "labels.nii.gz")))
                    assert numpy.allclose(ours_img.affine, peer_img.affine, atol=1e-3), (ours_img.affine, peer_img.affine)
                    ours = numpy.asarray(ours_img.dataobj)
                    peer = numpy.asarray(peer_img.dataobj)
                    with open(os.path.join(ours_out, "measurements.json")) as f:
                        m = json.load(f)["measurements"]
                    with open(os.path.join(peer_out, "measurements.json")) as f:
                        p = json.load(f)
                    agreement.append((kernel, dice(numpy.isin(ours, (1, 3)), peer == 1), dice(numpy.isin(ours, (2, 4)), peer == 2),
                                      m["total"]["volume_ml"], p["total"]["volume_ml"],
                                      m["total"]["laa950_percent"], p["total"]["laa950_percent"],
                                      m["timings_ms"]))
                shutil.rmtree(ours_out, ignore_errors=True)
        shutil.rmtree(peer_out, ignore_errors=True)
    print(f"{'kernel':16} {'procnode':14} {'procnode s':>10} {'ITK s':>7} {'speed-up':>8} {'procnode MiB':>12} "
          f"{'ITK MiB':>8} {'RSS/volume':>10}")
    for kernel, what, ours, peer, our_rss, peer_rss, volume in rows:
        print(f"{kernel:16} {what:14} {ours:10.2f} {peer:7.2f} {peer / ours:8.1f} {our_rss:12.0f} {peer_rss:8.0f} "
              f"{our_rss / volume:10.1f}")
    print()
    print(f"{'kernel':16} {'Dice R':>7} {'Dice L':>7} {'vol procnode':>12} {'vol ITK':>8} {'LAA950 procnode':>15} {'LAA950 ITK':>10}")
    for kernel, dr, dl, vo, vp, lo, lp, _ in agreement:
        print(f"{kernel:16} {dr:7.4f} {dl:7.4f} {vo:12.0f} {vp:8.0f} {lo:15.2f} {lp:10.2f}")
    print()
    for kernel, *_, timings in agreement:
        print(f"procnode processor steps ({kernel}, ms): " + ", ".join(f"{k} {v:.0f}" for k, v in timings.items()))


if __name__ == "__main__":
    main()
