"""Results on to PACS: a rule sends the chest CT to lung-emphysema with two destinations (Orthanc
modalities). One is down when the results are ready and comes back (DCMTK storescp): it receives
the Encapsulated PDF, the SEG and the SR after a retry with backoff. The other never answers: its
delivery ends as a dead letter with the reason, and an admin's resend queues it again. The job
itself is done as soon as its results are stored; deliveries do not hold it."""
import os
import subprocess
import time

import pydicom

from conftest import CHEST_CT
from helpers import jobs, wait_jobs_finished
from orthanc import DCMTK_ENV, send_dicom
from ports import free_port

RULES = {"rules": [{"id": "chest-ct", "match": {"attribute": "Modality", "equals": "CT"},
                    "action": {"pipeline": "lung-emphysema", "destinations": ["PACS", "NOWHERE"]}}]}


def events(orthanc, job_id):
    return orthanc.get(f"/procnode/jobs/{job_id}")["events"]


def deliveries(orthanc, job_id):
    return {d["destination"]: d for d in orthanc.get(f"/procnode/jobs/{job_id}")["deliveries"]}


def test_results_reach_a_destination_that_comes_back_and_a_dead_one_is_a_dead_letter(orthanc_factory, job_db, workdir):
    pacs_port, closed_port = free_port(), free_port()
    received = os.path.join(workdir, "pacs")
    os.makedirs(received)
    orthanc = orthanc_factory(
        {"Database": job_db[1], "Workers": 1, "DeliveryBackoffSeconds": 1, "DeliveryMaxAttempts": 4,
         "Destinations": {"PACS": {"Modality": "pacs"}, "NOWHERE": "nowhere"}},
        extra_config={"DicomModalities": {"pacs": ["PACS1", "127.0.0.1", pacs_port],
                                          "nowhere": ["NOWHERE", "127.0.0.1", closed_port]}}).start()
    code, body = orthanc.get_status("/procnode/rules", "PUT", {"rules": [dict(RULES["rules"][0], action={
        "pipeline": "lung-emphysema", "destinations": ["ARCHIVE"]})]})
    assert code == 400 and body["errors"][0]["pointer"] == "/rules/0/action/destinations/0", body
    orthanc.put("/procnode/rules", RULES)

    send_dicom(orthanc, [CHEST_CT], calling_aet="CT01")
    [job] = wait_jobs_finished(orthanc, 1)
    assert job["state"] == "done", job
    stored = {r["kind"]: r["stored"] for r in job["result"]["results"]}
    assert sorted(stored) == ["encapsulated-pdf", "seg", "sr"]

    # PACS is down: the first attempt fails and is retried later.
    orthanc.wait_for(lambda: any(e["kind"] == "delivery-failed" and "PACS" in e["message"] for e in events(orthanc, job["id"])),
                     60, "a failed delivery to PACS")
    pacs = subprocess.Popen(["storescp", "-aet", "PACS1", "-od", received, "-pm", str(pacs_port)], env=DCMTK_ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        sent = orthanc.wait_for(lambda: (lambda d: d if d["PACS"]["state"] == "sent" else None)(deliveries(orthanc, job["id"])),
                                60, "the delivery to PACS after it came back")
        assert sent["PACS"]["attempts"] >= 2 and sent["PACS"]["last_error"] is None, sent["PACS"]
        files = [os.path.join(received, f) for f in os.listdir(received)]
        classes = sorted(pydicom.dcmread(f, stop_before_pixels=True).SOPClassUID for f in files)
        assert classes == ["1.2.840.10008.5.1.4.1.1.104.1", "1.2.840.10008.5.1.4.1.1.66.4",
                           "1.2.840.10008.5.1.4.1.1.88.22"], classes

        # NOWHERE never answers: a dead letter after its attempts, with the reason.
        dead = orthanc.wait_for(
            lambda: (lambda d: d if d["NOWHERE"]["state"] == "dead" else None)(deliveries(orthanc, job["id"])),
            60, "the dead letter for NOWHERE")["NOWHERE"]
        assert dead["attempts"] == 4 and dead["last_error"], dead
        kinds = [e["kind"] for e in events(orthanc, job["id"])]
        assert "dead-letter" in kinds and "delivered" in kinds, kinds
        assert orthanc.get("/procnode/status")["deliveries"]["dead"] == 1
        # The job list carries the same deliveries (one query for the list).
        [listed] = orthanc.get("/procnode/jobs")
        assert listed["deliveries"] == orthanc.get(f"/procnode/jobs/{job['id']}")["deliveries"], listed["deliveries"]

        # Resend: both go again (PACS receives them a second time; NOWHERE is pending once more).
        for f in files:
            os.remove(f)
        again = orthanc.post(f"/procnode/jobs/{job['id']}/resend", {})
        assert again["resent"] == 2
        orthanc.wait_for(lambda: len(os.listdir(received)) == 3 and deliveries(orthanc, job["id"])["PACS"]["state"] == "sent",
                         60, "the resent objects at PACS")
        assert "resend-requested" in [e["kind"] for e in events(orthanc, job["id"])]
        assert deliveries(orthanc, job["id"])["NOWHERE"]["state"] in ("pending", "sending", "dead")
    finally:
        pacs.terminate()
        pacs.wait(timeout=10)
    assert len(jobs(orthanc)) == 1
    code, body = orthanc.get_status("/procnode/jobs/999/resend", "POST", {})
    assert code == 404, body
