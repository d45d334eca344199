"""The lean procnode program and its commands module, as installed (bin/ + lib/procnode/) and broken."""
import os
import shutil
import subprocess

SHARED_DATA = os.environ.get("PROCNODE_SHARED_DATA", os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data"))


def module_path(cli_path):
    return os.path.join(os.path.dirname(cli_path), "procnode-commands.so")


def test_an_installed_layout_finds_the_module_under_lib(cli_path, workdir):
    os.makedirs(os.path.join(workdir, "bin"))
    os.makedirs(os.path.join(workdir, "lib", "procnode"))
    shutil.copy(cli_path, os.path.join(workdir, "bin", "procnode"))
    shutil.copy(module_path(cli_path), os.path.join(workdir, "lib", "procnode", "procnode-commands.so"))
    result = subprocess.run([os.path.join(workdir, "bin", "procnode"), "processors"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "lung-emphysema" in result.stdout


def test_without_the_module_conversion_works_and_other_commands_say_what_is_missing(cli_path, workdir):
    lone = os.path.join(workdir, "procnode")
    shutil.copy(cli_path, lone)
    result = subprocess.run([lone, "status"], capture_output=True, text=True)
    assert result.returncode == 1
    assert "procnode-commands.so not found" in result.stderr and "installation is incomplete" in result.stderr
    series = os.path.join(SHARED_DATA, "dcm_qa_nih", "In", "20180918GE", "mr_0004")
    out = os.path.join(workdir, "epi.nii")
    result = subprocess.run([lone, "convert", series, out], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert os.path.getsize(out) == 352 + 64 * 64 * 150 * 2

