"""A throwaway Orthanc 1.10.1 (Debian's) with the procnode plugin, on free loopback ports.

    with PgCluster() as pg, OrthancServer(plugin, {"Database": pg.create_database("jobs")}) as orthanc:
        send_dicom(orthanc, [path])
        orthanc.wait_for(lambda: orthanc.get("/procnode/jobs"), ...)

Orthanc listens on 0.0.0.0 (1.10.1 cannot bind loopback only); RemoteAccessAllowed is false, and
tests only ever talk to 127.0.0.1. TCP_NODELAY=1 is set for Orthanc and for DCMTK's tools
(stack notes: Nagle costs ~88 ms per instance otherwise). The storage survives kill()+start(),
which is how the crash tests restart the same Orthanc.
"""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

from ports import free_port

ORTHANC = "/usr/sbin/Orthanc"
DCMTK_ENV = dict(os.environ, TCP_NODELAY="1")


class OrthancServer:
    def __init__(self, plugin, procnode, stable_age=2, aet="PROCNODE", workdir=None, verbose=True, users=None,
                 extra_plugins=(), extra_config=None, env=None, ready_path="/procnode/status", launcher=()):
        self.plugin = plugin
        self.ready_path = ready_path  # what answers once it is up ("/system" for an Orthanc without procnode)
        self.procnode = dict(procnode)
        if not users:
            # Without Orthanc's authentication nobody is verified, and procnode refuses rule and job
            # changes unless this lab setting allows them; tests of that refusal set it to False.
            self.procnode.setdefault("AllowAnonymousAdministration", True)
        self.stable_age = stable_age
        self.aet = aet
        self.owned_dir = workdir is None
        self.dir = workdir or tempfile.mkdtemp(prefix="procnode-orthanc-")
        self.http_port = free_port()
        self.dicom_port = free_port()
        self.verbose = verbose
        self.process = None
        self.log_path = os.path.join(self.dir, "orthanc.log")
        self.users = users or {}          # {"name": "password"}: Orthanc's HTTP authentication on
        self.auth = next(iter(self.users.items()), None)  # who the helpers below act as
        self.extra_plugins = list(extra_plugins)  # e.g. Debian's DICOMweb plugin
        self.extra_config = dict(extra_config or {})
        self.env = dict(env or {})                  # extra environment for Orthanc (secrets, keys)
        self.launcher = list(launcher)              # a command that execs Orthanc's (a mount namespace)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.http_port}"

    def config(self):
        return {
            "Name": "procnode-test",
            "StorageDirectory": os.path.join(self.dir, "storage"),
            "IndexDirectory": os.path.join(self.dir, "storage"),
            "HttpPort": self.http_port,
            "DicomPort": self.dicom_port,
            "DicomAet": self.aet,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": bool(self.users),
            "RegisteredUsers": self.users,
            "DicomAlwaysAllowFind": True,
            "DicomAlwaysAllowStore": True,
            "StableAge": self.stable_age,
            "Plugins": [self.plugin] + self.extra_plugins,
            "ProcNode": self.procnode,
            **self.extra_config,
        }

    def start(self, timeout=30, expect_failure=False):
        os.makedirs(self.dir, exist_ok=True)
        with open(os.path.join(self.dir, "orthanc.json"), "w") as f:
            json.dump(self.config(), f, indent=2)
        log = open(self.log_path, "a")
        args = self.launcher + [ORTHANC, os.path.join(self.dir, "orthanc.json")] + (["--verbose"] if self.verbose else [])
        self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=dict(DCMTK_ENV, **self.env))
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.process.poll() is not None:
                if expect_failure:
                    return self.process.returncode
                raise RuntimeError(f"Orthanc exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                self.get(self.ready_path)
                if expect_failure:
                    raise RuntimeError("Orthanc started although it was expected to refuse")
                return self
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.1)
        raise RuntimeError(f"Orthanc did not answer within {timeout} s:\n{self.log_tail()}")

    def kill(self):
        """SIGKILL: no clean shutdown, as when the machine or the process dies."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self, timeout=60):
        """SIGTERM: Orthanc's clean shutdown (plugin finalised, running jobs released)."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise RuntimeError("Orthanc did not stop within %d s after SIGTERM" % timeout)
        return self.process.returncode if self.process else None

    def alive(self):
        return self.process is not None and self.process.poll() is None

    def log_tail(self, chars=6000):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()[-chars:]
        except OSError:
            return ""

    def _request(self, method, path, body=None, content_type="application/json", headers=None):
        data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", content_type)
        if self.auth:
            import base64
            token = base64.b64encode(f"{self.auth[0]}:{self.auth[1]}".encode()).decode()
            request.add_header("Authorization", "Basic " + token)
        for key, value in (headers or {}).items():
            request.add_header(key, value)
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.read()

    def get(self, path):
        return json.loads(self._request("GET", path))

    def get_raw(self, path):
        return self._request("GET", path)

    def get_status(self, path, method="GET", body=None, headers=None):
        """(HTTP status, parsed JSON body or None) without raising on 4xx/5xx."""
        try:
            return 200, json.loads(self._request(method, path, body, headers=headers))
        except urllib.error.HTTPError as e:
            body = e.read()
            try:
                return e.code, json.loads(body)
            except ValueError:
                return e.code, None

    def post(self, path, body, headers=None):
        return json.loads(self._request("POST", path, body, headers=headers))

    def put(self, path, body, headers=None):
        return json.loads(self._request("PUT", path, body, headers=headers))

    def wait_for(self, predicate, timeout, what, interval=0.2):
        """Polls predicate() until it returns a truthy value; fails with `what` and the log tail."""
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            last = predicate()
            if last:
                return last
            time.sleep(interval)
        raise AssertionError(f"timed out after {timeout} s waiting for {what}; last: {last}\n{self.log_tail()}")

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.kill()
        if self.owned_dir:
            shutil.rmtree(self.dir, ignore_errors=True)


