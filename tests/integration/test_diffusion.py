"""Diffusion series: .bval/.bvec (and image, affine, sidecar) against dcm2niix.

Two judges: the reference files shipped with dcm_qa_uih (UIH grids, private tags) and dcm_qa_xa60
(Siemens XA enhanced, per-frame MR Diffusion Sequence, axial and coronal), and dcm2niix run live on
series relabelled from the shared GE EPI as diffusion series of other vendors (GE private tags,
Siemens private tags, the standard attributes at the top level of classic images, Philips with a
derived trace volume), so every reader and rotation is compared with the reference converter.
Gradients must agree within 1e-4 (in practice they agree to the byte).
"""
import glob
import math
import os
import subprocess
import sys

import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from conftest import SHARED_DATA

HERE = os.path.dirname(os.path.abspath(__file__))
JUDGE = os.path.join(HERE, "..", "judges", "compare_nifti.py")

UIH = os.path.join(SHARED_DATA, "dcm_qa_uih")
XA = os.path.join(SHARED_DATA, "dcm_qa_xa60")
REFERENCES = {
    "uih-AP": (f"{UIH}/In/DTI_134434/dti_tra_dir16_AP_SaveBySlc__140028", 9, f"{UIH}/Ref/dti_tra_dir16_AP_9_134431"),
    "uih-PA": (f"{UIH}/In/DTI_134434/dti_tra_dir16_PA_SaveBySlc__135612", 6, f"{UIH}/Ref/dti_tra_dir16_PA_6_134431"),
    "uih-PA-rotated": (f"{UIH}/In/DTI_134434/dti_tra_dir16_PA_rot_SaveBySlc__140451", 12,
                       f"{UIH}/Ref/dti_tra_dir16_PA_rot_12_134431"),
}
for number, name in [(14, "PRODUCT_ep2d_diff_p3_sms1"), (16, "PRODUCT_ep2d_diff_p3_sms2"),
                     (18, "C2P_cmrr_mbep2d_diff_p3_mb1"), (20, "C2P_cmrr_mbep2d_diff_p3_mb2")]:
    REFERENCES[f"xa60-{number}"] = (f"{XA}/In/XA60/DICOM", number,
                                    f"{XA}/Ref/phantom_check_MBfactor_TerraX_XA60_{number}_{name}")
for number, name in [(16, "C2P_cmrr_mbep2d_diff_p2_mb1"), (18, "C2P_cmrr_mbep2d_diff_p2_mb2")]:
    REFERENCES[f"xa61-{number}"] = (f"{XA}/In/XA61/DICOM", number,
                                    f"{XA}/Ref/phantom_check_MBfactor_CimaX_XA61_{number}_{name}")


def read_table(path):
    with open(path) as f:
        return [[float(v) for v in line.split()] for line in f if line.strip()]


def assert_tables_equal(ours, reference, tolerance=1e-4):
    a, b = read_table(ours), read_table(reference)
    assert len(a) == len(b), f"{ours}: {len(a)} rows, reference {len(b)}"
    for row, (x, y) in enumerate(zip(a, b)):
        assert len(x) == len(y), f"{ours} row {row + 1}: {len(x)} values, reference {len(y)}"
        worst = max(abs(p - q) for p, q in zip(x, y))
        assert worst <= tolerance, f"{ours} row {row + 1}: {x} differs from {y} by {worst}"


