"""procnode demo: PostgreSQL + Orthanc with the plugin, the example rule set saved (chest CT to
lung segmentation and emphysema quantification), the shared chest CT sent in, the result shown."""
import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "harness"))

from orthanc import OrthancServer, send_dicom  # noqa: E402
from pgcluster import PgCluster  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--build", required=True)
    parser.add_argument("--study", default=os.path.join(HERE, "..", "..", "shared", "data",
                                                        "ct-chest-lung-dx-a0001", "lung-kernel"))
    parser.add_argument("--dir", default="/tmp/procnode-demo", help="where the servers keep their data")
    parser.add_argument("--exit", action="store_true", help="stop the servers once the result is shown")
    args = parser.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    import shutil
    shutil.rmtree(os.path.join(args.dir, "orthanc"), ignore_errors=True)  # each demo starts empty
    plugin = os.path.abspath(os.path.join(args.build, "plugin", "libOrthancProcNode.so"))

    print("starting PostgreSQL (job database) ...")
    with PgCluster(os.path.join(args.dir, "postgres")) as pg:
        dsn = pg.create_database("procnode")
        orthanc = OrthancServer(plugin, {"Database": dsn, "Workers": 2, "AllowAnonymousAdministration": True}, workdir=os.path.join(args.dir, "orthanc"),
                                verbose=False)
        print("starting Orthanc with the procnode plugin ...")
        with orthanc:
            print(f"  Orthanc: {orthanc.url}  (DICOM: AET {orthanc.aet}, port {orthanc.dicom_port})")
            print(f"  log:     {orthanc.log_path}")
            rules_path = os.path.join(HERE, "..", "schemas", "examples", "rules-chest-ct.json")
            with open(rules_path) as f:
                saved = orthanc.put("/procnode/rules", json.load(f), headers={"X-Procnode-Comment": "demo rule set"})
            print(f"rule set {os.path.relpath(rules_path)} saved as version {saved['version']}")
            print(f"sending {os.path.abspath(args.study)} by C-STORE (storescu) ...")
            send_dicom(orthanc, [args.study])
            sent = time.time()
            print("waiting for the study to be stable and its job to finish ...")
            job = orthanc.wait_for(lambda: next((j for j in orthanc.get("/procnode/jobs")
                                                 if j["state"] in ("done", "failed")), None), 300, "the job")
            print(f"job {job['id']}: {job['state']} {time.time() - sent:.1f} s after the last C-STORE")
            if job["state"] != "done":
                print("error: " + job["error"])
                return 1
            result = job["result"]
            print(f"rule {job['rule']['id']}@{job['rule']['version']} -> {job['pipeline']} on {result['device']}; "
                  f"series {result['modality']} {' x '.join(map(str, result['dims']))} voxels")
            m = result["measurements"]
            if "total" in m:
                print(f"{'':24} {'right':>9} {'left':>9} {'total':>9}")
                for key, label, digits in (("volume_ml", "volume (mL)", 0), ("mean_lung_density_hu", "mean density (HU)", 1),
                                           ("laa950_percent", "LAA%-950 (%)", 2), ("laa910_percent", "LAA%-910 (%)", 2),
                                           ("perc15_hu", "15th percentile (HU)", 0),
                                           ("emphysema_clusters", "low-attenuation clusters", 0)):
                    print(f"{label:24} " + " ".join(f"{m[side][key]:9.{digits}f}"
                                                    for side in ("right_lung", "left_lung", "total")))
                print(f"timings (ms): {json.dumps({k: round(v) for k, v in result['timings_ms'].items()})}")
            else:
                print(json.dumps(m, indent=2))
            instance = result["results"][0]["stored"]
            pdf_path = os.path.join(args.dir, "report.pdf")
            dicom = orthanc.get_raw(f"/instances/{instance}/file")
            import pydicom
            from io import BytesIO
            ds = pydicom.dcmread(BytesIO(dicom))
            with open(pdf_path, "wb") as f:
                f.write(ds.EncapsulatedDocument[:int(ds.EncapsulatedDocumentLength)])
            print("\nresults:")
            for stored in result["results"]:
                print(f"  {stored['kind']:17} series {stored['series_number']}: {orthanc.url}/instances/{stored['stored']}/file")
            print(f"  the study in Orthanc Explorer: {orthanc.url}/app/explorer.html#study?uuid={job['study']}")
            print(f"  the report as PDF: {pdf_path}")
            print(f"  node status: {orthanc.url}/procnode/status ; jobs: {orthanc.url}/procnode/jobs")
            print(f"  admin page (rules, dry-run, jobs): {orthanc.url}/procnode/ui/")
            if not args.exit and sys.stdin.isatty():
                print("\nservers running; Ctrl-C stops them")
                try:
                    while orthanc.alive():
                        time.sleep(1)
                except KeyboardInterrupt:
                    pass
            orthanc.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
