"""What the benchmarks share: their command line, timing a command over several runs, and copies
of the shared chest CT as new studies."""
import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def arguments(default_runs):
    """(parsed --runs/--build, path of the procnode program in that build)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=default_runs)
    parser.add_argument("--build", default=os.path.join(ROOT, "build"))
    args = parser.parse_args()
    return args, os.path.abspath(os.path.join(args.build, "cli", "procnode"))


def timed(argv, runs, keep_last=False):
    """(median seconds, peak RSS MiB, output folder of the last run or None) of `argv` over `runs`
    runs, "{out}" in it replaced by a fresh temporary folder each run (removed unless keep_last)."""
    times, peak, out = [], 0, None
    for _ in range(runs):
        if out:
            shutil.rmtree(out, ignore_errors=True)
        out = tempfile.mkdtemp(prefix="bench-")
        args = [a.replace("{out}", out) for a in argv]
        start = time.perf_counter()
        result = subprocess.run(["/usr/bin/time", "-f", "%M"] + args, capture_output=True, text=True)
        times.append(time.perf_counter() - start)
        if result.returncode != 0:
            raise RuntimeError(f"{args} failed: {result.stderr[-800:]}")
        peak = max(peak, int(result.stderr.strip().splitlines()[-1]) / 1024)
    if not keep_last:
        shutil.rmtree(out, ignore_errors=True)
        out = None
    return statistics.median(times), peak, out


def build_cmake_peer(build, source, name):
    """A peer program of bench/SOURCE (its own CMake project), built into BUILD/bench-SOURCE on first use."""
    folder = os.path.join(build, "bench-" + source.replace("_", "-"))
    binary = os.path.join(folder, name)
    if not os.path.exists(binary):
        os.makedirs(folder, exist_ok=True)
        here = os.path.dirname(os.path.abspath(__file__))
        subprocess.run(["cmake", "-S", os.path.join(here, source), "-B", folder, "-DCMAKE_BUILD_TYPE=Release"], check=True,
                       stdout=subprocess.DEVNULL)
        subprocess.run(["cmake", "--build", folder, "-j2"], check=True, stdout=subprocess.DEVNULL)
    return binary


CHEST = os.path.join(ROOT, "..", "shared", "data", "ct-chest-lung-dx-a0001", "lung-kernel")


def chest_ct_copy(folder, images_in_acquisition=False):
    """A copy of the chest CT in `folder` as a study of its own (new study, series and SOP UIDs);
    with ImagesInAcquisition set to its instance count when asked (as many scanners send it)."""
    import glob
    import pydicom  # Debian's python3-pydicom
    from pydicom.uid import generate_uid
    files = [p for p in sorted(glob.glob(os.path.join(CHEST, "*"))) if not p.endswith("LICENSE")]
    os.makedirs(folder)
    study, series = generate_uid(), generate_uid()
    for path in files:
        ds = pydicom.dcmread(path)
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        if images_in_acquisition:
            ds.ImagesInAcquisition = len(files)
        ds.save_as(os.path.join(folder, os.path.basename(path)))
    return folder


def send_and_wait(orthanc, folders, interval=0.2, timeout=1800):
    """Sends each folder as a scanner would, then waits until as many jobs are finished; returns
    (the jobs, seconds from the last study sent to the last job finished)."""
    from orthanc import send_dicom
    for folder in folders:
        send_dicom(orthanc, [folder])
    sent = time.perf_counter()
    jobs = orthanc.wait_for(lambda: (lambda js: js if len(js) == len(folders) and
                                     all(j["state"] in ("done", "failed") for j in js) else None)(
        orthanc.get("/procnode/jobs")), timeout, "every job finished", interval=interval)
    return jobs, time.perf_counter() - sent
