import glob, json, os
import pydicom
files = sorted(glob.glob(os.path.join(os.environ["PROCNODE_DICOM"], "*.dcm")))
seen = pydicom.dcmread(files[0], stop_before_pixels=True)
sidecar = json.load(open(os.environ["PROCNODE_SIDECAR"]))
json.dump({"measurements": [{"name": "Files seen", "value": len(files), "unit": "1"}]}, open("/output/measurements.json", "w"))
json.dump({"sections": [{"heading": "What the tool saw",
                         "rows": [["Patient name", str(seen.PatientName)], ["Patient ID", str(seen.PatientID)],
                                  ["Study UID", str(seen.StudyInstanceUID)]],
                         "paragraph": "Sidecar keys: " + ", ".join(sorted(sidecar))}]}, open("/output/report.json", "w"))
