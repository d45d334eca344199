"""Fixtures shared by the integration tests: real PostgreSQL, real Orthanc with the plugin,
DCMTK as the scanner. Every server is torn down even when a test fails."""
import os
import shutil
import sys
import tempfile

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "harness"))

from orthanc import OrthancServer  # noqa: E402
from pgcluster import PgCluster  # noqa: E402

BUILD_DIR = os.environ.get("PROCNODE_BUILD_DIR", os.path.join(HERE, "..", "..", "build"))
SHARED_DATA = os.environ.get("PROCNODE_SHARED_DATA", os.path.join(HERE, "..", "..", "..", "shared", "data"))
CHEST_CT = os.path.join(SHARED_DATA, "ct-chest-lung-dx-a0001", "lung-kernel")


@pytest.fixture(scope="session")
def plugin_path():
    path = os.path.join(BUILD_DIR, "plugin", "libOrthancProcNode.so")
    assert os.path.exists(path), f"build the plugin first: {path} is missing"
    return os.path.abspath(path)


@pytest.fixture(scope="session")
def cli_path():
    return os.path.abspath(os.path.join(BUILD_DIR, "cli", "procnode"))


@pytest.fixture(scope="module")
def pg():
    with PgCluster() as cluster:
        yield cluster


@pytest.fixture
def workdir():
    path = tempfile.mkdtemp(prefix="procnode-it-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


_db_counter = [0]


@pytest.fixture
def job_db(pg):
    _db_counter[0] += 1
    name = f"jobs_{os.getpid()}_{_db_counter[0]}"
    return name, pg.create_database(name)


@pytest.fixture
def orthanc_factory(plugin_path, workdir):
    """Makes OrthancServer objects sharing the test's workdir; kills them all at teardown."""
    made = []

    def make(procnode, workdir_name="orthanc", **kwargs):
        server = OrthancServer(plugin_path, procnode, workdir=os.path.join(workdir, workdir_name), **kwargs)
        made.append(server)
        return server

    yield make
    for server in made:
        server.kill()
