"""bone-density end to end (issue 17) on the shared chest CT, both kernels. The processor's bodies
and ROIs are checked independently here: every ROI voxel is read from dcm2niix's conversion of the
same series (not procnode's), lies in marrow-to-bone attenuation and has cortical bone on all four
sides on its axial slice; the ROI means are recomputed from those voxels. Results are judged by
dciodvfy, PixelMed's TID 1500 validator and dcmjs; refusals give their reasons."""
import glob
import json
import os

import nibabel
import numpy
import pydicom

from conftest import CHEST_CT, SHARED_DATA
from helpers import dciodvfy_errors, dcmjs_read, pixelmed_sr_report, result_series, run, save, wait_jobs_finished
from orthanc import send_dicom

KERNELS = {"standard": os.path.join(SHARED_DATA, "ct-chest-lung-dx-a0001", "standard-kernel"),
           "lung": os.path.join(SHARED_DATA, "ct-chest-lung-dx-a0001", "lung-kernel")}
HEAD_CT = os.path.join(SHARED_DATA, "dcm_qa_ct", "In", "GE")
BRAIN_MR = os.path.join(SHARED_DATA, "mr-brain-sag-mprage")
LEVELS = [f"T{i}" for i in range(1, 13)] + [f"L{i}" for i in range(1, 6)]
VERTEBRA_CODES = {"T12": "23215003", "L1": "66794005", "L2": "14293000", "T11": "12989004", "T10": "7610001"}


def process(cli_path, folder, out, *params):
    args = [cli_path, "process", "bone-density", folder, "--out", out]
    for p in params:
        args += ["--param", p]
    return run(args)


def dcm2niix(folder, out):
    os.makedirs(out, exist_ok=True)
    result = run(["dcm2niix", "-z", "n", "-f", "image", "-o", out, folder])
    assert result.returncode == 0, result.stderr
    return nibabel.load(os.path.join(out, "image.nii"))


def surrounded_by_bone(image, x, y, z, spacing, reach_mm=40, bone_hu=180, outside_hu=20):
    """Walking out of voxel (x, y, z) in each of the four in-plane directions, bone (above 180 HU:
    the thin cortex of upper thoracic bodies reads that low on 5 mm slices) comes within reach and
    before anything below 20 HU (fat, fluid, lung: outside the bone)."""
    for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1)):
        steps = int(reach_mm / (spacing[0] if dx else spacing[1]))
        found = False
        for s in range(1, steps + 1):
            i, j = x + dx * s, y + dy * s
            if not (0 <= i < image.shape[0] and 0 <= j < image.shape[1]) or image[i, j, z] < outside_hu:
                break
            if image[i, j, z] > bone_hu:
                found = True
                break
        if not found:
            return False
    return True


