#!/usr/bin/python3
"""normalize-intensity: an external tool for procnode (and the contract's worked example).

Reads the series from $PROCNODE_IMAGE (NIfTI) and the parameters from $PROCNODE_SETTINGS,
finds the foreground (Otsu's threshold, or every non-zero voxel), normalizes the image within it
(z-score, or percentiles to 0..1), and writes into $PROCNODE_OUTPUT:
  normalized.nii.gz   the normalized image, float32, on the input's grid (a derived image)
  labels.nii.gz       the foreground mask (label 1), with labels.json
  measurements.json   foreground volume, mean, SD and coefficient of variation before and after
  report.json         a section for the PDF report
Progress goes to standard output as "progress: FRACTION STEP"; errors to standard error with a
non-zero exit code.
"""
import json
import os
import sys

import nibabel
import numpy


def progress(fraction, step):
    print(f"progress: {fraction:.2f} {step}", flush=True)


def otsu_threshold(values, bins=256):
    """The threshold that maximises the between-class variance of a histogram (Otsu 1979)."""
    counts, edges = numpy.histogram(values, bins=bins)
    centres = (edges[:-1] + edges[1:]) / 2
    weight_below = numpy.cumsum(counts)
    weight_above = weight_below[-1] - weight_below
    sum_below = numpy.cumsum(counts * centres)
    mean_below = sum_below / numpy.maximum(weight_below, 1)
    mean_above = (sum_below[-1] - sum_below) / numpy.maximum(weight_above, 1)
    between = weight_below * weight_above * (mean_below - mean_above) ** 2
    return float(edges[int(numpy.argmax(between[:-1])) + 1])


def main():
    with open(os.environ["PROCNODE_SETTINGS"]) as f:
        settings = json.load(f)
    p = settings["parameters"]
    out = os.environ["PROCNODE_OUTPUT"]
    progress(0.05, "reading")
    image = nibabel.load(os.environ["PROCNODE_IMAGE"])
    data = numpy.asarray(image.dataobj, dtype=numpy.float32)

    progress(0.2, "foreground")
    if p["foreground"] == "otsu":
        threshold = otsu_threshold(data.ravel())
        mask = data > threshold
    else:
        threshold = 0.0
        mask = data != 0
    if not mask.any():
        print("normalize-intensity: the foreground is empty (no voxel above the threshold)", file=sys.stderr)
        return 3
    foreground = data[mask]
    mean, sd = float(foreground.mean()), float(foreground.std())

    progress(0.5, "normalizing")
    if p["method"] == "zscore":
        if sd == 0:
            print("normalize-intensity: the foreground has no variance", file=sys.stderr)
            return 3
        normalized = (data - mean) / sd
    else:
        low, high = numpy.percentile(foreground, [p["lower_percentile"], p["upper_percentile"]])
        if high <= low:
            print("normalize-intensity: the percentiles are equal", file=sys.stderr)
            return 3
        normalized = (data - low) / (high - low)
    normalized = normalized.astype(numpy.float32)
    after = normalized[mask]
    after_mean, after_sd = float(after.mean()), float(after.std())

    progress(0.7, "writing")
    derived = nibabel.Nifti1Image(normalized, image.affine)
    derived.header.set_xyzt_units("mm", "sec")
    nibabel.save(derived, os.path.join(out, "normalized.nii.gz"))
    nibabel.save(nibabel.Nifti1Image(mask.astype(numpy.uint8), image.affine), os.path.join(out, "labels.nii.gz"))
    with open(os.path.join(out, "labels.json"), "w") as f:
        json.dump({"1": {"name": "Foreground", "code": {"value": "85756007", "scheme": "SCT", "meaning": "Tissue"},
                         "colour": [255, 200, 0]}}, f)

    voxel_ml = float(abs(numpy.linalg.det(image.affine[:3, :3]))) / 1000.0
    unit = "[hnsf'U]" if settings["input"]["modality"] == "CT" else "1"
    cv_before = 100.0 * sd / abs(mean) if mean != 0 else 0.0
    measurements = [
        {"label": 1, "name": "Foreground volume", "value": round(float(mask.sum()) * voxel_ml, 3), "unit": "mL",
         "code": {"value": "118565006", "scheme": "SCT", "meaning": "Volume"}},
        {"label": 1, "name": "Mean before normalization", "value": round(mean, 4), "unit": unit},
        {"label": 1, "name": "SD before normalization", "value": round(sd, 4), "unit": unit},
        {"label": 1, "name": "CV before normalization", "value": round(cv_before, 4), "unit": "%"},
        {"label": 1, "name": "Mean after normalization", "value": round(after_mean, 6), "unit": "1"},
        {"label": 1, "name": "SD after normalization", "value": round(after_sd, 6), "unit": "1"},
        {"name": "Foreground threshold", "value": round(threshold, 4), "unit": unit},
    ]
    with open(os.path.join(out, "measurements.json"), "w") as f:
        json.dump({"measurements": measurements}, f, indent=1)

    method = ("z-score: (x - mean) / SD of the foreground" if p["method"] == "zscore" else
              f"percentiles {p['lower_percentile']:g} and {p['upper_percentile']:g} of the foreground to 0 and 1")
    report = {"sections": [{
        "heading": "Intensity normalization",
        "paragraph": (f"Foreground by {'Otsu threshold' if p['foreground'] == 'otsu' else 'non-zero voxels'}; "
                      f"normalized by {method}. The normalized image is kept with the job as normalized.nii.gz."),
        "rows": [["Foreground voxels", str(int(mask.sum()))],
                 ["Foreground volume", f"{mask.sum() * voxel_ml:.1f} mL"],
                 ["Threshold", f"{threshold:.1f}"]],
        "table": {"header": ["", "Mean", "SD"],
                  "rows": [["Before", f"{mean:.2f}", f"{sd:.2f}"], ["After", f"{after_mean:.4f}", f"{after_sd:.4f}"]]}}]}
    with open(os.path.join(out, "report.json"), "w") as f:
        json.dump(report, f, indent=1)
    progress(1.0, "done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