def send_dicom(orthanc, paths, calling_aet="SCANNER", allow_failures=False):
    """Sends files or folders with DCMTK storescu, as a scanner would. Returns storescu's output."""
    args = ["storescu", "-aet", calling_aet, "-aec", orthanc.aet, "+sd", "+r", "-R"]
    if allow_failures:
        args += ["--no-halt"]
    result = subprocess.run(args + ["127.0.0.1", str(orthanc.dicom_port)] + list(paths),
                            env=DCMTK_ENV, capture_output=True, text=True, timeout=600)
    if result.returncode != 0 and not allow_failures:
        state = "running" if orthanc.alive() else f"exited with {orthanc.process.returncode if orthanc.process else None}"
        raise AssertionError(f"storescu failed ({result.returncode}):\n{result.stderr[-3000:]}\n"
                             f"Orthanc {state}; its log ends:\n{orthanc.log_tail(4000)}")
    return result


def find_series(orthanc, study_instance_uid, workdir):
    """C-FIND at SERIES level (DCMTK findscu); returns a list of {keyword: value} dicts."""
    import pydicom  # Debian's python3-pydicom

    out = tempfile.mkdtemp(prefix="findscu-", dir=workdir)
    subprocess.run(["findscu", "-S", "-aec", orthanc.aet, "-X", "-od", out,
                    "-k", "QueryRetrieveLevel=SERIES", "-k", f"StudyInstanceUID={study_instance_uid}",
                    "-k", "SeriesInstanceUID", "-k", "Modality", "-k", "SeriesNumber", "-k", "SeriesDescription",
                    "127.0.0.1", str(orthanc.dicom_port)],
                   env=DCMTK_ENV, check=True, capture_output=True, timeout=60)
    answers = []
    for name in sorted(os.listdir(out)):
        ds = pydicom.dcmread(os.path.join(out, name), force=True)
        answers.append({k: str(ds.get(k, "")) for k in ("SeriesInstanceUID", "Modality", "SeriesNumber",
                                                         "SeriesDescription")})
    return answers
