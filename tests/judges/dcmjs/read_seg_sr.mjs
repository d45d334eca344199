// dcmjs as a judge: reads a SEG and an SR the way OHIF's loaders start (DicomMessage.readFile +
// naturalizeDataset) and prints what it found as JSON: the SEG's segments with their set-pixel
// counts (from the bit-packed frames) and the SR's measurement groups with their numeric values.
// Usage: node read_seg_sr.mjs SEG.dcm SR.dcm
import { readFileSync } from "node:fs";
import dcmjs from "dcmjs";

const { DicomMessage, DicomMetaDictionary } = dcmjs.data;

function read(path) {
  const bytes = readFileSync(path);
  const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  return DicomMetaDictionary.naturalizeDataset(DicomMessage.readFile(buffer).dict);
}

const asArray = (x) => (x === undefined ? [] : Array.isArray(x) ? x : [x]);

function segmentation(path) {
  const seg = read(path);
  const frames = Number(seg.NumberOfFrames);
  const bitsPerFrame = seg.Rows * seg.Columns;
  const pixels = new Uint8Array(asArray(seg.PixelData)[0]);
  const counts = {};
  asArray(seg.PerFrameFunctionalGroupsSequence).forEach((frame, f) => {
    const number = asArray(frame.SegmentIdentificationSequence)[0].ReferencedSegmentNumber;
    let set = 0;
    for (let bit = f * bitsPerFrame; bit < (f + 1) * bitsPerFrame; ++bit) {
      if (pixels[bit >> 3] & (1 << (bit & 7))) ++set;
    }
    counts[number] = (counts[number] || 0) + set;
  });
  return {
    sopClass: seg.SOPClassUID,
    frames,
    segments: asArray(seg.SegmentSequence).map((s) => ({
      number: s.SegmentNumber,
      label: s.SegmentLabel,
      type: asArray(s.SegmentedPropertyTypeCodeSequence)[0].CodeMeaning,
      algorithm: s.SegmentAlgorithmName,
      pixels: counts[s.SegmentNumber] || 0,
    })),
  };
}

function measurementReport(path) {
  const sr = read(path);
  const groups = [];
  const walk = (items, group) => {
    for (const item of asArray(items)) {
      const name = asArray(item.ConceptNameCodeSequence)[0];
      if (item.ValueType === "CONTAINER" && name && name.CodeValue === "125007") {
        const g = { tracking: null, segment: null, measurements: [] };
        groups.push(g);
        walk(item.ContentSequence, g);
        continue;
      }
      if (group && item.ValueType === "TEXT" && name && name.CodeValue === "112039") group.tracking = item.TextValue;
      if (group && item.ValueType === "IMAGE") {
        const ref = asArray(item.ReferencedSOPSequence)[0];
        group.segment = asArray(ref.ReferencedSegmentNumber)[0];
      }
      if (group && item.ValueType === "NUM") {
        const value = asArray(item.MeasuredValueSequence)[0];
        group.measurements.push({
          concept: name.CodeMeaning,
          value: Number(value.NumericValue),
          unit: asArray(value.MeasurementUnitsCodeSequence)[0].CodeValue,
        });
      }
      if (item.ContentSequence) walk(item.ContentSequence, group);
    }
  };
  walk(sr.ContentSequence, null);
  return { sopClass: sr.SOPClassUID, title: asArray(sr.ConceptNameCodeSequence)[0].CodeMeaning, groups };
}

const [segPath, srPath] = process.argv.slice(2);
console.log(JSON.stringify({ seg: segmentation(segPath), sr: measurementReport(srPath) }, null, 2));
