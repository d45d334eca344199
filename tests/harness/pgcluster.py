"""A throwaway PostgreSQL 15 cluster on a free loopback port.

    with PgCluster() as pg:          # in Python tests
        dsn = pg.create_database("jobs")

    pgcluster.py start DIR           # for ctest fixtures: writes DIR/dsn (admin DSN), DIR/port
    pgcluster.py stop DIR

initdb refuses to run as root, so as root the server runs as the 'postgres' user. The cluster
listens on 127.0.0.1 only, trusts local connections (tests only) and is removed on stop.
"""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ports import free_port  # noqa: E402

PG_BIN = "/usr/lib/postgresql/15/bin"


def _as_server_user(args):
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--"] + args
    return args


class PgCluster:
    def __init__(self, directory=None):
        self.owned_dir = directory is None
        self.dir = directory or tempfile.mkdtemp(prefix="procnode-pg-")
        self.port = None

    @property
    def admin_dsn(self):
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def dsn(self, database):
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def start(self):
        os.makedirs(self.dir, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        data = os.path.join(self.dir, "data")
        subprocess.run(_as_server_user([f"{PG_BIN}/initdb", "-D", data, "-U", "postgres", "-A", "trust",
                                        "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"]),
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for attempt in range(5):
            self.port = free_port()
            result = subprocess.run(
                _as_server_user([f"{PG_BIN}/pg_ctl", "-D", data, "-l", os.path.join(self.dir, "log"), "-w",
                                 "-o", f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 "
                                       "-c fsync=off -c full_page_writes=off -c max_connections=200",
                                 "start"]),
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            if result.returncode == 0:
                break
        else:
            raise RuntimeError("PostgreSQL did not start: " + open(os.path.join(self.dir, "log")).read()[-2000:])
        with open(os.path.join(self.dir, "dsn"), "w") as f:
            f.write(self.admin_dsn + "\n")
        return self

    def create_database(self, name):
        subprocess.run(["psql", "-q", "-d", self.admin_dsn, "-c", f"CREATE DATABASE {name}"], check=True,
                       stdout=subprocess.DEVNULL)
        return self.dsn(name)

    def psql(self, database, sql):
        """Runs SQL and returns the rows as lists of strings (unaligned, tab-separated)."""
        out = subprocess.run(["psql", "-X", "-A", "-t", "-F", "\t", "-d", self.dsn(database), "-c", sql],
                             check=True, capture_output=True, text=True).stdout
        return [line.split("\t") for line in out.splitlines() if line]

    def halt(self):
        """Stops the server, keeping its data and port (a database outage); resume() starts it again."""
        subprocess.run(_as_server_user([f"{PG_BIN}/pg_ctl", "-D", os.path.join(self.dir, "data"), "-m", "fast", "-w",
                                        "stop"]), check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def resume(self):
        subprocess.run(_as_server_user([f"{PG_BIN}/pg_ctl", "-D", os.path.join(self.dir, "data"), "-l",
                                        os.path.join(self.dir, "log"), "-w",
                                        "-o", f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 "
                                              "-c fsync=off -c full_page_writes=off -c max_connections=200",
                                        "start"]), check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def server_pids(self):
        """The postmaster and every backend of this cluster."""
        with open(os.path.join(self.dir, "data", "postmaster.pid")) as f:
            postmaster = int(f.readline())
        children = subprocess.run(["pgrep", "-P", str(postmaster)], capture_output=True, text=True).stdout.split()
        return [postmaster] + [int(pid) for pid in children]

    def pause(self):
        """SIGSTOP to the whole server: connections are accepted by the kernel and never answered."""
        for pid in self.server_pids():
            os.kill(pid, signal.SIGSTOP)

    def unpause(self):
        for pid in self.server_pids():
            os.kill(pid, signal.SIGCONT)

    def stop(self):
        data = os.path.join(self.dir, "data")
        if os.path.isdir(data):
            subprocess.run(_as_server_user([f"{PG_BIN}/pg_ctl", "-D", data, "-m", "immediate", "-w", "stop"]),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def main(argv):
    if len(argv) != 3 or argv[1] not in ("start", "stop"):
        print("usage: pgcluster.py start|stop DIR", file=sys.stderr)
        return 2
    directory = os.path.abspath(argv[2])
    if argv[1] == "start":
        PgCluster(directory).stop()  # a cluster left over from an interrupted run
        cluster = PgCluster(directory).start()
        print(cluster.admin_dsn)
    else:
        PgCluster(directory).stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
