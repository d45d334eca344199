"""radiomics end to end (issue 16, first part): the IBSI CT phantom as a scanner and a planning
system send it (CT series + RTSTRUCT), through `procnode process radiomics` with each of IBSI's
reference configurations, judged against IBSI's consensus values; a NIfTI mask from another tool
gives the same region; bad inputs are refused with the reason; a rule runs it in Orthanc and the
CSV is downloadable from the job."""
import csv
import glob
import io
import json
import os
import shutil

from conftest import CHEST_CT, SHARED_DATA
from helpers import dciodvfy_errors, dcmjs_read, pixelmed_sr_report, result_series, run, save, wait_jobs_finished
from orthanc import send_dicom

IBSI = os.path.join(SHARED_DATA, "ibsi")
CT_DICOM = os.path.join(IBSI, "ibsi_1_ct_radiomics_phantom", "dicom")
CT_MASK = os.path.join(IBSI, "ibsi_1_ct_radiomics_phantom", "nifti", "mask", "mask.nii.gz")
SEGMENTATIONS = os.path.join(SHARED_DATA, "seg-sr-dcmqi", "segmentations")
IMPLEMENTED = ("morph", "loc", "stat", "ih", "ivh", "cm", "rlm", "szm", "dzm", "ngt", "ngl")


def half_last_digit(text):
    """Half a unit of the last significant digit as written (an integer's trailing zeros are not)."""
    mantissa, _, exponent = text.lower().partition("e")
    exponent = int(exponent or 0)
    if "." in mantissa:
        return 0.5 * 10 ** (exponent - len(mantissa.split(".")[1]))
    if not mantissa.strip("-0"):
        return 1e-9
    zeros = len(mantissa) - len(mantissa.rstrip("0"))
    return 0.5 * 10 ** (exponent + zeros)


def references(configuration):
    with open(os.path.join(IBSI, "reference_values", f"ibsi_1_reference_values_config_{configuration}.csv"), encoding="utf-8-sig") as f:
        for row in csv.DictReader(f):
            tag = row["tag"]
            # every feature with a reference value; the diagnostics (*_roi, img_*, vox_*) describe the processing
            if row["reference value"] and tag.split("_")[0] in IMPLEMENTED and not tag.endswith("_roi"):
                yield tag, row["reference value"], float(row["tolerance"] or 0)


def process(cli_path, folder, out, *args):
    return run([cli_path, "process", "radiomics", folder, "--out", out] + list(args))


def rows(out):
    with open(os.path.join(out, "radiomics.csv")) as f:
        return list(csv.DictReader(f))


def test_ct_phantom_with_its_rtstruct_meets_ibsi_in_every_configuration(cli_path, workdir):
    met = {}
    for configuration in "ABCDE":
        out = os.path.join(workdir, configuration)
        result = process(cli_path, CT_DICOM, out, "--param", f"configuration={configuration}")
        assert result.returncode == 0, result.stderr
        [row] = rows(out)
        assert row["region"] == "GTV-1" and row["source"] == "RTSTRUCT"
        misses = []
        count = 0
        for tag, value, tolerance in references(configuration):
            count += 1
            allowed = tolerance + half_last_digit(value) + 1e-12
            if row.get(tag, "") == "" or abs(float(row[tag]) - float(value)) > allowed:
                misses.append((tag, row.get(tag), value, allowed))
        assert not misses, misses[:10]
        met[configuration] = count
        with open(os.path.join(out, "measurements.json")) as f:
            m = json.load(f)["measurements"]
        assert m["regions"][0]["voxels"] == 125256
        text = " ".join(run(["pdftotext", os.path.join(out, "report.pdf"), "-"]).stdout.split())
        assert "Main features" in text and "GTV-1" in text and f"configuration {configuration}" in text
    print("\nIBSI references met per configuration:", met)
    assert met == {"A": 346, "B": 346, "C": 210, "D": 210, "E": 210}


def test_a_nifti_mask_from_another_tool_gives_the_rtstruct_region(cli_path, workdir):
    from_mask = os.path.join(workdir, "mask")
    result = process(cli_path, os.path.join(CT_DICOM, "image"), from_mask, "--mask", CT_MASK, "--param", "configuration=C")
    assert result.returncode == 0, result.stderr
    from_rtstruct = os.path.join(workdir, "rtstruct")
    assert process(cli_path, CT_DICOM, from_rtstruct, "--param", "configuration=C").returncode == 0
    [a], [b] = rows(from_mask), rows(from_rtstruct)
    assert a["region"] == "label 1" and a["source"] == "NIfTI mask"
    features = [k for k in a if k not in ("region", "source")]
    assert len(features) > 400
    assert all(a[k] == b[k] for k in features), [k for k in features if a[k] != b[k]][:5]


