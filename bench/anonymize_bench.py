"""De-identification benchmark: `procnode anonymize` against Orthanc's own anonymizer
(POST /studies/{id}/anonymize, Orthanc 1.10.1, its default profile), on the same planted copy of the
chest CT (64 slices with synthetic PHI in every category of the Basic Profile), in one run.

    /usr/bin/python3 bench/anonymize_bench.py [--runs 3] [--build build]

Rows: median wall time over --runs runs (procnode: files in, files out, leak gate included;
Orthanc: stored study in, stored study out, through its REST API), and the planted PHI each output
still holds (an independent pydicom scan of every element, nested and private ones included).
"""
import glob
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..")
sys.path.insert(0, os.path.join(ROOT, "tests", "harness"))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from orthanc import OrthancServer  # noqa: E402
from pgcluster import PgCluster  # noqa: E402
from test_anonymize import leaks, plant  # noqa: E402
from benchlib import arguments  # noqa: E402

CHEST = os.path.join(ROOT, "..", "shared", "data", "ct-chest-lung-dx-a0001")


def main():
    args, cli = arguments(3)
    work = tempfile.mkdtemp(prefix="anon-bench-")
    source = os.path.join(work, "planted")
    os.makedirs(source)
    for kernel in ("lung-kernel", "standard-kernel"):  # one study, 128 instances
        os.makedirs(os.path.join(source, kernel))
        for path in sorted(glob.glob(os.path.join(CHEST, kernel, "*"))):
            if not path.endswith("LICENSE"):
                plant(path, os.path.join(source, kernel, os.path.basename(path)))
    files = sorted(glob.glob(os.path.join(source, "*", "*")))

    env = dict(os.environ, PROCNODE_ANONYMIZATION_SECRET="bench secret")
    times = []
    for run in range(args.runs):
        out = os.path.join(work, f"procnode-{run}")
        start = time.perf_counter()
        subprocess.run([cli, "anonymize", source, out, "--project", "bench"], env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    ours = statistics.median(times)
    our_files = glob.glob(os.path.join(work, "procnode-0", "**", "*.dcm"), recursive=True)
    our_leaks = sum(len(leaks(p)) for p in our_files)

    plugin = os.path.abspath(os.path.join(args.build, "plugin", "libOrthancProcNode.so"))
    with PgCluster() as pg:
        with OrthancServer(plugin, {"Database": pg.create_database("bench"), "Workers": 0}, verbose=False) as orthanc:
            for path in files:
                with open(path, "rb") as f:
                    request = urllib.request.Request(f"{orthanc.url}/instances", data=f.read(), method="POST")
                    urllib.request.urlopen(request).read()
            [study] = orthanc.get("/studies")
            times, anonymized = [], None
            for _ in range(args.runs):
                start = time.perf_counter()
                anonymized = orthanc.post(f"/studies/{study}/anonymize", {})["ID"]
                times.append(time.perf_counter() - start)
            peer = statistics.median(times)
            peer_dir = os.path.join(work, "orthanc")
            os.makedirs(peer_dir)
            for instance in orthanc.get(f"/studies/{anonymized}/instances"):
                with open(os.path.join(peer_dir, instance["ID"] + ".dcm"), "wb") as f:
                    f.write(orthanc.get_raw(f"/instances/{instance['ID']}/file"))
            peer_leaks = sum(len(leaks(p)) for p in glob.glob(os.path.join(peer_dir, "*.dcm")))
            sample = leaks(glob.glob(os.path.join(peer_dir, "*.dcm"))[0])
    print(f"{'tool':32} {'seconds':>8} {'inst/s':>7} {'speed-up':>8} {'objects':>7} {'planted PHI left':>16}")
    print(f"{'procnode anonymize (CLI)':32} {ours:8.2f} {len(files) / ours:7.0f} {peer / ours:8.2f} {len(our_files):7d} {our_leaks:16d}")
    print(f"{'Orthanc /studies/{id}/anonymize':32} {peer:8.2f} {len(files) / peer:7.0f} {1.0:8.2f} {len(files):7d} {peer_leaks:16d}")
    print("gdcmanon (libgdcm-tools 3.0.21): its PS3.15 mode (-e) answers 'Could not De-indentify' for every file of"
          " this CT here, with a fresh certificate, so it has no row")
    print("Orthanc left, in one object:", sorted(set(sample)))
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
