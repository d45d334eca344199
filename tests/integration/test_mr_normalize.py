"""mr-normalize end to end (issue 18) on the shared brain MR: N4 bias-field correction with ITK,
normalization, the derived image series written back into the study beside the source, and the
report's key images as Secondary Capture for PACS that cannot show SEG. Judged independently: the
white matter's coefficient of variation on a mask taken from both images' histograms, the z-score's
defining properties on an Otsu foreground computed here, the derived DICOM read by pydicom and
placed by its own geometry against the processor's NIfTI, dciodvfy, dcentvfy against the source
files, dcmjs, and Orthanc's own renderer."""
import glob
import json
import os
import shutil

import nibabel
import numpy
import pydicom

from conftest import CHEST_CT, SHARED_DATA
from helpers import dciodvfy_errors, dcmjs_read_images, result_series, run, save, wait_jobs_finished
from orthanc import send_dicom

BRAIN_MR = os.path.join(SHARED_DATA, "mr-brain-sag-mprage")


def process(cli_path, folder, out, *params):
    args = [cli_path, "process", "mr-normalize", folder, "--out", out]
    for p in params:
        args += ["--param", p]
    return run(args)


def canonical(path):
    image = nibabel.as_closest_canonical(nibabel.load(path))
    return numpy.asarray(image.dataobj, dtype=numpy.float64), image.affine


def brightest_peak(image, foreground):
    """The brightest tissue peak of the smoothed histogram of `image` over `foreground` (white matter on T1)."""
    foreground = image[foreground]
    counts, edges = numpy.histogram(foreground, bins=400, range=(numpy.percentile(foreground, 1), numpy.percentile(foreground, 99)))
    kernel = numpy.exp(-0.5 * (numpy.arange(-24, 25) / 8.0) ** 2)
    smooth = numpy.convolve(counts, kernel / kernel.sum(), mode="same")
    peaks = [i for i in range(1, len(smooth) - 1)
             if smooth[i] >= smooth[i - 1] and smooth[i] > smooth[i + 1] and smooth[i] >= 0.1 * smooth.max()]
    return (edges[peaks[-1]] + edges[peaks[-1] + 1]) / 2


def white_matter_window(image):
    """Voxels within 15 % of the brightest tissue peak of the smoothed foreground histogram."""
    mode = brightest_peak(image, image > 0.1 * numpy.percentile(image, 99))
    return (image > 0.85 * mode) & (image < 1.15 * mode)


def otsu(values):
    counts, edges = numpy.histogram(values, bins=256)
    centres = (edges[:-1] + edges[1:]) / 2
    best, threshold = -1, centres[0]
    for t in range(1, 256):
        w0, w1 = counts[:t].sum(), counts[t:].sum()
        if w0 == 0 or w1 == 0:
            continue
        m0 = (counts[:t] * centres[:t]).sum() / w0
        m1 = (counts[t:] * centres[t:]).sum() / w1
        between = w0 * w1 * (m0 - m1) ** 2
        if between > best:
            best, threshold = between, edges[t]
    return threshold