def test_bad_inputs_are_refused_with_the_reason(cli_path, workdir):
    no_roi = process(cli_path, CHEST_CT, os.path.join(workdir, "no-roi"))
    assert no_roi.returncode == 2 and "holds no region of interest" in no_roi.stderr, no_roi.stderr
    wrong = process(cli_path, os.path.join(CT_DICOM, "image"), os.path.join(workdir, "wrong"),
                    "--mask", os.path.join(IBSI, "ibsi_1_digital_phantom", "nifti", "mask", "mask.nii.gz"))
    assert wrong.returncode == 2 and "not on the series' voxel grid" in wrong.stderr, wrong.stderr
    named = process(cli_path, CT_DICOM, os.path.join(workdir, "named"), "--param", "roi=GTV-2")
    assert named.returncode == 2 and 'no region is named "GTV-2"' in named.stderr, named.stderr
    bad = process(cli_path, CT_DICOM, os.path.join(workdir, "bad"), "--param", "range=400,-500")
    assert bad.returncode == 2 and "range must be" in bad.stderr, bad.stderr
    # A region whose intensities are all outside the re-segmentation range: named, not NaN.
    empty = process(cli_path, CT_DICOM, os.path.join(workdir, "empty"), "--param", "range=3000,4000")
    assert empty.returncode == 2 and 'region "GTV-1" (RTSTRUCT)' in empty.stderr and "no voxel" in empty.stderr, empty.stderr
    # A one-voxel region: features without a pair or a run are empty cells, never NaN.
    import nibabel
    import numpy
    image = nibabel.load(CT_MASK)
    one = numpy.zeros(image.shape, dtype=numpy.uint8)
    one[100, 100, 30] = 1
    path = os.path.join(workdir, "one.nii.gz")
    nibabel.save(nibabel.Nifti1Image(one, image.affine), path)
    out = os.path.join(workdir, "one")
    result = process(cli_path, os.path.join(CT_DICOM, "image"), out, "--mask", path)
    assert result.returncode == 0, result.stderr
    [row] = rows(out)
    assert row["cm_joint_max_3D_avg"] == "" and row["stat_mean"] != ""
    assert "nan" not in open(os.path.join(out, "radiomics.csv")).read().lower()
    with open(os.path.join(out, "measurements.json")) as f:
        undefined = json.load(f)["measurements"]["regions"][0]["undefined"]
    assert "cm_joint_max_3D_avg" in undefined and undefined["cm_joint_max_3D_avg"]


def test_a_rule_runs_radiomics_on_a_study_with_its_rtstruct(orthanc_factory, job_db, workdir):
    work = os.path.join(workdir, "work")  # where jobs keep their files (the CSV)
    os.makedirs(work)
    orthanc = orthanc_factory({"Database": job_db[1], "Workers": 1, "WorkDirectory": work}).start()
    orthanc.put("/procnode/rules", {"rules": [{"id": "radiomics", "match": {"attribute": "Modality", "equals": "CT"},
                                               "action": {"pipeline": "radiomics", "parameters": {"configuration": "C"}}}]})
    send_dicom(orthanc, sorted(glob.glob(os.path.join(CT_DICOM, "*", "*.dcm"))), calling_aet="PLANNING")
    [job] = wait_jobs_finished(orthanc, 1, timeout=300)
    assert job["state"] == "done", job["error"]
    [region] = job["result"]["measurements"]["regions"]
    assert region["name"] == "GTV-1" and region["voxels"] == 125256
    table = orthanc.get_raw(f"/procnode/jobs/{job['id']}/files/radiomics.csv").decode()
    [row] = list(csv.DictReader(io.StringIO(table)))
    for tag, value, tolerance in references("C"):
        assert abs(float(row[tag]) - float(value)) <= tolerance + half_last_digit(value) + 1e-12, (tag, row[tag], value)
    assert sorted(r["kind"] for r in job["result"]["results"]) == ["encapsulated-pdf", "seg", "sr"], job["result"]["results"]
    assert orthanc.alive()


