"""Several Orthancs on one job database (issue 13, item 6): each Orthanc's intake enqueues jobs for
itself, the job records which Orthanc holds the study, and only workers reaching that Orthanc (its
in-plugin pool, or a standalone `procnode worker` pointed at it) run them; results go back to the
right Orthanc. The same study in both Orthancs makes one job in each."""
import os
import subprocess

from conftest import CHEST_CT, SHARED_DATA
from helpers import jobs, result_series
from orthanc import send_dicom

BRAIN_MR = os.path.join(SHARED_DATA, "mr-brain-sag-mprage")
NIH = os.path.join(SHARED_DATA, "dcm_qa_nih", "In")
GE_CT = os.path.join(SHARED_DATA, "dcm_qa_ct", "In", "GE")
XA60 = os.path.join(SHARED_DATA, "dcm_qa_xa60", "In", "XA60")


def worker(cli_path, db, orthanc):
    return subprocess.Popen([cli_path, "worker", "--db", db, "--orthanc", orthanc.url, "--workers", "1"],
                            stdout=subprocess.DEVNULL, stderr=open(os.path.join(orthanc.dir, f"worker-{orthanc.http_port}.log"), "w"))


def test_two_orthancs_share_one_job_database_and_each_job_runs_once_where_its_study_is(orthanc_factory, job_db, cli_path,
                                                                                     tmp_path):
    east = orthanc_factory({"Database": job_db[1], "Workers": 1, "OrthancId": "east"}, workdir_name="east")
    west = orthanc_factory({"Database": job_db[1], "Workers": 0, "OrthancId": "west"}, workdir_name="west")
    east.start()
    west.start()
    assert east.get("/procnode/status")["orthanc_id"] == "east"
    workers = [worker(cli_path, job_db[1], west), worker(cli_path, job_db[1], east)]
    try:
        send_dicom(east, [CHEST_CT])
        send_dicom(east, [os.path.join(NIH, "20180918Si")], allow_failures=True)  # README files beside the DICOM
        send_dicom(east, [GE_CT], allow_failures=True)
        send_dicom(west, [BRAIN_MR], allow_failures=True)  # its LICENSE file is no DICOM
        send_dicom(west, [os.path.join(NIH, "20180918GE", "mr_0004")], allow_failures=True)
        send_dicom(west, [XA60], allow_failures=True)
        send_dicom(west, [GE_CT], allow_failures=True)  # the same study in both Orthancs
        for orthanc, count in ((east, 3), (west, 4)):
            orthanc.wait_for(lambda: (lambda js: js if len(js) == count and all(j["state"] in ("done", "failed") for j in js)
                                      else None)([j for j in jobs(orthanc) if j["orthanc"] == orthanc.procnode["OrthancId"]]),
                             300, f"{count} finished jobs of {orthanc.procnode['OrthancId']}")
        everything = jobs(east)
        assert len(everything) == 7, everything
        assert sorted(j["orthanc"] for j in everything) == ["east"] * 3 + ["west"] * 4
        for orthanc in (east, west):
            mine = [j for j in everything if j["orthanc"] == orthanc.procnode["OrthancId"]]
            studies = {s for s in orthanc.get("/studies")}
            for job in mine:
                assert job["state"] == "done", (job["error"], job["orthanc"])
                assert job["study"] in studies, "the job names a study of its own Orthanc"
                assert len(result_series(orthanc, job["study"])) == 1, "results went back to the right Orthanc"
        ge_ct = [j for j in everything if j["study"] in set(east.get("/studies")) & set(west.get("/studies"))]
        assert sorted(j["orthanc"] for j in ge_ct) == ["east", "west"], "the shared study has a job in each Orthanc"
        owners = {e["owner"].split("/")[1] for j in everything for e in east.get(f"/procnode/jobs/{j['id']}")["events"]
                  if e["kind"] == "claimed"}
        assert len(owners) >= 2, f"more than one process ran jobs: {owners}"
    finally:
        for w in workers:
            w.kill()
