"""N4 bias-field correction benchmark: `procnode process mr-normalize` (N4 on a copy shrunk 4x per
axis, three fitting levels of at most 50 iterations, the field evaluated at full resolution;
method none, so the derived image is the bias-corrected MR) against a plain ITK 5.2 N4 run at
full resolution with ITK's defaults (bench/itk_n4), on the shared brain MR (256x256x192), in one run.

    /usr/bin/python3 bench/n4_bench.py [--runs 3] [--build build]

Needs libinsighttoolkit5-dev (bench/debian-packages.txt); the ITK peer is built into
BUILD/bench-itk-n4 on first use. Time: median wall time over --runs runs, end to end from the
DICOM folder (procnode also writes its PDF report, the Encapsulated PDF, the derived DICOM series
and its NIfTI; the peer writes its NIfTI). Quality: the coefficient of variation within white
matter, on one mask for all three images: voxels within 15 % of the white-matter peak (the
brightest peak of the smoothed foreground histogram) in both corrected images, so neither tool's
result picks the mask alone; lower is better, the input's is the reference.
"""
import os
import subprocess

import nibabel
import numpy

from benchlib import arguments, build_cmake_peer, timed

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..")
MR = os.path.join(ROOT, "..", "shared", "data", "mr-brain-sag-mprage")


def canonical(path):
    return numpy.asarray(nibabel.as_closest_canonical(nibabel.load(path)).dataobj, dtype=numpy.float64)


def white_matter_window(image):
    """Voxels within 15 % of the brightest tissue peak of the foreground's smoothed histogram."""
    foreground = image[image > 0.1 * numpy.percentile(image, 99)]
    counts, edges = numpy.histogram(foreground, bins=400, range=(numpy.percentile(foreground, 1), numpy.percentile(foreground, 99)))
    kernel = numpy.exp(-0.5 * (numpy.arange(-24, 25) / 8.0) ** 2)
    smooth = numpy.convolve(counts, kernel / kernel.sum(), mode="same")
    peaks = [i for i in range(1, len(smooth) - 1) if smooth[i] >= smooth[i - 1] and smooth[i] > smooth[i + 1]
             and smooth[i] >= 0.1 * smooth.max()]
    mode = (edges[peaks[-1]] + edges[peaks[-1] + 1]) / 2
    return (image > 0.85 * mode) & (image < 1.15 * mode)


def cv(image, mask):
    values = image[mask]
    return values.std() / values.mean()


def main():
    args, cli = arguments(3)
    itk = build_cmake_peer(os.path.abspath(args.build), "itk_n4", "itk_n4")
    ours_s, ours_rss, ours_out = timed([cli, "process", "mr-normalize", MR, "--out", "{out}", "--param", "method=none"], args.runs,
                                       keep_last=True)
    peer_s, peer_rss, peer_out = timed([itk, MR, "{out}/corrected.nii.gz"], args.runs, keep_last=True)
    input_path = os.path.join(peer_out, "input.nii")
    subprocess.run([cli, "convert", MR, input_path], check=True, capture_output=True)
    ours = canonical(os.path.join(ours_out, "derived-normalized.nii.gz"))
    peer = canonical(os.path.join(peer_out, "corrected.nii.gz"))
    raw = canonical(input_path)
    assert ours.shape == peer.shape == raw.shape, (ours.shape, peer.shape, raw.shape)
    mask = white_matter_window(ours) & white_matter_window(peer)
    voxel_ml = numpy.prod(nibabel.load(input_path).header.get_zooms()[:3]) / 1000
    print(f"{'':22} {'seconds':>8} {'peak MiB':>9} {'WM CV':>7}")
    print(f"{'input (no correction)':22} {'-':>8} {'-':>9} {cv(raw, mask):7.4f}")
    print(f"{'procnode mr-normalize':22} {ours_s:8.2f} {ours_rss:9.0f} {cv(ours, mask):7.4f}")
    print(f"{'ITK N4, full res':22} {peer_s:8.2f} {peer_rss:9.0f} {cv(peer, mask):7.4f}")
    print(f"time ratio procnode/ITK {ours_s / peer_s:.2f}; white-matter mask {mask.sum() * voxel_ml:.0f} mL")


if __name__ == "__main__":
    main()