def sr_groups(path):
    """{tracking identifier: {concept meaning: value}} of a TID 1500 SR, read with pydicom."""
    import pydicom
    groups = {}
    for item in pydicom.dcmread(path).ContentSequence:
        if item.ConceptNameCodeSequence[0].CodeValue != "126010":  # Imaging Measurements
            continue
        for group in item.ContentSequence:
            tracking, values = None, {}
            for leaf in group.ContentSequence:
                code = leaf.ConceptNameCodeSequence[0]
                if code.CodeValue == "112039":  # Tracking Identifier
                    tracking = leaf.TextValue
                elif leaf.ValueType == "NUM":
                    assert code.CodingSchemeDesignator == "99PROCNODE" and len(code.CodeValue) <= 16, code
                    assert code.CodeMeaning not in values, code.CodeMeaning
                    values[code.CodeMeaning] = (float(leaf.MeasuredValueSequence[0].NumericValue), code.CodeValue)
            groups[tracking] = values
    return groups


def test_a_rule_runs_radiomics_on_the_segments_of_a_seg_and_writes_seg_sr_csv_and_pdf(orthanc_factory, job_db, workdir, cli_path):
    """A CT study with two SEGs (one BINARY liver; five partly overlapping segments): every segment
    is a region; the SR holds every feature of each, equal to the CSV's; SEG and SR pass dciodvfy,
    dcmjs reads the SEG's segments whole (overlaps kept), PixelMed's TID 1500 validator is clean."""
    work = os.path.join(workdir, "work")
    os.makedirs(work)
    orthanc = orthanc_factory({"Database": job_db[1], "Workers": 1, "WorkDirectory": work}).start()
    orthanc.put("/procnode/rules", {"rules": [{"id": "radiomics", "match": {"attribute": "Modality", "equals": "CT"},
                                               "action": {"pipeline": "radiomics"}}]})
    files = sorted(glob.glob(os.path.join(SEGMENTATIONS, "ct-3slice", "*.dcm")))
    send_dicom(orthanc, files + [os.path.join(SEGMENTATIONS, "liver.dcm"), os.path.join(SEGMENTATIONS, "partial_overlaps.dcm")],
               calling_aet="WORKSTATION")
    [job] = wait_jobs_finished(orthanc, 1, timeout=300)
    assert job["state"] == "done", job["error"]
    regions = {r["name"]: r for r in job["result"]["measurements"]["regions"]}
    assert sorted(regions) == ["segment 1: GREEN", "segment 1: Liver", "segment 2: ORANGE", "segment 3: PURPLE",
                               "segment 4: LIGHT_BLUE", "segment 5: DARK_BLUE"], sorted(regions)
    assert regions["segment 1: Liver"]["voxels"] == 107098  # dcmqi's own label map of the same SEG (unit test)
    table = list(csv.DictReader(io.StringIO(orthanc.get_raw(f"/procnode/jobs/{job['id']}/files/radiomics.csv").decode())))
    ours = [s for s in result_series(orthanc, job["study"])]
    series = {s["MainDicomTags"]["Modality"]: s for s in ours}
    assert sorted(series) == ["DOC", "SEG", "SR"], sorted(series)
    paths = {kind: save(orthanc, series[kind]["Instances"][0], os.path.join(workdir, f"radiomics-{kind}.dcm")) for kind in series}
    for kind in ("SEG", "SR"):
        assert dciodvfy_errors(paths[kind]) == [], kind
    # The SR: one group per region, every feature of the CSV with its value.
    groups = sr_groups(paths["SR"])
    assert sorted(groups) == sorted(regions)
    codes = {}
    for row in table:
        group = groups[row["region"]]
        features = {k: float(v) for k, v in row.items() if k not in ("region", "source") and v != ""}
        assert len(features) > 450 and set(group) == set(features), set(group) ^ set(features)
        for tag, value in features.items():
            assert abs(group[tag][0] - value) <= 1e-8 * max(1.0, abs(value)), (row["region"], tag, group[tag], value)
            codes.setdefault(group[tag][1], set()).add(tag)
    assert all(len(tags) == 1 for tags in codes.values())  # one code per feature
    # The SEG, read as a viewer does: each region whole, overlaps kept.
    read = dcmjs_read(paths["SEG"], paths["SR"])
    pixels = {s["label"]: s["pixels"] for s in read["seg"]["segments"]}
    assert pixels == {name: r["voxels"] for name, r in regions.items()}, pixels
    # A segment chosen by its label, a few families: PixelMed's TID 1500 validator (it cannot hold
    # the 480-feature SR in memory) judges the same writer's SR.
    folder = os.path.join(workdir, "seg-study")
    os.makedirs(folder)
    for path in files + [os.path.join(SEGMENTATIONS, "liver.dcm")]:
        os.symlink(path, os.path.join(folder, os.path.basename(path)))
    out = os.path.join(workdir, "liver")
    result = process(cli_path, folder, out, "--param", "roi=Liver", "--param", "families=morph,stat")
    assert result.returncode == 0, result.stderr
    [row] = rows(out)
    assert row["region"] == "segment 1: Liver" and "stat_mean" in row and "cm_contrast_3D_avg" not in row
    pixelmed = pixelmed_sr_report(os.path.join(out, "sr.dcm"))
    assert "Found Root Template TID_1500" in pixelmed and "Root Template Validation Complete" in pixelmed, pixelmed
    assert not [line for line in pixelmed.splitlines() if line.startswith("Error")], pixelmed
    assert orthanc.alive()


