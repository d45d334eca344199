"""Slice order, affine, slice timing and gradients in every orientation, against dcm2niix run live.

The shared EPI series are axial. Sagittal, coronal and oblique series are made from them by
relabelling their geometry (ImageOrientationPatient, ImagePositionPatient, and for the Siemens
mosaic the CSA header's SliceNormalVector, whose sign decides dcm2niix's slice order): the pixels
stay, so the question is only whether both converters place them the same way. The mosaics also
carry a diffusion weighting (CSA B_value and DiffusionGradientDirection) so the gradients' rotation
into the voxel axes is judged in each orientation, including dcm2niix's negative-determinant mosaics.
"""
import glob
import math
import os
import struct
import subprocess
import sys

import pydicom
import pydicom.uid
import pytest

from conftest import SHARED_DATA
from test_diffusion import assert_tables_equal, judge

SIEMENS_MOSAIC = os.path.join(SHARED_DATA, "dcm_qa_nih", "In", "20180918Si", "mr_0003")
GE_EPI = os.path.join(SHARED_DATA, "dcm_qa_nih", "In", "20180918GE", "mr_0004")


def csa_decode(blob):
    """Siemens CSA ("SV10") as [(name, vm, vr, syngodt, last, [item bytes])]."""
    assert blob[:4] == b"SV10", "not an SV10 CSA header"
    count = struct.unpack("<I", blob[8:12])[0]
    at, tags = 16, []
    for _ in range(count):
        name = blob[at:at + 64].split(b"\0")[0].decode()
        vm, vr, syngodt, n, last = struct.unpack("<i4siii", blob[at + 64:at + 84])
        at += 84
        items = []
        for _ in range(n):
            length = struct.unpack("<4i", blob[at:at + 16])[1]
            at += 16
            items.append(blob[at:at + length])
            at += length + (4 - length % 4) % 4
        tags.append([name, vm, vr, syngodt, last, items])
    return tags


def csa_encode(tags):
    out = bytearray(b"SV10\x04\x03\x02\x01" + struct.pack("<II", len(tags), 77))
    for name, vm, vr, syngodt, last, items in tags:
        out += name.encode().ljust(64, b"\0") + struct.pack("<i4siii", vm, vr, syngodt, len(items), last)
        for item in items:
            out += struct.pack("<4i", len(item), len(item), 77, len(item)) + item
            out += b"\0" * ((4 - len(item) % 4) % 4)
    out += b"\0" * 4
    return bytes(out)


def with_csa(blob, normal, b, gradient):
    """The CSA header with its SliceNormalVector, B_value and DiffusionGradientDirection set (as a
    Siemens diffusion mosaic carries them; b=0 images have no direction)."""
    def text(values):
        return [f"{v:.8f}".encode() + b"\0" for v in values]
    tags = [tag for tag in csa_decode(blob) if tag[0] != "DiffusionGradientDirection"]
    for tag in tags:
        if tag[0] == "SliceNormalVector":
            tag[5] = text(normal) + [b""] * (len(tag[5]) - 3)
        if tag[0] == "B_value":
            tag[5] = [f"{b}".encode() + b"\0"]
    if gradient:
        tags.append(["DiffusionGradientDirection", 3, b"FD\0\0", 4, 77, text(gradient)])
    return csa_encode(tags)


def rotation(axis, degrees):
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    if axis == "x":
        return [[1, 0, 0], [0, c, -s], [0, s, c]]
    if axis == "y":
        return [[c, 0, s], [0, 1, 0], [-s, 0, c]]
    return [[c, -s, 0], [s, c, 0], [0, 0, 1]]


def apply(m, v):
    return [sum(m[r][k] * v[k] for k in range(3)) for r in range(3)]


def cross(a, b):
    return [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]]


# Orientations as (row, column) direction cosines in LPS, and for mosaics the sign of the CSA
# normal relative to row x column (-1: dcm2niix's negative determinant, slices kept in mosaic order).
ORIENTATIONS = {
    "axial": ([1, 0, 0], [0, 1, 0], 1),
    "sagittal": ([0, 1, 0], [0, 0, -1], -1),          # Siemens sagittal: normal +x, row x column -x
    "sagittal-positive": ([0, 1, 0], [0, 0, -1], 1),
    "coronal": ([1, 0, 0], [0, 0, -1], 1),
    "coronal-negative": ([1, 0, 0], [0, 0, -1], -1),
    "oblique": (apply(rotation("x", 20), apply(rotation("z", 15), [1, 0, 0])),
                apply(rotation("x", 20), apply(rotation("z", 15), [0, 1, 0])), 1),
    "oblique-sagittal": (apply(rotation("z", 10), [0, 1, 0]), apply(rotation("z", 10), [0, 0, -1]), -1),
}