def convert_outdir(cli, folder, out_dir):
    result = subprocess.run([cli, "convert", "--outdir", out_dir, folder], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    return result


def judge(ours, ours_json, reference, reference_json):
    result = subprocess.run([sys.executable, JUDGE, ours, reference, "--sidecar", ours_json, reference_json],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_gradients_equal_the_shipped_references(cli_path, workdir, name):
    folder, number, reference = REFERENCES[name]
    out = os.path.join(workdir, "out")
    convert_outdir(cli_path, folder, out)
    ours = [p for p in glob.glob(os.path.join(out, f"{number}_*.nii.gz"))]
    assert len(ours) == 1, ours
    stem = ours[0][:-len(".nii.gz")]
    judge(ours[0], stem + ".json", reference + ".nii", reference + ".json")
    assert_tables_equal(stem + ".bval", reference + ".bval")
    assert_tables_equal(stem + ".bvec", reference + ".bvec")
    # dcm2niix's text layout: one line of b-values, three of vector components, space separated.
    with open(stem + ".bvec") as f:
        lines = f.read().split("\n")
    assert len(lines) == 4 and lines[3] == "" and all(" " in line for line in lines[:3])


# ---- Series relabelled from the shared GE EPI (64x64, 15 axial slices, 10 volumes) ----

GE_EPI = os.path.join(SHARED_DATA, "dcm_qa_nih", "In", "20180918GE", "mr_0004")

# b-value and direction (patient or vendor axes) per volume: b=0, six directions (one of length
# 0.71: GE scales its b-value, the others normalise), a repeated b=0 and two at b=2000.
TABLE = [(0, (0, 0, 0)), (1000, (1, 0, 0)), (1000, (0, 1, 0)), (1000, (0, 0, 1)),
         (1000, (0.5, 0.5, 0)), (1000, (0.5773503, -0.5773503, 0.5773503)),
         (1000, (-0.2, 0.9, 0.3872983)), (0, (0, 0, 0)), (2000, (0.6, 0.0, -0.8)), (2000, (0.0, -0.8, 0.6))]


def volumes_of(folder):
    """The GE EPI's files as (dataset, path, volume index): volumes by instance order per position."""
    datasets = []
    for path in sorted(glob.glob(os.path.join(folder, "*.dcm"))):
        datasets.append((pydicom.dcmread(path), path))
    by_position = {}
    for ds, path in datasets:
        by_position.setdefault(tuple(round(float(v), 3) for v in ds.ImagePositionPatient), []).append((ds, path))
    out = []
    for items in by_position.values():
        items.sort(key=lambda item: int(item[0].InstanceNumber))
        for t, (ds, path) in enumerate(items):
            out.append((ds, path, t))
    return out


def strip_private(ds):
    """Every private attribute: what GE wrote means something else to another vendor's reader."""
    for tag in [t for t in ds.keys() if t.group % 2 == 1]:
        del ds[tag]


def relabel(folder, out, vendor, table=TABLE):
    os.makedirs(out)
    for ds, path, t in volumes_of(folder):
        b, v = table[t % len(table)]
        ds.SeriesDescription = f"dwi_{vendor}"
        ds.ImageType = ["ORIGINAL", "PRIMARY", "DIFFUSION", "NONE"]
        if vendor == "ge":
            ds[0x0043, 0x1039].value = [1000000000 + b if b else 0, 8, 0, 0]
            for element, value in zip((0x10BB, 0x10BC, 0x10BD), v):
                ds[0x0019, element].value = f"{value:.6f}"
            ds[0x0019, 0x10E0].value = "6.000000"
        elif vendor == "siemens":
            strip_private(ds)
            ds.Manufacturer = "SIEMENS"
            ds.add_new((0x0019, 0x0010), "LO", "SIEMENS MR HEADER")
            ds.add_new((0x0019, 0x100C), "IS", str(b))
            if b:
                ds.add_new((0x0019, 0x100E), "FD", [float(x) for x in v])
        elif vendor == "standard":  # a classic image with the MR Diffusion macro at its top level
            strip_private(ds)
            ds.Manufacturer = "Hitachi Medical Corporation"
            item = Dataset()
            item.DiffusionBValue = float(b)
            item.DiffusionDirectionality = "DIRECTIONAL" if b else "NONE"
            if b:
                direction = Dataset()
                direction.DiffusionGradientOrientation = [float(x) for x in v]
                item.DiffusionGradientDirectionSequence = Sequence([direction])
            ds.MRDiffusionSequence = Sequence([item])
        elif vendor == "philips":  # the last volume a derived trace image (b > 0, no direction)
            strip_private(ds)
            ds.Manufacturer = "Philips Medical Systems"
            derived = t == len(table) - 1
            ds.add_new((0x2001, 0x0010), "LO", "Philips Imaging DD 001")
            ds.add_new((0x2001, 0x1003), "FL", float(b))
            ds.add_new((0x2001, 0x1004), "CS", "I" if derived else ("O" if b == 0 else "P"))
            ds.add_new((0x2005, 0x0010), "LO", "Philips MR Imaging DD 001")
            for element, value in zip((0x10B0, 0x10B1, 0x10B2), v):
                ds.add_new((0x2005, element), "FL", 0.0 if derived else float(value))
        ds.save_as(os.path.join(out, os.path.basename(path)))


PHILIPS_TABLE = TABLE[:9] + [(1000, (0, 0, 0))]


@pytest.mark.parametrize("vendor", ["ge", "siemens", "standard", "philips"])
def test_gradients_equal_dcm2niix_run_live(cli_path, workdir, vendor):
    source = os.path.join(workdir, "in")
    relabel(GE_EPI, source, vendor, PHILIPS_TABLE if vendor == "philips" else TABLE)
    reference = os.path.join(workdir, "dcm2niix")
    os.makedirs(reference)
    subprocess.run(["dcm2niix", "-z", "n", "-o", reference, "-f", "ref", source], check=True, capture_output=True,
                   timeout=300)
    ours = os.path.join(workdir, "ours")
    convert_outdir(cli_path, source, ours)
    stems = [p[:-len(".bval")] for p in glob.glob(os.path.join(ours, "*.bval"))]
    assert len(stems) == 1, os.listdir(ours)
    assert_tables_equal(stems[0] + ".bval", os.path.join(reference, "ref.bval"))
    assert_tables_equal(stems[0] + ".bvec", os.path.join(reference, "ref.bvec"))
    judge(stems[0] + ".nii.gz", stems[0] + ".json", os.path.join(reference, "ref.nii"),
          os.path.join(reference, "ref.json"))
    if vendor == "philips":  # the trace volume: left out of the diffusion image, last in the _ADC part
        judge(stems[0] + "_ADC.nii.gz", stems[0] + "_ADC.json", os.path.join(reference, "ref_ADC.nii"),
              os.path.join(reference, "ref.json"))
        assert len(read_table(stems[0] + ".bval")[0]) == len(PHILIPS_TABLE) - 1


def test_a_series_without_weighting_gets_no_table(cli_path, workdir):
    out = os.path.join(workdir, "out")
    convert_outdir(cli_path, GE_EPI, out)
    assert not glob.glob(os.path.join(out, "*.bval")) and not glob.glob(os.path.join(out, "*.bvec"))


def test_z_n_writes_uncompressed_images_equal_to_the_compressed_ones(cli_path, workdir):
    folder = os.path.join(SHARED_DATA, "dcm_qa_xa60", "In", "XA61", "DICOM")
    plain, packed = os.path.join(workdir, "plain"), os.path.join(workdir, "packed")
    result = subprocess.run([cli_path, "convert", "-z", "n", "--outdir", plain, folder], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    convert_outdir(cli_path, folder, packed)
    names = sorted(os.listdir(plain))
    assert [n for n in names if n.endswith(".nii")] and not [n for n in names if n.endswith(".gz")], names
    for name in [n for n in names if n.endswith(".nii")]:
        judge(os.path.join(plain, name), os.path.join(plain, name[:-4] + ".json"),
              os.path.join(packed, name + ".gz"), os.path.join(packed, name[:-4] + ".json"))
    refused = subprocess.run([cli_path, "convert", "-z", "maybe", "--outdir", plain, folder], capture_output=True,
                             text=True, timeout=60)
    assert refused.returncode == 2 and "maybe" in refused.stderr


# ---- Sidecar keys for distortion and slice-timing correction (issue 19, item 2) ----

PREPROCESSING_KEYS = ["SliceTiming", "EffectiveEchoSpacing", "TotalReadoutTime", "PhaseEncodingDirection",
                      "PhaseEncodingAxis", "MultibandAccelerationFactor", "ParallelReductionFactorInPlane",
                      "AcquisitionMatrixPE", "ReconMatrixPE", "PercentPhaseFOV"]
NIH = os.path.join(SHARED_DATA, "dcm_qa_nih")
SIDECAR_CASES = {name: (folder, number, reference) for name, (folder, number, reference) in REFERENCES.items()}
for number, direction in [(3, "AP"), (4, "PA"), (5, "RL"), (6, "LR")]:
    SIDECAR_CASES[f"siemens-mosaic-{direction}"] = (f"{NIH}/In/20180918Si/mr_000{number}", number,
                                                    f"{NIH}/Ref/EPI_PE={direction}_{number}")
for number in (4, 5, 6, 7):
    SIDECAR_CASES[f"ge-epi-{number}"] = (f"{NIH}/In/20180918GE/mr_000{number}", None,
                                         f"{NIH}/Ref/DCM2NIIX_regression_test_{number}")
# Known gap: GE slice times come from its compressed protocol block (0025,101B), not read yet.
NOT_YET = {("ge-epi-4", "SliceTiming"), ("ge-epi-5", "SliceTiming"), ("ge-epi-6", "SliceTiming"),
           ("ge-epi-7", "SliceTiming")}


@pytest.mark.parametrize("name", sorted(SIDECAR_CASES))
def test_preprocessing_keys_are_written_and_equal_the_references(cli_path, workdir, name):
    import json
    folder, number, reference = SIDECAR_CASES[name]
    out = os.path.join(workdir, "out")
    convert_outdir(cli_path, folder, out)
    found = glob.glob(os.path.join(out, f"{number}_*.json" if number else "*.json"))
    assert len(found) == 1, found
    with open(found[0]) as f:
        ours = json.load(f)
    with open(reference + ".json") as f:
        theirs = json.load(f)
    checked = 0
    for key in PREPROCESSING_KEYS:
        if key not in theirs or (name, key) in NOT_YET:
            continue
        assert key in ours, f"{name}: {key} missing (reference {theirs[key]})"
        a, b = ours[key], theirs[key]
        if isinstance(b, list):
            assert len(a) == len(b) and all(abs(x - y) <= 1e-4 for x, y in zip(a, b)), f"{name} {key}: {a} != {b}"
        elif isinstance(b, (int, float)):
            assert abs(a - b) <= 1e-5 * max(1.0, abs(b)), f"{name} {key}: {a} != {b}"
        else:
            assert a == b, f"{name} {key}: {a} != {b}"
        checked += 1
    assert checked >= 4, f"{name}: only {checked} of the keys compared"