def test_a_rule_chains_lung_emphysema_to_radiomics(orthanc_factory, job_db, workdir, cli_path):
    """radiomics with regions_from=lung-emphysema: the lungs and the emphysema that lung-emphysema
    finds are the regions, each the very voxels lung-emphysema measured (its own run, on the
    command line, is the judge: voxel counts, volume and mean density)."""
    orthanc = orthanc_factory({"Database": job_db[1], "Workers": 1}).start()
    orthanc.put("/procnode/rules", {"rules": [{"id": "lung-radiomics", "match": {"attribute": "Modality", "equals": "CT"},
                                               "action": {"pipeline": "radiomics", "results": ["pdf"],
                                                          "parameters": {"regions_from": "lung-emphysema",
                                                                         "regions_from_parameters": "{\"emphysema_threshold_hu\": -960}",
                                                                         "families": "morph,stat"}}}]})
    send_dicom(orthanc, [CHEST_CT], calling_aet="CT01")
    [job] = wait_jobs_finished(orthanc, 1, timeout=300)
    assert job["state"] == "done", job["error"]
    regions = {r["name"]: r for r in job["result"]["measurements"]["regions"]}
    assert sorted(regions) == ["Emphysema", "Left lung", "Right lung"], sorted(regions)
    assert {r["source"] for r in regions.values()} == {"lung-emphysema"}
    out = os.path.join(workdir, "lung")
    result = run([cli_path, "process", "lung-emphysema", CHEST_CT, "--out", out, "--param", "emphysema_threshold_hu=-960"])
    assert result.returncode == 0, result.stderr
    with open(os.path.join(out, "measurements.json")) as f:
        lung = json.load(f)["measurements"]
    for name, key in (("Right lung", "right_lung"), ("Left lung", "left_lung")):
        features = regions[name]["features"]
        assert regions[name]["voxels"] == lung[key]["voxels"], (name, regions[name]["voxels"], lung[key]["voxels"])
        assert abs(features["morph_vol_approx"] / 1000 - lung[key]["volume_ml"]) < 1e-6 * lung[key]["volume_ml"]
        assert abs(features["stat_mean"] - lung[key]["mean_lung_density_hu"]) < 1e-6, (name, features["stat_mean"])
        assert "cm_contrast_3D_avg" not in features  # families=morph,stat
    assert regions["Emphysema"]["voxels"] == lung["total"]["emphysema_voxels"]
    # A processor that is not there, and bad chain parameters: refused with the reason.
    bad = run([cli_path, "process", "radiomics", CHEST_CT, "--out", os.path.join(workdir, "bad"), "--param", "regions_from=no-such"])
    assert bad.returncode == 2 and "no-such" in bad.stderr, bad.stderr
    bad = run([cli_path, "process", "radiomics", CHEST_CT, "--out", os.path.join(workdir, "bad2"), "--param", "regions_from=lung-emphysema",
               "--param", "regions_from_parameters=[1]"])
    assert bad.returncode == 2 and "regions_from_parameters must be a JSON object" in bad.stderr, bad.stderr
    assert orthanc.alive()