def relabel(folder, out, orientation, mosaic):
    """The series in `folder` with its geometry turned to `orientation`: every position p becomes
    R p with R taking the axial axes to the new ones, so slice spacing and order stay."""
    row, column, normal_sign = ORIENTATIONS[orientation]
    normal = cross(row, column)
    os.makedirs(out)
    files = sorted(p for p in glob.glob(os.path.join(folder, "*.dcm")))
    if mosaic:  # four volumes (b=0, 1000, 0, 2000) from the two: dcm2niix v1.0.20220720 wants three for a table
        files = files + files
    for index, path in enumerate(files):
        ds = pydicom.dcmread(path)
        if index >= len(files) // 2 and mosaic:
            ds.SOPInstanceUID = pydicom.uid.generate_uid()
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            ds.InstanceNumber = int(ds.InstanceNumber) + len(files) // 2
            ds.AcquisitionNumber = int(ds.AcquisitionNumber) + len(files) // 2
        old_row = [float(v) for v in ds.ImageOrientationPatient[:3]]
        old_col = [float(v) for v in ds.ImageOrientationPatient[3:]]
        old_normal = cross(old_row, old_col)
        p = [float(v) for v in ds.ImagePositionPatient]
        # Coordinates along the old axes, placed along the new ones.
        coords = [sum(p[k] * axis[k] for k in range(3)) for axis in (old_row, old_col, old_normal)]
        ds.ImagePositionPatient = [f"{sum(c * axis[r] for c, axis in zip(coords, (row, column, normal))):.6f}"
                                   for r in range(3)]
        ds.ImageOrientationPatient = [f"{v:.8f}" for v in row + column]
        if mosaic:
            b, g = [(0, None), (1000, [0.6, 0.48, 0.64]), (0, None), (2000, [-0.36, 0.8, 0.48])][index]
            ds[0x0029, 0x1010].value = with_csa(ds[0x0029, 0x1010].value, [normal_sign * v for v in normal], b, g)
        ds.save_as(os.path.join(out, f"{index:03d}_" + os.path.basename(path)))


