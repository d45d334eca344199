#!/bin/sh
# volume-above: an external tool for procnode written in plain shell, with one Python line to
# count voxels. Reads its parameter from $PROCNODE_SETTINGS, writes measurements.json and
# report.json into $PROCNODE_OUTPUT (the contract: README.md, "External tools").
set -eu

threshold=$(python3 -c 'import json, os; print(json.load(open(os.environ["PROCNODE_SETTINGS"]))["parameters"]["threshold"])')
echo "progress: 0.1 counting voxels above $threshold"

# count, volume (mL), share (%), total voxels: one line, into the private /tmp
python3 - "$threshold" > /tmp/counts <<'PY'
import os, sys
import nibabel, numpy
image = nibabel.load(os.environ["PROCNODE_IMAGE"])
data = numpy.asarray(image.dataobj, dtype=numpy.float32)
above = int((data > float(sys.argv[1])).sum())
voxel_ml = abs(float(numpy.linalg.det(image.affine[:3, :3]))) / 1000.0
print(above, round(above * voxel_ml, 3), round(100.0 * above / data.size, 4), data.size)
PY
read -r count volume share total < /tmp/counts
echo "progress: 0.8 writing"

cat > "$PROCNODE_OUTPUT/measurements.json" <<JSON
{"measurements": [
  {"name": "Volume above threshold", "value": $volume, "unit": "mL"},
  {"name": "Share above threshold", "value": $share, "unit": "%"},
  {"name": "Voxels above threshold", "value": $count, "unit": "1"},
  {"name": "Threshold", "value": $threshold, "unit": "1"}
]}
JSON

cat > "$PROCNODE_OUTPUT/report.json" <<JSON
{"sections": [{
  "heading": "Volume above $threshold",
  "paragraph": "Voxels strictly above the threshold, counted over the whole series.",
  "rows": [["Voxels above", "$count of $total"], ["Volume above", "$volume mL"], ["Share", "$share %"]]
}]}
JSON
echo "progress: 1 done"
