// dcmjs as a judge of image objects (derived series, Secondary Capture): reads each file the way
// OHIF's loaders start (DicomMessage.readFile + naturalizeDataset) and prints, per file, what a
// viewer needs to show it: SOP class, size, samples, photometric interpretation, bits, rescale and
// the pixel data's length in bytes.
// Usage: node read_images.mjs FILE.dcm...
import { readFileSync } from "node:fs";
import dcmjs from "dcmjs";

const { DicomMessage, DicomMetaDictionary } = dcmjs.data;

const asArray = (x) => (x === undefined ? [] : Array.isArray(x) ? x : [x]);

const images = process.argv.slice(2).map((path) => {
  const bytes = readFileSync(path);
  const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  const ds = DicomMetaDictionary.naturalizeDataset(DicomMessage.readFile(buffer).dict);
  const pixels = asArray(ds.PixelData)[0];
  return {
    path,
    sopClassUid: ds.SOPClassUID,
    modality: ds.Modality,
    rows: ds.Rows,
    columns: ds.Columns,
    samplesPerPixel: ds.SamplesPerPixel,
    photometricInterpretation: ds.PhotometricInterpretation,
    bitsAllocated: ds.BitsAllocated,
    rescaleSlope: ds.RescaleSlope === undefined ? null : Number(ds.RescaleSlope),
    rescaleIntercept: ds.RescaleIntercept === undefined ? null : Number(ds.RescaleIntercept),
    pixelBytes: pixels ? pixels.byteLength : 0,
  };
});
console.log(JSON.stringify(images));