def run_both(cli, source, workdir):
    reference = os.path.join(workdir, "dcm2niix")
    os.makedirs(reference)
    subprocess.run(["dcm2niix", "-z", "n", "-o", reference, "-f", "ref", source], check=True, capture_output=True,
                   timeout=300)
    ours = os.path.join(workdir, "ours")
    result = subprocess.run([cli, "convert", "--outdir", ours, source], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    stems = [p[:-len(".json")] for p in glob.glob(os.path.join(ours, "*.json"))]
    assert len(stems) == 1, os.listdir(ours)
    return stems[0], os.path.join(reference, "ref")


@pytest.mark.parametrize("orientation", sorted(ORIENTATIONS))
def test_siemens_mosaics_follow_dcm2niix_in_every_orientation(cli_path, workdir, orientation):
    source = os.path.join(workdir, "in")
    relabel(SIEMENS_MOSAIC, source, orientation, mosaic=True)
    ours, reference = run_both(cli_path, source, workdir)
    judge(ours + ".nii.gz", ours + ".json", reference + ".nii", reference + ".json")  # voxels, affine, slice_code, SliceTiming
    assert_tables_equal(ours + ".bval", reference + ".bval")
    assert_tables_equal(ours + ".bvec", reference + ".bvec")


@pytest.mark.parametrize("orientation", sorted(o for o in ORIENTATIONS if ORIENTATIONS[o][2] == 1))
def test_single_frame_series_follow_dcm2niix_in_every_orientation(cli_path, workdir, orientation):
    source = os.path.join(workdir, "in")
    relabel(GE_EPI, source, orientation, mosaic=False)
    ours, reference = run_both(cli_path, source, workdir)
    judge(ours + ".nii.gz", ours + ".json", reference + ".nii", reference + ".json")


# ---- Input dcm2niix converts with a warning: one file, no SeriesInstanceUID, no geometry ----

def test_a_single_file_converts_as_dcm2niix_converts_it(cli_path, workdir):
    path = os.path.join(SHARED_DATA, "dcm_qa_ts", "In", "1.dcm")
    folder = os.path.join(workdir, "one")
    os.makedirs(folder)
    os.symlink(path, os.path.join(folder, "1.dcm"))
    reference = os.path.join(workdir, "dcm2niix")
    os.makedirs(reference)
    subprocess.run(["dcm2niix", "-z", "n", "-o", reference, "-f", "ref", folder], check=True, capture_output=True,
                   timeout=300)
    ours = os.path.join(workdir, "ours")
    result = subprocess.run([cli_path, "convert", path, ours + ".nii", "--sidecar", ours + ".json"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    judge(ours + ".nii", ours + ".json", os.path.join(reference, "ref.nii"), os.path.join(reference, "ref.json"))


def strip_series(folder, out, remove):
    os.makedirs(out)
    for path in sorted(glob.glob(os.path.join(folder, "*.dcm"))):
        ds = pydicom.dcmread(path)
        for keyword in remove:
            if keyword in ds:
                delattr(ds, keyword)
        ds.save_as(os.path.join(out, os.path.basename(path)))


@pytest.mark.parametrize("case,remove,warning", [
    ("no-uid", ["SeriesInstanceUID"], "SeriesInstanceUID missing: images grouped by series number 4"),
    ("no-geometry", ["ImagePositionPatient", "ImageOrientationPatient"], "ImagePositionPatient missing"),
])
def test_images_without_uid_or_geometry_convert_with_a_warning(cli_path, workdir, case, remove, warning):
    import json
    source = os.path.join(workdir, "in")
    # One volume of the GE EPI (its first 15 files: every slice once).
    strip_series(GE_EPI, source, remove)
    for extra in sorted(glob.glob(os.path.join(source, "*.dcm")))[15:]:
        os.remove(extra)
    ours, reference = run_both(cli_path, source, workdir)
    judge(ours + ".nii.gz", ours + ".json", reference + ".nii", reference + ".json")
    with open(ours + ".json") as f:
        warnings = json.load(f)["ConversionWarnings"]
    assert any(w.startswith(warning) for w in warnings), warnings
    if case == "no-geometry":  # the guessed geometry is not claimed: qform and sform codes 0, as dcm2niix
        import nibabel
        header = nibabel.load(ours + ".nii.gz").header
        assert header["sform_code"] == 0 and header["qform_code"] == 0


# ---- GE slice timing: dcm2niix's model from the protocol block, every branch of it ----

def relabel_ge_protocol(folder, out, keys, software=None, sequence=None, drop_fmri_delay=False):
    """The GE EPI with its protocol block (0025,101B: 4-byte length, gzip text) rewritten: `keys`
    set or added; optionally another SoftwareVersions, PulseSequenceName (0019,109C), and no
    fMRI group delay (0043,107C)."""
    import gzip
    import re
    os.makedirs(out)
    for path in sorted(glob.glob(os.path.join(folder, "*.dcm"))):
        ds = pydicom.dcmread(path)
        text = gzip.decompress(ds[0x0025, 0x101B].value[4:]).decode("latin-1")
        for key, value in keys.items():
            line = f'{key} "{value}"'
            text, found = re.subn(rf'^{key} "[^"]*"', line, text, flags=re.M)
            if not found:
                text += line + "\n"
        ds[0x0025, 0x101B].value = struct.pack("<I", len(text)) + gzip.compress(text.encode("latin-1"))
        if software:
            ds.SoftwareVersions = software
        if sequence:
            ds[0x0019, 0x109C].value = sequence
        if drop_fmri_delay and (0x0043, 0x107C) in ds:
            del ds[0x0043, 0x107C]
        ds.save_as(os.path.join(out, os.path.basename(path)))


GE_R29 = "28\\LX\\MR29.1_EA_2039.g"
GE_R27_2 = "27\\LX\\MR Software release:RX27.0_R02_1831.a"
GE_R27_3 = "27\\LX\\MR Software release:RX27.0_R03_1831.a"


@pytest.mark.parametrize("case,keys,software,sequence,drop", [
    # HyperBand: 15 slices at factor 2 are 8 excitations: 9 before 27.0 R03, 8 with the last two
    # odd ones swapped after; factor 3 and 5 odd counts; sequential.
    ("hb2-r26", {"MBACCEL": "2"}, None, None, False),
    ("hb2-r29", {"MBACCEL": "2"}, GE_R29, None, False),
    ("hb3-r26", {"MBACCEL": "3"}, None, None, False),
    ("hb5-r27r2", {"MBACCEL": "5"}, GE_R27_2, None, False),
    ("hb5-r27r3-sequential", {"MBACCEL": "5", "SLICEORDER": "0"}, GE_R27_3, None, False),
    # Multi-phase EPI: the block's group delay lengthens the TR, not the spread.
    ("multiphase", {"IOPT": "EPI, MPh", "DELACQNOAV": "0.5"}, None, "epi", True),
])
def test_ge_slice_timing_follows_dcm2niix_in_every_branch(cli_path, workdir, case, keys, software, sequence, drop):
    import json
    folder = os.path.join(workdir, case)
    relabel_ge_protocol(GE_EPI, folder, keys, software, sequence, drop)
    reference = os.path.join(workdir, "dcm2niix")
    os.makedirs(reference)
    subprocess.run(["dcm2niix", "-z", "n", "-o", reference, "-f", "ref", folder], capture_output=True, timeout=300)
    ours = os.path.join(workdir, "ours")
    result = subprocess.run([cli_path, "convert", folder, ours + ".nii", "--sidecar", ours + ".json"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    with open(os.path.join(reference, "ref.json")) as f:
        ref = json.load(f)
    with open(ours + ".json") as f:
        got = json.load(f)
    assert len(ref["SliceTiming"]) == 15
    assert len(set(ref["SliceTiming"])) > 1, "the relabelled series must give dcm2niix distinct times"
    assert got["SliceTiming"] == pytest.approx(ref["SliceTiming"], abs=1e-4)
    assert got["RepetitionTime"] == pytest.approx(ref["RepetitionTime"], abs=1e-6)
    assert got.get("MultibandAccelerationFactor") == ref.get("MultibandAccelerationFactor")
