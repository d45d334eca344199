"""DICOM -> NIfTI conversion benchmark: procnode vs dcm2niix vs mrconvert vs orthanc-neuro, in one run.

    /usr/bin/python3 bench/convert_bench.py [--runs 5] [--build build]

CLI rows: median wall time of `procnode convert`, `dcm2niix` and MRtrix3's `mrconvert` (uncompressed
only; with the gradient table for diffusion series) over --runs runs (output to a temp dir), peak
RSS from GNU time, the volume's size (the NIfTI's voxel bytes) and procnode's peak as a multiple
of it. Ratios are the peer's time over procnode's (above 1: procnode faster). REST rows: the same series converted inside
Orthanc by GET /procnode/series/{id}/nifti and orthanc-neuro's GET /series/{id}/nifti?compress
(only gzip), and how far the first request raises Orthanc's resident peak.
"""
import os
import shutil
import statistics
import sys
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..")
sys.path.insert(0, os.path.join(ROOT, "tests", "harness"))
from orthanc import OrthancServer, send_dicom  # noqa: E402
from pgcluster import PgCluster  # noqa: E402
from benchlib import arguments, timed  # noqa: E402

DATA = os.path.join(ROOT, "..", "shared", "data")
SERIES = {
    "chest CT 512x512x64": os.path.join(DATA, "ct-chest-lung-dx-a0001", "lung-kernel"),
    "brain MR 256x256x192": os.path.join(DATA, "mr-brain-sag-mprage"),
    "GE EPI 4D (dcm_qa_nih 4)": os.path.join(DATA, "dcm_qa_nih", "In", "20180918GE", "mr_0004"),
    "UIH DWI 64x64x20x17 (grid)": os.path.join(DATA, "dcm_qa_uih", "In", "DTI_134434", "dti_tra_dir16_AP_SaveBySlc__140028"),
    "XA61 DWI 100x100x10x7 (enh.)": None,  # series 16 of dcm_qa_xa60/In/XA61 (its folder holds two), linked below
}


def one_series(folder, number):
    """A temporary folder of links to the files of series `number` in `folder`."""
    import glob
    import tempfile
    import pydicom  # Debian's python3-pydicom
    out = tempfile.mkdtemp(prefix="bench-series-")
    for path in glob.glob(os.path.join(folder, "**", "*"), recursive=True):
        if os.path.isfile(path) and int(pydicom.dcmread(path, stop_before_pixels=True).SeriesNumber) == number:
            os.symlink(path, os.path.join(out, os.path.basename(path)))
    return out
# mrconvert exports the gradient table where it reads one (not from UIH's private attributes).
MRCONVERT_GRADIENTS = {"XA61 DWI 100x100x10x7 (enh.)"}


def http_time(url, runs):
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        with urllib.request.urlopen(url, timeout=300) as response:
            response.read()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def status_kib(pid, field):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/{pid}/status")


def peak_rise(pid, action):
    """MiB by which `action` raises process `pid`'s resident peak above its resident size before."""
    with open(f"/proc/{pid}/clear_refs", "w") as clear:
        clear.write("5")  # resets VmHWM to the current VmRSS
    before = status_kib(pid, "VmRSS")
    action()
    return (status_kib(pid, "VmHWM") - before) / 1024


def main():
    args, cli = arguments(5)
    rows = []
    mrconvert = shutil.which("mrconvert")
    SERIES["XA61 DWI 100x100x10x7 (enh.)"] = one_series(os.path.join(DATA, "dcm_qa_xa60", "In", "XA61", "DICOM"), 16)
    for name, folder in SERIES.items():
        for gz in (False, True):
            ext = ".nii.gz" if gz else ".nii"
            ours, our_rss, kept = timed([cli, "convert", folder, "{out}/x" + ext, "--sidecar", "{out}/x.json"],
                                        args.runs, keep_last=not gz)
            peer, peer_rss, _ = timed(["dcm2niix", "-z", "y" if gz else "n", "-o", "{out}", "-f", "x", folder], args.runs)
            mr = None
            if mrconvert and not gz:
                grad = ["-export_grad_fsl", "{out}/x.bvec", "{out}/x.bval"] if name in MRCONVERT_GRADIENTS else []
                mr, _, _ = timed([mrconvert, "-quiet", folder, "{out}/x.nii"] + grad, args.runs)
            if kept:
                volume_mib = (os.path.getsize(os.path.join(kept, "x.nii")) - 352) / 2**20
                shutil.rmtree(kept, ignore_errors=True)
            rows.append((name, "gz" if gz else "nii", ours, peer, mr, our_rss, peer_rss, volume_mib))
    print(f"{'series':28} {'out':4} {'procnode s':>10} {'dcm2niix s':>10} {'ratio':>6} {'mrconvert s':>11} {'ratio':>6} "
          f"{'procnode MiB':>12} {'dcm2niix MiB':>12} {'volume MiB':>10} {'peak/volume':>11}")
    for name, kind, ours, peer, mr, our_rss, peer_rss, size in rows:
        mr_text = f"{mr:11.3f} {mr / ours:6.2f}" if mr is not None else f"{'-':>11} {'-':>6}"
        print(f"{name:28} {kind:4} {ours:10.3f} {peer:10.3f} {peer / ours:6.2f} {mr_text} {our_rss:12.0f} "
              f"{peer_rss:12.0f} {size:10.1f} {our_rss / size:11.2f}")

    # Inside Orthanc: one fresh Orthanc per series (both plugins loaded, only that series stored),
    # so each tool's first request starts from the same process state. Memory: how far the request
    # raises Orthanc's resident peak (VmHWM, reset through /proc/PID/clear_refs just before).
    plugin = os.path.abspath(os.path.join(args.build, "plugin", "libOrthancProcNode.so"))
    print(f"\n{'series (inside Orthanc, gzip)':28} {'procnode s':>10} {'orthanc-neuro s':>15} {'ratio':>6} "
          f"{'procnode +MiB':>13} {'neuro +MiB':>10}")
    with PgCluster() as pg:
        for number, (name, folder) in enumerate(SERIES.items()):
            result = {}
            for tool in ("procnode", "neuro"):
                orthanc = OrthancServer(plugin, {"Database": pg.create_database(f"bench{number}{tool}"), "Workers": 0},
                                        verbose=False)
                plugins = [plugin, "/usr/share/orthanc/plugins/libOrthancNeuro.so"]
                config = orthanc.config
                orthanc.config = lambda config=config, plugins=plugins: dict(config(), Plugins=plugins)
                with orthanc:
                    send_dicom(orthanc, [folder], allow_failures=True)
                    sid = orthanc.get("/series")[0]
                    url = (f"{orthanc.url}/procnode/series/{sid}/nifti" if tool == "procnode"
                           else f"{orthanc.url}/series/{sid}/nifti?compress")
                    try:
                        rise = peak_rise(orthanc.process.pid, lambda url=url: http_time(url, 1))
                        result[tool] = (http_time(url, args.runs), rise)
                    except urllib.error.HTTPError as e:  # a tool that cannot convert the series
                        result[tool] = (None, f"HTTP {e.code}")
            (ours, our_rise), (peer, peer_rise) = result["procnode"], result["neuro"]
            if ours is None or peer is None:
                ours_text = f"{ours:10.3f}" if ours is not None else f"{our_rise!s:>10}"
                peer_text = f"{peer:15.3f}" if peer is not None else f"{peer_rise!s:>15}"
                print(f"{name:28} {ours_text} {peer_text}")
                continue
            print(f"{name:28} {ours:10.3f} {peer:15.3f} {peer / ours:6.2f} {our_rise:13.0f} {peer_rise:10.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
