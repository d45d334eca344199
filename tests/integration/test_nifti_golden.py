"""procnode convert against dcm2niix: its reference NIfTI in dcm_qa_* and dcm2niix run live.

Judged by tests/judges/compare_nifti.py: voxels equal, affines within 1e-4 mm, header fields equal,
sidecar keys we write equal to the reference's.
"""
import glob
import os
import subprocess
import sys

import pytest

from conftest import SHARED_DATA

HERE = os.path.dirname(os.path.abspath(__file__))
JUDGE = os.path.join(HERE, "..", "judges", "compare_nifti.py")


def convert(cli, folder, out_dir, stem):
    nii, sidecar = os.path.join(out_dir, stem + ".nii.gz"), os.path.join(out_dir, stem + ".json")
    result = subprocess.run([cli, "convert", folder, nii, "--sidecar", sidecar], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    return nii, sidecar


def judge(ours, ours_json, reference, reference_json):
    result = subprocess.run([sys.executable, JUDGE, ours, reference, "--sidecar", ours_json, reference_json],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.mark.parametrize("folder", ["ct-chest-lung-dx-a0001/lung-kernel", "ct-chest-lung-dx-a0001/standard-kernel",
                                    "mr-brain-sag-mprage"])
def test_equals_dcm2niix_run_live(cli_path, workdir, folder):
    source = os.path.join(SHARED_DATA, folder)
    reference_dir = os.path.join(workdir, "dcm2niix")
    os.makedirs(reference_dir)
    subprocess.run(["dcm2niix", "-z", "n", "-o", reference_dir, "-f", "ref", source], check=True,
                   capture_output=True, timeout=300)
    ours, ours_json = convert(cli_path, source, workdir, "ours")
    print(judge(ours, ours_json, os.path.join(reference_dir, "ref.nii"), os.path.join(reference_dir, "ref.json")))


GE_EPI = {n: os.path.join(SHARED_DATA, "dcm_qa_nih", "In", "20180918GE", f"mr_000{n}") for n in (4, 5, 6, 7)}


@pytest.mark.parametrize("number", sorted(GE_EPI))
def test_equals_the_dcm_qa_nih_reference_for_ge_epi_4d(cli_path, workdir, number):
    reference = os.path.join(SHARED_DATA, "dcm_qa_nih", "Ref", f"DCM2NIIX_regression_test_{number}")
    ours, ours_json = convert(cli_path, GE_EPI[number], workdir, "ours")
    judge(ours, ours_json, reference + ".nii", reference + ".json")


SIEMENS_EPI = {"AP": 3, "PA": 4, "RL": 5, "LR": 6}


@pytest.mark.parametrize("direction", sorted(SIEMENS_EPI))
def test_equals_the_dcm_qa_nih_reference_for_siemens_mosaic_epi(cli_path, workdir, direction):
    number = SIEMENS_EPI[direction]
    folder = os.path.join(SHARED_DATA, "dcm_qa_nih", "In", "20180918Si", f"mr_000{number}")
    reference = os.path.join(SHARED_DATA, "dcm_qa_nih", "Ref", f"EPI_PE={direction}_{number}")
    ours, ours_json = convert(cli_path, folder, workdir, "ours")
    judge(ours, ours_json, reference + ".nii", reference + ".json")


def one_file_folder(workdir, path):
    folder = os.path.join(workdir, "in-" + os.path.basename(path))
    os.makedirs(folder)
    os.symlink(path, os.path.join(folder, os.path.basename(path)))
    return folder


@pytest.mark.parametrize("number", range(1, 10))
def test_equals_the_dcm_qa_ts_reference_in_every_transfer_syntax(cli_path, workdir, number):
    """One Siemens mosaic in explicit/implicit/big-endian, RLE, JPEG lossless, JPEG-LS, JPEG 2000."""
    source = one_file_folder(workdir, os.path.join(SHARED_DATA, "dcm_qa_ts", "In", f"{number}.dcm"))
    reference = os.path.join(SHARED_DATA, "dcm_qa_ts", "Ref", str(number))
    ours, ours_json = convert(cli_path, source, workdir, "ours")
    judge(ours, ours_json, reference + ".nii", reference + ".json")


ENHANCED = [
    ("dcm_qa_enh/In/Philips", "_e1", "dcm_qa_enh/Ref/Philips_WIP_B0_NS_801_e1"),
    ("dcm_qa_enh/In/Philips", "_e2_fieldmaphz", "dcm_qa_enh/Ref/Philips_WIP_B0_NS_801_e2_fieldmaphz"),
    ("dcm_qa_enh/In/Siemens", "", "dcm_qa_enh/Ref/Siemens_REST1_w_SMS_PF7-8_6"),
]


@pytest.mark.parametrize("folder,suffix,reference", ENHANCED)
def test_equals_the_dcm_qa_enh_reference_for_enhanced_multi_frame(cli_path, workdir, folder, suffix, reference):
    """Per-frame functional groups, Philips precise scaling, echo and field-map split, XA SMS 4D."""
    nii, sidecar = os.path.join(workdir, "ours.nii"), os.path.join(workdir, "ours.json")
    result = subprocess.run([cli_path, "convert", os.path.join(SHARED_DATA, folder), nii, "--sidecar", sidecar],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    judge(os.path.join(workdir, f"ours{suffix}.nii"), os.path.join(workdir, f"ours{suffix}.json"),
          os.path.join(SHARED_DATA, reference + ".nii"), os.path.join(SHARED_DATA, reference + ".json"))


def test_unsupported_series_fail_with_a_reason_and_exit_code_2(cli_path, workdir):
    for folder, reason in [("dcm_qa_ct/In/GE", "gantry tilt of 18.5 degrees")]:
        result = subprocess.run([cli_path, "convert", os.path.join(SHARED_DATA, folder), os.path.join(workdir, "x.nii")],
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 2, result.stderr
        assert reason in result.stderr, result.stderr
        assert not os.path.exists(os.path.join(workdir, "x.nii")), "nothing written for a refused series"