def test_n4_lowers_the_white_matter_cv_and_the_normalizations_hold_their_definitions(cli_path, workdir):
    raw_path = os.path.join(workdir, "input.nii")
    assert run([cli_path, "convert", BRAIN_MR, raw_path]).returncode == 0
    raw, raw_affine = canonical(raw_path)

    # Bias correction alone (method none): the corrected MR as the derived image.
    out = os.path.join(workdir, "n4")
    result = process(cli_path, BRAIN_MR, out, "method=none", "write_field=true")
    assert result.returncode == 0, result.stderr
    corrected, affine = canonical(os.path.join(out, "derived-normalized.nii.gz"))
    field, _ = canonical(os.path.join(out, "derived-bias-field.nii.gz"))
    assert numpy.allclose(affine, raw_affine, atol=1e-4), "the derived NIfTI is on the source's grid"
    # White matter, from both images' histograms (so the corrected image alone does not pick the
    # voxels its uniformity is judged on): a plausible volume in the middle of the head.
    mask = white_matter_window(corrected) & white_matter_window(raw)
    voxel_ml = numpy.prod(nibabel.load(raw_path).header.get_zooms()[:3]) / 1000
    assert 150 < mask.sum() * voxel_ml < 900, mask.sum() * voxel_ml
    centre = numpy.argwhere(mask).mean(axis=0) / numpy.array(mask.shape)
    assert numpy.all(numpy.abs(centre - 0.5) < 0.2), centre
    cv_raw = raw[mask].std() / raw[mask].mean()
    cv_corrected = corrected[mask].std() / corrected[mask].mean()
    print(f"\nwhite matter CV: input {cv_raw:.4f}, N4-corrected {cv_corrected:.4f} on {mask.sum() * voxel_ml:.0f} mL")
    assert cv_corrected < 0.97 * cv_raw, (cv_raw, cv_corrected)
    # The field is smooth, positive, and the input divided by it is the corrected image.
    head = raw > otsu(raw)
    assert 0.5 < field[head].min() and field[head].max() < 2.0, (field[head].min(), field[head].max())
    assert abs(field[head].mean() - 1) < 0.02
    assert numpy.allclose(corrected[head], raw[head] / field[head], rtol=1e-3, atol=1e-3)
    with open(os.path.join(out, "measurements.json")) as f:
        m = json.load(f)["measurements"]
    assert m["bias_field"]["minimum"] < 1 < m["bias_field"]["maximum"]
    assert m["foreground"]["volume_ml"] > 1000

    # z-score: mean 0 and SD 1 over the foreground (Otsu's, computed here: the processor's also
    # fills holes and keeps the largest part, so a small tolerance).
    out = os.path.join(workdir, "zscore")
    assert process(cli_path, BRAIN_MR, out, "method=zscore").returncode == 0
    z, _ = canonical(os.path.join(out, "derived-normalized.nii.gz"))
    assert abs(z[head].mean()) < 0.1 and abs(z[head].std() - 1) < 0.1, (z[head].mean(), z[head].std())

    # Percentile: the foreground's 1st and 99th percentiles at 0 and 1.
    out = os.path.join(workdir, "percentile")
    assert process(cli_path, BRAIN_MR, out, "method=percentile").returncode == 0
    p, _ = canonical(os.path.join(out, "derived-normalized.nii.gz"))
    low, high = numpy.percentile(p[head], [1, 99])
    assert abs(low) < 0.05 and abs(high - 1) < 0.05, (low, high)

    # WhiteStripe: the white-matter peak (found here, on the result) at 0, in units of the stripe's
    # spread; the grey-matter peak below it.
    out = os.path.join(workdir, "whitestripe")
    assert process(cli_path, BRAIN_MR, out, "method=whitestripe").returncode == 0
    w, _ = canonical(os.path.join(out, "derived-normalized.nii.gz"))
    assert abs(brightest_peak(w, head)) < 1.5, brightest_peak(w, head)
    with open(os.path.join(out, "measurements.json")) as f:
        m = json.load(f)["measurements"]
    assert m["white_matter_cv_after"] < m["white_matter_cv_before"]

    # Nyul: a model trained on the MR and on a rescaled copy of it maps both onto one scale.
    scaled = os.path.join(workdir, "scaled-mr")
    os.makedirs(scaled)
    for path in glob.glob(os.path.join(BRAIN_MR, "*.dcm")):
        ds = pydicom.dcmread(path)
        ds.PixelData = (ds.pixel_array.astype(numpy.float64) * 1.7).clip(0, 65535).astype(ds.pixel_array.dtype).tobytes()
        ds.SeriesInstanceUID = ds.SeriesInstanceUID + ".7"
        ds.SOPInstanceUID = ds.SOPInstanceUID + ".7"
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.save_as(os.path.join(scaled, os.path.basename(path)))
    model = os.path.join(workdir, "nyul.json")
    trained = run([cli_path, "nyul-train", BRAIN_MR, scaled, "--out", model])
    assert trained.returncode == 0, trained.stderr
    with open(model) as f:
        assert json.load(f)["trained_on"] == 2
    standardised = []
    for folder, name in ((BRAIN_MR, "nyul-a"), (scaled, "nyul-b")):
        out = os.path.join(workdir, name)
        result = process(cli_path, folder, out, "method=nyul", f"nyul_model={model}")
        assert result.returncode == 0, result.stderr
        standardised.append(canonical(os.path.join(out, "derived-normalized.nii.gz"))[0])
    a, b = standardised
    assert numpy.allclose(numpy.percentile(a[head], [10, 50, 90]), numpy.percentile(b[head], [10, 50, 90]), atol=2.0)
    missing = process(cli_path, BRAIN_MR, os.path.join(workdir, "nyul-missing"), "method=nyul")
    assert missing.returncode == 2 and "needs nyul_model" in missing.stderr, missing.stderr


