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



COMMANDS = ["convert", "rules validate", "rules test", "process", "processors", "anonymize", "reidentify", "migrate",
            "jobs", "status", "version"]


def test_help_on_the_program_and_on_every_command(cli_path):
    # Before: `procnode --help` failed with "--help needs a value".
    result = subprocess.run([cli_path, "--help"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    for command in {c.split()[0] for c in COMMANDS}:
        assert f"\n  {command} " in result.stdout, (command, result.stdout)
    for command in COMMANDS:
        result = subprocess.run([cli_path, *command.split(), "--help"], capture_output=True, text=True)
        assert result.returncode == 0, (command, result.stderr)
        assert "Exit codes:" in result.stdout and "-h,--help" in result.stdout, (command, result.stdout)
    result = subprocess.run([cli_path, "process", "-h"], capture_output=True, text=True)
    assert "--device DEVICE" in result.stdout and "auto (GPU where present), cpu or gpu" in result.stdout


def test_unknown_or_misspelt_options_and_commands_are_refused_with_exit_2_naming_them(cli_path, workdir):
    # Before: `--devcie gpu` was silently ignored and the job ran on the default device.
    series = os.path.join(SHARED_DATA, "dcm_qa_nih", "In", "20180918GE", "mr_0004")
    cases = [
        ([cli_path, "process", "volume-stats", series, "--out", workdir, "--devcie", "gpu"],
         "unknown option --devcie (did you mean --device?)"),
        ([cli_path, "process", "volume-stats", series, "--out", workdir, "--device", "tpu"], "tpu not in {auto,cpu,gpu}"),
        ([cli_path, "convert", series, os.path.join(workdir, "x.nii"), "--sidecr", "x.json"],
         "unknown option --sidecr (did you mean --sidecar?)"),
        ([cli_path, "anonymize", series, workdir], "--project is required"),
        ([cli_path, "convrt", series], "unknown command 'convrt' (did you mean convert?)"),
        ([cli_path, "jobs", "--db", "postgresql://x/y", "--limit", "1e3"], "--limit"),
        ([cli_path], "Usage: procnode"),
    ]
    for args, message in cases:
        result = subprocess.run(args, capture_output=True, text=True)
        assert result.returncode == 2, (args, result.returncode, result.stderr)
        assert message in result.stderr, (args, result.stderr)
    assert not os.path.exists(os.path.join(workdir, "measurements.json")), "nothing ran"