def test_both_kernels_give_the_bodies_their_levels_and_rois_inside_the_bone(cli_path, workdir):
    results, surrounded = {}, {"standard": [], "lung": []}
    for kernel, folder in KERNELS.items():
        out = os.path.join(workdir, kernel)
        result = process(cli_path, folder, out)
        assert result.returncode == 0, result.stderr
        with open(os.path.join(out, "measurements.json")) as f:
            m = json.load(f)["measurements"]
        results[kernel] = m
        bodies = m["bodies"]
        print(f"\n{kernel} kernel: key {m['key']}")
        for b in bodies:
            print(f"  {b['level'] or '?':4} {b['level_confidence']:9} z {b['centre_z_mm']:7.1f} mm  height {b['height_mm']:4.0f}  "
                  + (f"mean {b['mean_hu']:6.1f}  median {b['median_hu']:6.1f}  SD {b['sd_hu']:5.1f}  ROI {b['roi_voxels']} voxels"
                     if not b["excluded"] else "excluded: " + b["exclusion"]))

        # Bodies all along the spine: from the upper thorax to the FOV's bottom, no gap wider than
        # a disc between neighbours.
        centres = [b["centre_z_mm"] for b in bodies]
        assert centres == sorted(centres, reverse=True), "top to bottom"
        assert len(bodies) >= 12, len(bodies)
        assert centres[0] - centres[-1] > 250, (centres[0], centres[-1])
        for upper, lower in zip(bodies, bodies[1:]):
            gap = (upper["centre_z_mm"] - upper["height_mm"] / 2) - (lower["centre_z_mm"] + lower["height_mm"] / 2)
            assert gap <= 12, (upper, lower)
        # Levels: contiguous names in order, counted from the lowest rib-bearing vertebra.
        named = [b["level"] for b in bodies if b["level"]]
        assert named, "levels named"
        first = LEVELS.index(named[0])
        assert named == LEVELS[first:first + len(named)], named
        rib_bearing = [b["ribs"]["left"] or b["ribs"]["right"] for b in bodies]
        t12 = [b["level"] for b in bodies].index("T12")
        assert rib_bearing[t12] and not rib_bearing[t12 + 1], rib_bearing
        assert "lowest rib-bearing vertebra (T12)" in bodies[t12]["level_method"], bodies[t12]
        # The key level and the figures in the adult range.
        assert m["key"]["level"] in ("L1", "T12", "L2"), m["key"]
        assert m["key"]["triage"] in ("osteoporosis likely", "DXA suggested", "osteoporosis unlikely")
        for b in bodies:
            if not b["excluded"]:
                assert 50 < b["mean_hu"] < 400 and b["roi_voxels"] > 100, b
        assert m["acquisition"] == {"kvp": 120.0, "contrast": False}, m["acquisition"]

        # Independently: the ROI voxels in dcm2niix's image of the series.
        image_nii = dcm2niix(folder, os.path.join(workdir, kernel + "-dcm2niix"))
        labels_nii = nibabel.load(os.path.join(out, "labels.nii.gz"))
        assert image_nii.shape == labels_nii.shape
        assert numpy.allclose(image_nii.affine, labels_nii.affine, atol=1e-3)
        image = image_nii.get_fdata()
        labels = numpy.asarray(labels_nii.dataobj).astype(int)
        spacing = image_nii.header.get_zooms()
        reference = dcm2niix(KERNELS["standard"], os.path.join(workdir, "reference-dcm2niix")).get_fdata()
        for index, b in enumerate(bodies):
            roi = labels == 2 * index + 2
            if b["excluded"]:
                assert not roi.any(), b
                continue
            assert int(roi.sum()) == b["roi_voxels"], (b["level"], int(roi.sum()), b["roi_voxels"])
            values = image[roi]
            assert abs(values.mean() - b["mean_hu"]) < 0.06, (b["level"], values.mean(), b["mean_hu"])
            # No air or lung (about -800 HU), no metal, even with the sharp kernel's noise.
            assert -500 < values.min() and values.max() < 1500, (b["level"], values.min(), values.max())
            # The ROI inside its body's label, and cortical bone around every voxel (the standard
            # kernel's image: the sharp kernel's noise makes soft tissue cross 250 HU at random).
            body = (labels == 2 * index + 1) | roi
            xs, ys, zs = numpy.nonzero(roi)
            enclosed = 0
            for x, y, z in zip(xs, ys, zs):
                assert body[x - 2:x + 3, y - 2:y + 3, z].all(), (b["level"], x, y, z)
                # Marrow (fatty marrow reads below 0 HU) to bone: no air, lung or metal.
                assert -150 < reference[x, y, z] < 1000, (b["level"], reference[x, y, z])
                enclosed += surrounded_by_bone(reference, x, y, z, spacing)
            # Enclosure is judged on the standard kernel's image (the sharp kernel's noise crosses
            # any threshold at random), for the ROIs found on either kernel: at least 85 % (the
            # processor excludes a level where more than a tenth of its ROI is not enclosed, judged
            # on its own smoothed copy of the kernel it measured).
            assert enclosed >= (0.85 if kernel == "standard" else 0.7) * len(xs), (b["level"], enclosed, len(xs))
            surrounded[kernel].append(enclosed / len(xs))

    print("share of ROI voxels enclosed by bone, per measured level:", surrounded)
    # The two kernels agree on the bodies and levels; the key figure within 15 HU.
    standard, lung = results["standard"], results["lung"]
    assert [b["level"] for b in standard["bodies"]] == [b["level"] for b in lung["bodies"]]
    for a, b in zip(standard["bodies"], lung["bodies"]):
        assert abs(a["centre_z_mm"] - b["centre_z_mm"]) <= 5, (a, b)
    assert abs(standard["key"]["mean_hu"] - lung["key"]["mean_hu"]) < 15, (standard["key"], lung["key"])