def test_refusals_name_the_reason(cli_path, workdir):
    ct = process(cli_path, CHEST_CT, os.path.join(workdir, "ct"))
    assert ct.returncode == 2 and "no MR series" in ct.stderr, ct.stderr
    files = sorted(glob.glob(os.path.join(BRAIN_MR, "*.dcm")))
    for name, count, reason in (("localizer", 1, "the series has 1"), ("short", 8, "the series has 8")):
        folder = os.path.join(workdir, name)
        os.makedirs(folder)
        for path in files[90:90 + count]:
            shutil.copy(path, folder)
        result = process(cli_path, folder, os.path.join(workdir, name + "-out"))
        assert result.returncode == 2 and "needs at least 16 slices" in result.stderr and reason in result.stderr, result.stderr
    bad = process(cli_path, BRAIN_MR, os.path.join(workdir, "bad"), "method=histogram")
    assert bad.returncode == 2 and "method" in bad.stderr, bad.stderr


def test_a_rule_writes_the_derived_series_and_key_images_that_validate_and_show(orthanc_factory, job_db, cli_path, workdir):
    orthanc = orthanc_factory({"Database": job_db[1], "Workers": 1}).start()
    # Rules: unknown result kinds and an SR without its SEG are refused, naming the place.
    for results, message in ((["pdf", "movie"], "unknown result kind \"movie\""), (["sr"], "\"sr\" needs \"seg\"")):
        code, body = orthanc.get_status("/procnode/rules", method="PUT", body={"rules": [
            {"id": "x", "match": {"attribute": "Modality", "equals": "MR"}, "action": {"pipeline": "mr-normalize", "results": results}}]})
        text = json.dumps(body)
        assert code == 400 and message.replace('"', '\\"') in text and "/action/results" in text, (code, body)
    orthanc.put("/procnode/rules", {"rules": [
        {"id": "mr-normalize", "match": {"attribute": "Modality", "equals": "MR"},
         "action": {"pipeline": "mr-normalize", "parameters": {"write_field": True}, "results": ["pdf", "derived"]}},
        {"id": "lung", "match": {"attribute": "Modality", "equals": "CT"},
         "action": {"pipeline": "lung-emphysema", "results": ["pdf", "seg", "sr", "sc"]}}]})
    send_dicom(orthanc, sorted(glob.glob(os.path.join(BRAIN_MR, "*.dcm"))), calling_aet="MR01")
    send_dicom(orthanc, [CHEST_CT], calling_aet="CT01")
    finished = wait_jobs_finished(orthanc, 2, timeout=300)
    by_rule = {j["rule"]["id"]: j for j in finished}
    for job in finished:
        assert job["state"] == "done", job["error"]

    # The derived series: the normalized image and the field, one instance per source slice.
    mr = by_rule["mr-normalize"]
    assert sorted(r["kind"] for r in mr["result"]["results"]) == ["derived", "derived", "encapsulated-pdf"]
    derived = {s["MainDicomTags"]["SeriesDescription"]: s for s in result_series(orthanc, mr["study"])
               if s["MainDicomTags"]["Modality"] == "MR"}
    assert sorted(derived) == ["procnode mr-normalize: N4 bias field", "procnode mr-normalize: N4 normalized zscore"], sorted(derived)
    normalized = derived["procnode mr-normalize: N4 normalized zscore"]
    sources = sorted(glob.glob(os.path.join(BRAIN_MR, "*.dcm")))
    assert len(normalized["Instances"]) == len(sources)
    folder = os.path.join(workdir, "derived")
    os.makedirs(folder)
    paths = [save(orthanc, i, os.path.join(folder, f"{n:04d}.dcm")) for n, i in enumerate(normalized["Instances"])]
    for path in paths[:2] + paths[-2:]:
        assert dciodvfy_errors(path) == [], path
    consistency = run(["dcentvfy"] + sources + paths)
    assert not [l for l in (consistency.stdout + consistency.stderr).splitlines() if l.startswith("Error")], consistency.stdout

    # Geometry and values, read by pydicom: each instance on its source's plane, and its values
    # (stored x slope + intercept) the processor's own NIfTI (run by the CLI) within the rescale step.
    source_by_uid = {pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID: p for p in sources}
    cli_out = os.path.join(workdir, "cli")
    assert process(cli_path, BRAIN_MR, cli_out).returncode == 0
    image = nibabel.load(os.path.join(cli_out, "derived-normalized.nii.gz"))
    volume = numpy.asarray(image.dataobj, dtype=numpy.float64)
    to_voxel = numpy.linalg.inv(image.affine)
    worst = 0.0
    for path in paths[::40]:
        ds = pydicom.dcmread(path)
        assert ds.ImageType[:2] == ["DERIVED", "SECONDARY"] and ds.DerivationCodeSequence[0].CodingSchemeDesignator == "DCM"
        source = pydicom.dcmread(source_by_uid[ds.SourceImageSequence[0].ReferencedSOPInstanceUID], stop_before_pixels=True)
        assert ds.FrameOfReferenceUID == source.FrameOfReferenceUID and ds.StudyInstanceUID == source.StudyInstanceUID
        assert numpy.allclose([float(x) for x in ds.ImagePositionPatient], [float(x) for x in source.ImagePositionPatient], atol=1e-3)
        assert numpy.allclose([float(x) for x in ds.ImageOrientationPatient], [float(x) for x in source.ImageOrientationPatient], atol=1e-5)
        values = ds.pixel_array.astype(numpy.float64) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        position = numpy.array([float(x) for x in ds.ImagePositionPatient])
        row_dir, col_dir = numpy.array([float(x) for x in ds.ImageOrientationPatient[:3]]), numpy.array([float(x) for x in ds.ImageOrientationPatient[3:]])
        dr, dc = (float(x) for x in ds.PixelSpacing)
        r, c = numpy.mgrid[0:ds.Rows, 0:ds.Columns]
        lps = position + r[..., None] * dr * col_dir + c[..., None] * dc * row_dir
        ras = lps * numpy.array([-1, -1, 1])
        ijk = numpy.rint(numpy.einsum("ij,...j->...i", to_voxel[:3, :3], ras) + to_voxel[:3, 3]).astype(int)
        expected = volume[ijk[..., 0], ijk[..., 1], ijk[..., 2]]
        worst = max(worst, numpy.abs(values - expected).max() / float(ds.RescaleSlope))
    assert worst <= 0.5 + 1e-3, f"{worst} rescale steps"

    # The NIfTI of the derived series through the REST route: the processor's values, the source's grid.
    rest_path = os.path.join(workdir, "derived-rest.nii.gz")
    with open(rest_path, "wb") as f:
        f.write(orthanc.get_raw(f"/procnode/series/{normalized['ID']}/nifti"))
    rest, rest_affine = canonical(rest_path)
    cli, cli_affine = canonical(os.path.join(cli_out, "derived-normalized.nii.gz"))
    assert numpy.allclose(rest_affine, cli_affine, atol=1e-3)
    assert numpy.abs(rest - cli).max() <= 0.0005 + 1e-6

    # The key images as Secondary Capture beside the lung results: valid, read by dcmjs, shown by Orthanc.
    lung = by_rule["lung"]
    assert [r["kind"] for r in lung["result"]["results"]] == ["encapsulated-pdf", "seg", "sr", "sc"]
    sc = [s for s in result_series(orthanc, lung["study"]) if s["MainDicomTags"]["SeriesDescription"].endswith("key images")]
    assert len(sc) == 1 and len(sc[0]["Instances"]) == 2, sc
    sc_paths = [save(orthanc, i, os.path.join(workdir, f"sc-{n}.dcm")) for n, i in enumerate(sc[0]["Instances"])]
    for path in sc_paths:
        assert dciodvfy_errors(path) == [], path
        ds = pydicom.dcmread(path)
        assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.7" and ds.PhotometricInterpretation == "RGB"
        assert ds.pixel_array.shape == (ds.Rows, ds.Columns, 3) and ds.pixel_array.std() > 10
    read = dcmjs_read_images(sc_paths + paths[:1])
    assert [r["samplesPerPixel"] for r in read] == [3, 3, 1], read
    assert all(r["pixelBytes"] >= r["rows"] * r["columns"] * r["samplesPerPixel"] * r["bitsAllocated"] // 8 for r in read), read
    assert read[2]["rescaleSlope"] == float(pydicom.dcmread(paths[0]).RescaleSlope)
    for instance in (sc[0]["Instances"][0], normalized["Instances"][len(paths) // 2]):
        png = orthanc.get_raw(f"/instances/{instance}/preview")
        assert png[:8] == b"\x89PNG\r\n\x1a\n", instance
    assert orthanc.alive()
