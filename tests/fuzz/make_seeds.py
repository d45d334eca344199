"""Seed corpora for the libFuzzer targets, from the shared data and the repository (nothing is
copied into the repository): small DICOM files (the malformed ones included), Siemens CSA headers
and GE protocol blocks cut out of real files, small NIfTI images, the example rule sets and the
tool manifests.  Usage: make_seeds.py OUT_DIR SHARED_DATA REPO"""
import glob
import os
import shutil
import sys

import nibabel
import numpy
import pydicom


def main(out, data, repo):
    def folder(name):
        path = os.path.join(out, name)
        shutil.rmtree(path, ignore_errors=True)
        os.makedirs(path)
        return path

    dicom, csa, ge = folder("dicom"), folder("csa"), folder("ge_protocol")
    candidates = sorted(glob.glob(os.path.join(data, "debian-pydicom-test-files", "*.dcm")))
    candidates += sorted(glob.glob(os.path.join(data, "dcm_qa_nih", "In", "*", "*", "*.dcm")))[::60]
    candidates += sorted(glob.glob(os.path.join(data, "dcm_qa_uih", "In", "*", "*", "*")))[:2]
    # An RT Structure Set (the IBSI CT phantom's GTV contours) for the RTSTRUCT reader and rasteriser.
    candidates += sorted(glob.glob(os.path.join(data, "ibsi", "ibsi_1_ct_radiomics_phantom", "dicom", "mask", "*.dcm")))
    # Small Segmentations (BINARY and LABELMAP) for the SEG reader.
    segs = os.path.join(data, "seg-sr-dcmqi", "segmentations")
    candidates += [os.path.join(segs, "23x38x3", "seg", "label.seg"), os.path.join(segs, "sparse-labelmap-ppv5.dcm")]
    for n, path in enumerate(candidates):
        if os.path.getsize(path) <= 512 << 10:
            shutil.copy(path, os.path.join(dicom, f"{n:03d}.dcm"))
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except Exception:
            continue
        for tag, target in (((0x0029, 0x1010), csa), ((0x0029, 0x1020), csa), ((0x0025, 0x101B), ge)):
            if tag in ds and isinstance(ds[tag].value, bytes) and len(ds[tag].value) <= 256 << 10:
                with open(os.path.join(target, f"{n:03d}-{tag[1]:04x}.bin"), "wb") as f:
                    f.write(ds[tag].value)

    nifti = folder("nifti")
    affine = numpy.diag([0.5, 0.5, 2.0, 1.0])
    affine[:3, 3] = [10, -20, 30]
    images = {"int16.nii": numpy.arange(48, dtype=numpy.int16).reshape(4, 4, 3),
              "float32.nii.gz": numpy.linspace(-1, 1, 48, dtype=numpy.float32).reshape(4, 4, 3),
              "uint8-4d.nii": numpy.ones((3, 2, 2, 2), numpy.uint8),
              "float64.nii": numpy.zeros((2, 2, 2))}
    for name, array in images.items():
        nibabel.save(nibabel.Nifti1Image(array, affine), os.path.join(nifti, name))

    rules = folder("rules")
    for path in sorted(glob.glob(os.path.join(repo, "schemas", "examples", "*.json"))):
        shutil.copy(path, rules)
    manifests = folder("tool_manifest")
    for n, path in enumerate(sorted(glob.glob(os.path.join(repo, "tools", "*", "tool.json")) +
                                    glob.glob(os.path.join(repo, "tests", "integration", "tools", "*", "tool.json")))):
        shutil.copy(path, os.path.join(manifests, f"{n:02d}.json"))
    for name in ("dicom", "csa", "ge_protocol", "nifti", "rules", "tool_manifest"):
        print(f"seeds {name}: {len(os.listdir(os.path.join(out, name)))}")


if __name__ == "__main__":
    main(*sys.argv[1:4])