def link_files(source, target):
    """`target` holding a symbolic link to every file under `source` (the shared data stays where it is)."""
    for root, _, names in os.walk(source):
        for name in names:
            folder = os.path.join(target, os.path.relpath(root, source))
            os.makedirs(folder, exist_ok=True)
            os.symlink(os.path.join(root, name), os.path.join(folder, name))


def test_batch_extraction_is_one_csv_resumable_and_names_each_failure(cli_path, workdir):
    """procnode radiomics over a folder of cases: an RTSTRUCT case (the IBSI phantom), a SEG case,
    a mask case (--masks) and a case without any region; one CSV whose rows equal `procnode process`'s;
    the failure named with its reason and exit 2; a second run skips what is done (a torn journal
    line from a crash is ignored) and retries the failure; other settings are refused."""
    cases, masks = os.path.join(workdir, "cases"), os.path.join(workdir, "masks")
    link_files(CT_DICOM, os.path.join(cases, "ibsi"))
    os.makedirs(os.path.join(cases, "liver"))
    for path in glob.glob(os.path.join(SEGMENTATIONS, "ct-3slice", "*.dcm")) + [os.path.join(SEGMENTATIONS, "liver.dcm")]:
        os.symlink(path, os.path.join(cases, "liver", os.path.basename(path)))
    link_files(os.path.join(CT_DICOM, "image"), os.path.join(cases, "masked"))
    os.makedirs(masks)
    shutil.copy(CT_MASK, os.path.join(masks, "masked.nii.gz"))
    link_files(CHEST_CT, os.path.join(cases, "no-region"))
    out = os.path.join(workdir, "features.csv")
    settings = ["--param", "configuration=C", "--param", "families=morph,stat,cm"]
    first = run([cli_path, "radiomics", cases, "--out", out, "--masks", masks, "--jobs", "2"] + settings)
    assert first.returncode == 2, first.stderr
    assert "1 case(s) failed" in first.stderr and os.path.join(cases, "no-region") + ": " in first.stderr, first.stderr
    assert "no region of interest: no RTSTRUCT or SEG in the case, and no mask no-region.nii.gz" in first.stderr
    with open(out) as f:
        table = list(csv.DictReader(f))
    assert [(r["case"].split("/")[-1], r["region"], r["source"]) for r in table] == [
        ("ibsi", "GTV-1", "RTSTRUCT"), ("liver", "segment 1: Liver", "SEG"), ("masked", "label 1", "NIfTI mask")]
    assert table[0]["voxels"] == table[2]["voxels"] == "125256" and table[1]["voxels"] == "107098"
    # The same features as procnode process, to the CSV's ten digits; the RTSTRUCT and the mask agree.
    single = os.path.join(workdir, "single")
    assert process(cli_path, CT_DICOM, single, *settings).returncode == 0
    [reference] = rows(single)
    features = [k for k in reference if k not in ("region", "source")]
    assert len(features) > 100 and set(features) == set(table[0]) - {"case", "series", "region", "source", "voxels"}
    assert all(table[0][k] == reference[k] == table[2][k] for k in features), [k for k in features if table[0][k] != reference[k]][:5]
    for tag, value, tolerance in references("C"):
        if tag in table[0]:
            assert abs(float(table[0][tag]) - float(value)) <= tolerance + half_last_digit(value) + 1e-12, tag
    # A crash while writing left half a line; the next run skips the three done cases and retries the failure.
    with open(out + ".journal", "a") as f:
        f.write('{"case": "/half')
    again = run([cli_path, "radiomics", cases, "--out", out, "--masks", masks] + settings)
    assert again.returncode == 2 and "4 case(s), 3 already done" in again.stderr, again.stderr
    with open(out) as f:
        assert len(list(csv.DictReader(f))) == 3
    # Other settings with the same journal: refused before any work.
    other = run([cli_path, "radiomics", cases, "--out", out, "--param", "configuration=A"])
    assert other.returncode == 2 and "was made with other settings" in other.stderr, other.stderr
    # The case without a region taken out: the run completes.
    shutil.rmtree(os.path.join(cases, "no-region"))
    done = run([cli_path, "radiomics", cases, "--out", out, "--masks", masks] + settings)
    assert done.returncode == 0, done.stderr
    bad = run([cli_path, "radiomics", os.path.join(workdir, "nowhere"), "--out", os.path.join(workdir, "x.csv")])
    assert bad.returncode == 2 and "not a folder" in bad.stderr, bad.stderr
