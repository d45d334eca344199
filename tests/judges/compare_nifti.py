"""Field-by-field comparison of a NIfTI-1 file (and sidecar) with a reference, e.g. dcm2niix's.

    compare_nifti.py OURS.nii[.gz] REFERENCE.nii [--sidecar OURS.json REFERENCE.json]

Judged (issue 3): voxels equal (stored values, same data type), sform and qform affines within
1e-4 mm, header fields equal, and every sidecar key we write that the reference also has equal
(numbers within 1e-5 relative: dcm2niix
v1.0.20220720 prints six significant digits, newer versions and procnode print all). Exit 0 when equal, 1 with the differences listed otherwise.
Uses Debian's python3-nibabel and numpy.
"""
import json
import sys

import nibabel
import numpy

HEADER_FIELDS = ["dim", "datatype", "bitpix", "scl_slope", "scl_inter", "qform_code", "sform_code", "xyzt_units",
                 "dim_info", "slice_code", "slice_start", "slice_end", "slice_duration", "vox_offset", "intent_code",
                 "toffset", "cal_min", "cal_max"]


def header(path):
    with nibabel.openers.ImageOpener(path) as f:
        return nibabel.Nifti1Header.from_fileobj(f)


def raw_voxels(path, hdr):
    with nibabel.openers.ImageOpener(path) as f:
        return hdr.raw_data_from_fileobj(f)


def compare(ours, reference):
    problems = []
    a, b = header(ours), header(reference)
    for field in HEADER_FIELDS:
        x, y = a[field], b[field]
        equal = numpy.array_equal(x, y) or (numpy.all(numpy.isnan(x)) and numpy.all(numpy.isnan(y)))
        if not equal and numpy.issubdtype(numpy.asarray(x).dtype, numpy.floating):
            # float32 header fields computed in float (dcm2niix) or double (procnode) differ in the
            # last digits: Philips precise scaling 1/4.095 is 0.2442002 or 0.2442017.
            equal = numpy.allclose(x, y, rtol=1e-5, atol=1e-6)
        if not equal:
            problems.append(f"header {field}: {x} != reference {y}")
    dims = int(a["dim"][0])
    if not numpy.allclose(a["pixdim"][1:dims + 1], b["pixdim"][1:dims + 1], rtol=1e-5, atol=1e-5):
        problems.append(f"pixdim: {a['pixdim'][1:dims + 1]} != reference {b['pixdim'][1:dims + 1]}")
    # A rotation of about 180 degrees has a quaternion whose first component, which NIfTI does not
    # store but recomputes as sqrt(1 - b^2 - c^2 - d^2) from float32 b, c, d, is near 0: there the
    # recomputation loses half the digits (about 5e-4 of a voxel size), in whichever file.
    qb, qc, qd = (float(b[k]) for k in ("quatern_b", "quatern_c", "quatern_d"))
    qform_tolerance = 2e-3 * float(max(b["pixdim"][1:4])) if 1 - (qb * qb + qc * qc + qd * qd) < 1e-6 else 1e-4
    for name, ma, mb, tolerance in [("sform", a.get_sform(), b.get_sform(), 1e-4),
                                    ("qform", a.get_qform(), b.get_qform(), qform_tolerance)]:
        if a[name + "_code"] == 0 and b[name + "_code"] == 0:
            continue  # both say the matrix means nothing (geometry missing from the DICOM)
        worst = numpy.abs(ma - mb).max()
        if worst > tolerance:
            problems.append(f"{name} differs by up to {worst:.6f} mm:\n{ma}\nreference\n{mb}")
    va, vb = raw_voxels(ours, a), raw_voxels(reference, b)
    if va.shape != vb.shape:
        problems.append(f"voxel array shape {va.shape} != reference {vb.shape}")
    elif not numpy.array_equal(va, vb):
        problems.append(f"voxels differ at {int(numpy.count_nonzero(va != vb))} of {va.size} positions")
    return problems


def normalized_image_type(values):
    """ImageType as DICOM has it: newer dcm2niix versions split tokens at '_' and append the
    complex component (MAGNITUDE, PHASE, REAL, IMAGINARY, FIELDMAPHZ), older ones do not."""
    tokens = [part for value in values for part in str(value).split("_") if part]
    while tokens and tokens[-1] in ("MAGNITUDE", "PHASE", "REAL", "IMAGINARY", "FIELDMAPHZ"):
        tokens.pop()
    return tokens


def compare_sidecars(ours, reference):
    problems, common = [], 0
    with open(ours) as f:
        a = json.load(f)
    with open(reference) as f:
        b = json.load(f)
    for key, value in a.items():
        if key.startswith("Conversion") or key not in b:
            continue
        common += 1
        other = b[key]
        if key == "ImageType":
            same = normalized_image_type(value) == normalized_image_type(other)
        elif key == "SliceTiming":
            # Both take the first volume's times unless they disagree with the second's (then the
            # second's); dcm2niix v1.0.20220720 prints six digits.
            same = len(value) == len(other) and all(abs(x - y) <= 1e-4 for x, y in zip(value, other))
        elif isinstance(value, (int, float)) and isinstance(other, (int, float)):
            same = abs(value - other) <= 1e-5 * max(1.0, abs(other))
        elif isinstance(value, list) and isinstance(other, list) and all(
                isinstance(v, (int, float)) for v in value + other):
            same = len(value) == len(other) and all(abs(x - y) <= 1e-5 for x, y in zip(value, other))
        else:
            same = value == other
        if not same:
            problems.append(f"sidecar {key}: {value!r} != reference {other!r}")
    return problems, common


def main(argv):
    if len(argv) not in (3, 6) or (len(argv) == 6 and argv[3] != "--sidecar"):
        print(__doc__, file=sys.stderr)
        return 2
    problems = compare(argv[1], argv[2])
    if len(argv) == 6:
        sidecar_problems, common = compare_sidecars(argv[4], argv[5])
        problems += sidecar_problems
        if common < 3:
            problems.append(f"only {common} sidecar keys in common with the reference")
        print(f"sidecar keys compared: {common}")
    for problem in problems:
        print(problem)
    print("equal" if not problems else f"{len(problems)} difference(s)")
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
