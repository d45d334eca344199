"""Small checks shared by the integration tests."""
import json
import os
import subprocess

JOB_TIMEOUT = 120  # seconds: generous for 2-core CI machines; the real figure is ~4 s


def jobs(orthanc, state=None):
    return orthanc.get("/procnode/jobs" + (f"?state={state}" if state else ""))


def wait_jobs_finished(orthanc, count, timeout=JOB_TIMEOUT):
    return orthanc.wait_for(
        lambda: (lambda js: js if len(js) >= count and all(j["state"] in ("done", "failed") for j in js) else None)(
            jobs(orthanc)),
        timeout, f"{count} finished job(s)")


def result_series(orthanc, study_id):
    """The study's series made by procnode (Manufacturer procnode)."""
    return [s for s in orthanc.get(f"/studies/{study_id}/series")
            if s["MainDicomTags"].get("Manufacturer") == "procnode"]


def _copy_study(task):
    import glob
    import pydicom
    from pydicom.uid import generate_uid
    folder, target, n = task
    os.makedirs(target)
    study, series = generate_uid(), generate_uid()
    for path in sorted(p for p in glob.glob(os.path.join(folder, "*")) if not p.endswith("LICENSE")):
        ds = pydicom.dcmread(path)
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID = study, series, generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.AccessionNumber = f"LOAD{n:05d}"
        ds.save_as(os.path.join(target, os.path.basename(path)))
    return target


def copies(folder, count, workdir, first=0):
    """`count` copies of a series as studies of their own (new study, series and SOP UIDs), made
    in parallel; returns their folders."""
    from multiprocessing import Pool
    tasks = [(folder, os.path.join(workdir, f"copy-{n}"), n) for n in range(first, first + count)]
    if count <= 2:
        return [_copy_study(t) for t in tasks]
    with Pool(min(4, os.cpu_count() or 1)) as pool:
        return pool.map(_copy_study, tasks)


def copy_study(folder, target, n=0):
    """One copy of a series as a study of its own in `target` (new UIDs); returns `target`."""
    return _copy_study((folder, target, n))


def run(args, **kwargs):
    return subprocess.run(args, capture_output=True, text=True, timeout=300, **kwargs)


def dciodvfy_errors(path):
    out = run(["dciodvfy", "-new", path])
    return [line for line in (out.stdout + out.stderr).splitlines() if line.startswith("Error")]


def save(orthanc, instance_id, path):
    with open(path, "wb") as f:
        f.write(orthanc.get_raw(f"/instances/{instance_id}/file"))
    return path


PIXELMED_CLASSPATH = ":".join(f"/usr/share/java/{jar}.jar" for jar in
                              ("pixelmed", "commons-codec", "slf4j-api", "javax.json", "vecmath"))
DCMJS_JUDGE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "judges", "dcmjs")


def pixelmed_sr_report(path):
    """PixelMed's DicomSRValidator output (IOD and TID 1500 template checks)."""
    out = run(["java", "-Djdk.xml.xpathExprOpLimit=0", "-Djdk.xml.xpathExprGrpLimit=0", "-Djdk.xml.xpathTotalOpLimit=0",
               "-cp", PIXELMED_CLASSPATH, "com.pixelmed.validate.DicomSRValidator", path])
    return out.stdout + out.stderr


def dcmjs_read(seg_path, sr_path):
    """What dcmjs (OHIF's DICOM parser) reads from a SEG and an SR (tests/judges/dcmjs)."""
    out = run(["node", os.path.join(DCMJS_JUDGE, "read_seg_sr.mjs"), seg_path, sr_path], cwd=DCMJS_JUDGE)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def dcmjs_read_images(paths):
    """What dcmjs reads from image objects (tests/judges/dcmjs/read_images.mjs): one dict per file."""
    out = run(["node", os.path.join(DCMJS_JUDGE, "read_images.mjs")] + list(paths), cwd=DCMJS_JUDGE)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)
