"""DICOM -> NIfTI conversion benchmark: procnode vs dcm2niix vs orthanc-neuro, in one run.

    /usr/bin/python3 bench/convert_bench.py [--runs 5] [--build build]

CLI rows: median wall time of `procnode convert` and `dcm2niix` over --runs runs (output to a
tmpfs-backed temp dir), peak RSS from GNU time, the volume's size (the NIfTI's voxel bytes) and
procnode's peak as a multiple of it. REST rows: the same series converted inside one
Orthanc by GET /procnode/series/{id}/nifti and orthanc-neuro's GET /series/{id}/nifti?compress
(only gzip; Orthanc's memory is not separable per request, so no RSS there).
"""
import os
import shutil
import statistics
import sys
import time
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
}


def http_time(url, runs):
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        with urllib.request.urlopen(url, timeout=300) as response:
            response.read()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    args, cli = arguments(5)
    rows = []
    for name, folder in SERIES.items():
        for gz in (False, True):
            ext = ".nii.gz" if gz else ".nii"
            ours, our_rss, kept = timed([cli, "convert", folder, "{out}/x" + ext, "--sidecar", "{out}/x.json"],
                                        args.runs, keep_last=not gz)
            peer, peer_rss, _ = timed(["dcm2niix", "-z", "y" if gz else "n", "-o", "{out}", "-f", "x", folder], args.runs)
            if kept:
                volume_mib = (os.path.getsize(os.path.join(kept, "x.nii")) - 352) / 2**20
                shutil.rmtree(kept, ignore_errors=True)
            rows.append((name, "gz" if gz else "nii", ours, peer, our_rss, peer_rss, volume_mib))
    print(f"{'series':28} {'out':4} {'procnode s':>10} {'dcm2niix s':>10} {'ratio':>6} {'procnode MiB':>12} "
          f"{'dcm2niix MiB':>12} {'volume MiB':>10} {'peak/volume':>11}")
    for name, kind, ours, peer, our_rss, peer_rss, size in rows:
        print(f"{name:28} {kind:4} {ours:10.3f} {peer:10.3f} {peer / ours:6.2f} {our_rss:12.0f} {peer_rss:12.0f} "
              f"{size:10.1f} {our_rss / size:11.2f}")

    plugin = os.path.abspath(os.path.join(args.build, "plugin", "libOrthancProcNode.so"))
    with PgCluster() as pg:
        orthanc = OrthancServer(plugin, {"Database": pg.create_database("bench"), "Workers": 0}, verbose=False)
        orthanc.plugin = [plugin, "/usr/share/orthanc/plugins/libOrthancNeuro.so"]
        config = orthanc.config
        orthanc.config = lambda: dict(config(), Plugins=orthanc.plugin)
        with orthanc:
            send_dicom(orthanc, list(SERIES.values()), allow_failures=True)
            print(f"\n{'series (inside Orthanc, gzip)':28} {'procnode s':>10} {'orthanc-neuro s':>15} {'ratio':>6}")
            for study in orthanc.get("/studies"):
                for series in orthanc.get(f"/studies/{study}/series"):
                    sid = series["ID"]
                    label = f"{series['MainDicomTags'].get('Modality', '')} {len(series['Instances'])} instances"
                    ours = http_time(f"{orthanc.url}/procnode/series/{sid}/nifti", args.runs)
                    peer = http_time(f"{orthanc.url}/series/{sid}/nifti?compress", args.runs)
                    print(f"{label:28} {ours:10.3f} {peer:15.3f} {peer / ours:6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
