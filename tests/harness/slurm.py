"""A throwaway one-node Slurm cluster (Debian's munged, slurmctld and slurmd, without systemd).

    with SlurmCluster() as slurm:     # in Python tests
        env = slurm.env()             # SLURM_CONF for sbatch, squeue, scancel, scontrol
        slurm.run(["sbatch", "--parsable", "--wrap", "true"])

Everything lives in one temporary folder: the munge key and socket, slurm.conf, the state and
spool folders, pid and log files. Ports are free loopback ports (tests/harness/ports.py), so a
second run on the same machine does not clash. MinJobAge and the scheduler's batch delay are short,
so finished jobs leave the controller within seconds (as stack-notes.md advises for tests).
stop() ends every daemon and any job step still running, and removes the folder, also after a
failed test.
"""
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ports import free_port  # noqa: E402

SBIN = "/usr/sbin"


def available():
    """The reason Slurm cannot run here, or None."""
    for tool in ("munged", "slurmctld", "slurmd"):
        if not os.path.exists(os.path.join(SBIN, tool)):
            return f"{tool} is not installed (Debian packages munge, slurmctld, slurmd, slurm-client)"
    if shutil.which("sbatch") is None:
        return "sbatch is not installed (Debian package slurm-client)"
    if os.geteuid() != 0:
        return "the throwaway Slurm cluster runs its daemons as root"
    return None


class SlurmCluster:
    def __init__(self, directory=None, cpus=None, memory_mb=None):
        self.owned_dir = directory is None
        self.dir = directory or tempfile.mkdtemp(prefix="procnode-slurm-")
        self.node = socket.gethostname().split(".")[0]
        self.cpus = cpus or os.cpu_count() or 1
        self.memory_mb = memory_mb or 4096
        self.processes = []

    def path(self, name):
        return os.path.join(self.dir, name)

    @property
    def conf(self):
        return self.path("slurm.conf")

    def env(self, base=None):
        env = dict(base if base is not None else os.environ)
        env["SLURM_CONF"] = self.conf
        return env

    def run(self, args, check=True, timeout=30):
        return subprocess.run(args, env=self.env(), capture_output=True, text=True, check=check, timeout=timeout)

    def start(self):
        for folder in ("state", "spool", "munge"):
            os.makedirs(self.path(folder), exist_ok=True)
        os.chmod(self.path("munge"), 0o700)
        key = self.path("munge/munge.key")
        with open(key, "wb") as f:
            f.write(os.urandom(1024))
        os.chmod(key, 0o400)
        self._daemon([f"{SBIN}/munged", "--force", f"--socket={self.path('munge/socket')}", f"--key-file={key}",
                      f"--pid-file={self.path('munge/munged.pid')}", f"--log-file={self.path('munge/munged.log')}",
                      f"--seed-file={self.path('munge/seed')}", "--foreground"],
                     lambda: os.path.exists(self.path("munge/socket")), "munged")
        controller_port, node_port = free_port(), free_port()
        with open(self.conf, "w") as f:
            f.write(f"""ClusterName=procnode
SlurmctldHost={self.node}(127.0.0.1)
SlurmctldPort={controller_port}
SlurmdPort={node_port}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={self.path('munge/socket')}
SlurmUser=root
SlurmdUser=root
StateSaveLocation={self.path('state')}
SlurmdSpoolDir={self.path('spool')}
SlurmctldPidFile={self.path('slurmctld.pid')}
SlurmdPidFile={self.path('slurmd.pid')}
SlurmctldLogFile={self.path('slurmctld.log')}
SlurmdLogFile={self.path('slurmd.log')}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
MinJobAge=4
SchedulerParameters=batch_sched_delay=0
KillWait=2
SlurmdTimeout=10
NodeName={self.node} NodeAddr=127.0.0.1 CPUs={self.cpus} RealMemory={self.memory_mb} State=UNKNOWN
PartitionName=debug Nodes={self.node} Default=YES MaxTime=INFINITE State=UP
""")
        self._daemon([f"{SBIN}/slurmctld", "-D", "-i", "-f", self.conf], self._controller_answers, "slurmctld")
        self.start_node()
        return self

    def start_node(self):
        """Starts slurmd (again, after kill_node) and waits until the node takes jobs."""
        self._daemon([f"{SBIN}/slurmd", "-D", "-f", self.conf, "-N", self.node], self._node_idle, "slurmd")

    def kill_node(self):
        """SIGKILL to slurmd and every job step it started: a compute node failing mid-job."""
        for process in list(self.processes):
            if process.args[0].endswith("slurmd") and process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
                self.processes.remove(process)
        # Job steps run in slurmstepd processes ("slurmstepd: [JOB.batch]") of their own session:
        # end them too, and with them the controller's news of the job.
        subprocess.run(["pkill", "-KILL", "-f", r"^slurmstepd: \["], check=False)

    def _controller_answers(self):
        return self.run(["scontrol", "ping"], check=False).stdout.count("UP") > 0

    def _node_idle(self):
        out = self.run(["sinfo", "-h", "-N", "-o", "%T"], check=False).stdout.strip()
        if out.startswith("down") or out.startswith("drain"):
            self.run(["scontrol", "update", f"NodeName={self.node}", "State=RESUME"], check=False)
        return out.startswith("idle") or out.startswith("mix") or out.startswith("alloc")

    def _daemon(self, args, ready, name, timeout=30):
        log = open(self.path(f"{name}.out"), "ab")
        process = subprocess.Popen(args, env=self.env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.processes.append(process)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode}: {self.log(name)}")
            if ready():
                return process
            time.sleep(0.2)
        raise RuntimeError(f"{name} did not become ready in {timeout} s: {self.log(name)}")

    def log(self, name):
        text = ""
        for candidate in (f"{name}.log", f"{name}.out", f"munge/{name}.log"):
            if os.path.exists(self.path(candidate)):
                with open(self.path(candidate), errors="replace") as f:
                    text += f.read()[-3000:]
        return text

    def stop(self):
        for process in reversed(self.processes):
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGTERM)
                    process.wait(timeout=10)
                except (subprocess.TimeoutExpired, ProcessLookupError):
                    try:
                        os.killpg(process.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    process.wait()
        self.processes = []
        subprocess.run(["pkill", "-KILL", "-f", r"^slurmstepd: \["], check=False)
        if self.owned_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
