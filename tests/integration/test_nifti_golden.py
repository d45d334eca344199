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


def test_tilted_ct_with_changing_spacing_is_split_and_tilt_corrected_with_true_geometry(cli_path, workdir):
    """dcm_qa_ct: GE head CT, 18.5 degree gantry tilt, spacing 4.2 then 7.4 mm. Judged against its
    reference sidecar, and geometrically: every output voxel, mapped through the NIfTI affine back
    into the original slices, must hold the original intensity there (linear along the columns)."""
    import nibabel
    import numpy
    import pydicom
    sys.path.insert(0, os.path.dirname(JUDGE))
    from compare_nifti import compare_sidecars

    source = os.path.join(SHARED_DATA, "dcm_qa_ct", "In", "GE")
    nii, sidecar = os.path.join(workdir, "ct.nii"), os.path.join(workdir, "ct.json")
    result = subprocess.run([cli_path, "convert", source, nii, "--sidecar", sidecar], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert "gantry tilt of 18.5 degrees" in result.stderr and "split into 2 evenly spaced parts" in result.stderr
    slices = sorted((pydicom.dcmread(os.path.join(source, f)) for f in os.listdir(source)),
                    key=lambda d: float(d.ImagePositionPatient[2]))
    for part, originals in ((1, slices[:14]), (2, slices[14:])):
        problems, common = compare_sidecars(os.path.join(workdir, f"ct_part{part}.json"),
                                            os.path.join(SHARED_DATA, "dcm_qa_ct", "Ref", "_2.json"))
        if part == 1:
            assert problems == [] and common >= 10, problems
        image = nibabel.load(os.path.join(workdir, f"ct_part{part}.nii"))
        data = numpy.asanyarray(image.dataobj)  # scaled to HU
        to_voxel = numpy.linalg.inv(image.affine)
        rng = numpy.random.default_rng(part)
        checked = 0
        for k in range(0, len(originals), 3):
            d = originals[k]
            pixels = d.pixel_array.astype(float) * float(d.RescaleSlope) + float(d.RescaleIntercept)
            ipp = numpy.array([float(v) for v in d.ImagePositionPatient])
            iop = numpy.array([float(v) for v in d.ImageOrientationPatient])
            dy, dx = (float(v) for v in d.PixelSpacing)
            for _ in range(200):
                row, col = rng.integers(0, 512, 2)
                lps = ipp + iop[:3] * dx * col + iop[3:] * dy * row
                voxel = to_voxel @ numpy.array([-lps[0], -lps[1], lps[2], 1.0])
                i, j, z = voxel[:3]
                assert abs(z - round(z)) < 1e-3 and abs(i - round(i)) < 1e-3, voxel
                j_low = int(numpy.floor(j))
                f = j - j_low
                if j_low < 0 or j_low + 1 >= data.shape[1]:
                    continue
                value = (1 - f) * data[int(round(i)), j_low, int(round(z))] + f * data[int(round(i)), j_low + 1, int(round(z))]
                # The output interpolated the original between rows; reading it back between rows
                # again smooths once more: allow for that in edges, exactness elsewhere.
                neighbours = pixels[max(row - 1, 0):row + 2, col]
                assert neighbours.min() - 1 <= value <= neighbours.max() + 1, (k, row, col, value, neighbours)
                checked += 1
        assert checked > 800


def test_unsupported_series_fail_with_a_reason_and_exit_code_2(cli_path, workdir):
    folder = os.path.join(workdir, "not-an-image")
    os.makedirs(folder)
    os.symlink(os.path.join(SHARED_DATA, "debian-pydicom-test-files", "rtplan.dcm"), os.path.join(folder, "rtplan.dcm"))
    result = subprocess.run([cli_path, "convert", folder, os.path.join(workdir, "x.nii")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stderr
    assert "no PixelData" in result.stderr and "rtplan.dcm" in result.stderr, result.stderr
    assert not os.path.exists(os.path.join(workdir, "x.nii")), "nothing written for a refused series"