def test_refusals_name_the_reason(cli_path, workdir):
    thick = process(cli_path, KERNELS["standard"], os.path.join(workdir, "thick"), "max_slice_mm=4")
    assert thick.returncode == 2 and "slices are 5.0 mm apart, more than the 4.0 mm accepted (max_slice_mm)" in thick.stderr, thick.stderr
    mr = process(cli_path, BRAIN_MR, os.path.join(workdir, "mr"))
    assert mr.returncode == 2 and "no CT series" in mr.stderr, mr.stderr
    head = process(cli_path, HEAD_CT, os.path.join(workdir, "head"))
    assert head.returncode == 2 and "no spinal column found in the field of view" in head.stderr, head.stderr
    bands = process(cli_path, KERNELS["standard"], os.path.join(workdir, "bands"), "likely_hu=170", "unlikely_hu=150")
    assert bands.returncode == 2 and "likely_hu (170) is above unlikely_hu (150)" in bands.stderr, bands.stderr
    # A contrast-enhanced series is measured, and says so beside the figure.
    contrast = os.path.join(workdir, "contrast")
    os.makedirs(contrast)
    for path in glob.glob(os.path.join(KERNELS["standard"], "*")):
        try:
            ds = pydicom.dcmread(path)
        except pydicom.errors.InvalidDicomError:
            continue
        ds.ContrastBolusAgent = "IODINATED"
        ds.save_as(os.path.join(contrast, os.path.basename(path)))
    out = os.path.join(workdir, "contrast-out")
    result = process(cli_path, contrast, out)
    assert result.returncode == 0, result.stderr
    with open(os.path.join(out, "measurements.json")) as f:
        assert json.load(f)["measurements"]["acquisition"]["contrast"] is True
    text = " ".join(run(["pdftotext", os.path.join(out, "report.pdf"), "-"]).stdout.split())
    assert "given (ContrastBolusAgent recorded): the bands were set without contrast" in text, text


def test_a_rule_runs_bone_density_and_its_results_pass_the_validators(orthanc_factory, job_db, workdir):
    orthanc = orthanc_factory({"Database": job_db[1], "Workers": 1}).start()
    orthanc.put("/procnode/rules", {"rules": [{"id": "opportunistic-bone", "match": {"attribute": "Modality", "equals": "CT"},
                                               "action": {"pipeline": "bone-density"}}]})
    send_dicom(orthanc, [CHEST_CT], calling_aet="CT01")
    [job] = wait_jobs_finished(orthanc, 1)
    assert job["state"] == "done", job["error"]
    m = job["result"]["measurements"]
    series = {s["MainDicomTags"]["Modality"]: s for s in result_series(orthanc, job["study"])}
    assert sorted(series) == ["DOC", "SEG", "SR"], sorted(series)
    paths = {kind: save(orthanc, series[kind]["Instances"][0], os.path.join(workdir, f"bone-{kind}.dcm")) for kind in series}
    for kind, path in paths.items():
        assert dciodvfy_errors(path) == [], kind
    pixelmed = pixelmed_sr_report(paths["SR"])
    assert "Found Root Template TID_1500" in pixelmed and "Root Template Validation Complete" in pixelmed, pixelmed
    assert not [line for line in pixelmed.splitlines() if line.startswith("Error")], pixelmed

    measured = [b for b in m["bodies"] if not b["excluded"]]
    read = dcmjs_read(paths["SEG"], paths["SR"])
    labels = {s["label"]: s for s in read["seg"]["segments"]}
    for b in measured:
        roi = labels[f"{b['level']} trabecular ROI"]
        assert roi["pixels"] == b["roi_voxels"] and roi["type"] == f"{b['level']} vertebra", roi
        assert f"{b['level']} body" in labels
    # One SR group per measured level, with its mean, median and SD in HU and its ROI's size.
    groups = {g["tracking"]: g for g in read["sr"]["groups"]}
    assert sorted(groups) == sorted(f"{b['level']} trabecular ROI" for b in measured), sorted(groups)
    for b in measured:
        values = groups[f"{b['level']} trabecular ROI"]["measurements"]
        hu = sorted(x["value"] for x in values if x["unit"] == "[hnsf'U]")
        assert numpy.allclose(hu, sorted([b["mean_hu"], b["median_hu"], b["sd_hu"]]), atol=0.051), (b, values)
        assert {x["unit"] for x in values} == {"[hnsf'U]", "mL", "{voxels}"}
    sr = pydicom.dcmread(paths["SR"])
    sites = set()
    for item in sr.ContentSequence:
        for sub in getattr(item, "ContentSequence", []):
            for leaf in getattr(sub, "ContentSequence", []):
                if "ConceptNameCodeSequence" in leaf and leaf.ConceptNameCodeSequence[0].CodeValue == "363698007":  # finding site
                    sites.add(leaf.ConceptCodeSequence[0].CodeValue)
    assert VERTEBRA_CODES[m["key"]["level"]] in sites, sites

    # The report: the key figure, its band, the table and the method's limits.
    ds = pydicom.dcmread(paths["DOC"])
    pdf = os.path.join(workdir, "bone-report.pdf")
    with open(pdf, "wb") as f:
        f.write(ds.EncapsulatedDocument[:int(ds.EncapsulatedDocumentLength)])
    text = run(["pdftotext", "-layout", pdf, "-"]).stdout
    for heading in ("Key images", "Key figure", "Per level", "Method and limits"):
        assert heading in text, heading
    assert m["key"]["triage"] in text and "not a diagnosis" in text and "120 kV" in text
    assert "sagittal, anterior on the left" in text and f"axial through the {m['key']['level']} ROI" in text
    assert orthanc.alive()
