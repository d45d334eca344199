"""Issue 20, item 3: DICOM TLS end to end with a throwaway certification authority. A scanner
(storescu) sends over TLS into Orthanc (DicomTlsEnabled, remote certificates required); the
results go on over TLS to a storescp destination (UseDicomTls); a client whose certificate the
CA did not sign, and a client without TLS, are refused. docker/orthanc-tls.json is the same
configuration for a site."""
import glob
import os
import subprocess

import pydicom

from conftest import CHEST_CT
from helpers import wait_jobs_finished
from orthanc import DCMTK_ENV
from ports import free_port

RULES = {"rules": [{"id": "ct", "match": {"attribute": "Modality", "equals": "CT"},
                    "action": {"pipeline": "volume-stats", "device": "cpu", "destinations": ["PACS"]}}]}


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_pki(folder):
    """A throwaway CA, certificates it signs for Orthanc, the scanner and the PACS, and a rogue one."""
    os.makedirs(folder)
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=procnode test CA",
            "-keyout", "ca.key", "-out", "ca.crt", cwd=folder)
    for name in ("orthanc", "scanner", "pacs"):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}", "-keyout", f"{name}.key", "-out", f"{name}.csr",
                cwd=folder)
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2",
                "-out", f"{name}.crt", cwd=folder)
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=rogue",
            "-keyout", "rogue.key", "-out", "rogue.crt", cwd=folder)
    return {name: os.path.join(folder, name) for name in ("ca", "orthanc", "scanner", "pacs", "rogue")}


def storescu(orthanc, paths, tls=None, ca=None):
    args = ["storescu", "-aet", "SCANNER", "-aec", orthanc.aet, "+sd", "+r", "-R"]
    if tls:
        args += ["+tls", tls + ".key", tls + ".crt", "+cf", ca + ".crt"]
    return subprocess.run(args + ["127.0.0.1", str(orthanc.dicom_port)] + list(paths), env=DCMTK_ENV,
                          capture_output=True, text=True, timeout=600)


def test_dicom_tls_in_and_out_with_a_throwaway_ca(orthanc_factory, job_db, workdir):
    pki = make_pki(os.path.join(workdir, "pki"))
    pacs_port = free_port()
    received = os.path.join(workdir, "pacs")
    os.makedirs(received)
    pacs = subprocess.Popen(["storescp", "-aet", "PACS", "-od", received, "+tls", pki["pacs"] + ".key", pki["pacs"] + ".crt",
                             "+cf", pki["ca"] + ".crt", "-rc", str(pacs_port)], env=DCMTK_ENV,
                            stdout=subprocess.DEVNULL, stderr=open(os.path.join(workdir, "storescp.log"), "w"))
    try:
        orthanc = orthanc_factory(
            {"Database": job_db[1], "Workers": 1, "Destinations": {"PACS": {"Modality": "pacs"}}},
            extra_config={"DicomTlsEnabled": True, "DicomTlsCertificate": pki["orthanc"] + ".crt",
                          "DicomTlsPrivateKey": pki["orthanc"] + ".key", "DicomTlsTrustedCertificates": pki["ca"] + ".crt",
                          "DicomTlsRemoteCertificateRequired": True,
                          "DicomModalities": {"pacs": {"AET": "PACS", "Host": "127.0.0.1", "Port": pacs_port,
                                                       "UseDicomTls": True}}}).start()
        orthanc.put("/procnode/rules", RULES)

        # Refused: no TLS at all, and TLS with a certificate the CA did not sign.
        plain = storescu(orthanc, [CHEST_CT])
        assert plain.returncode != 0, "a client without TLS must be refused"
        rogue = storescu(orthanc, [CHEST_CT], tls=pki["rogue"], ca=pki["ca"])
        assert rogue.returncode != 0, "a client whose certificate the CA did not sign must be refused"
        assert orthanc.get("/studies") == [], "nothing was stored from refused clients"

        # The scanner with a certificate from the CA: stored, processed, delivered over TLS.
        sent = storescu(orthanc, [CHEST_CT], tls=pki["scanner"], ca=pki["ca"])
        assert sent.returncode == 0, sent.stderr[-2000:]
        [job] = wait_jobs_finished(orthanc, 1)
        assert job["state"] == "done", job
        try:
            orthanc.wait_for(lambda: orthanc.get(f"/procnode/jobs/{job['id']}")["deliveries"][0]["state"] == "sent", 120,
                             "the delivery over DICOM TLS")
        except AssertionError:
            raise AssertionError(f"{orthanc.get(f'/procnode/jobs/{job[chr(105) + chr(100)]}')['deliveries']}\n"
                                 f"{open(os.path.join(workdir, 'storescp.log')).read()[-3000:]}")
        files = glob.glob(os.path.join(received, "*"))
        assert len(files) == 1 and pydicom.dcmread(files[0]).Modality == "DOC", files
    finally:
        pacs.kill()
