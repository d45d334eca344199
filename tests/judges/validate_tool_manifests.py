"""Every tool manifest shipped (tools/*/tool.json, tests/integration/tools/*/tool.json) validates
against schemas/tools/tool-manifest.schema.json (python3-jsonschema, Draft 2020-12) and against
procnode's own check (`procnode tools validate`); each broken manifest below is refused by both,
procnode naming the JSON pointer given."""
import copy
import glob
import json
import os
import subprocess
import sys
import tempfile

import jsonschema

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")

GOOD = {"manifest_version": 1, "name": "demo", "version": "1", "description": "d",
        "command": ["python3", "{tool}/run.py"], "outputs": {"measurements": True}}
# (what is changed, the pointer procnode must name)
BROKEN = [
    ({"manifest_version": 2}, "/manifest_version"),
    ({"name": "Demo Tool"}, "/name"),
    ({"command": []}, "/command"),
    ({"command": ["bin/run"]}, "/command/0"),
    ({"outputs": {}}, "/outputs"),
    ({"outputs": {"labels": "yes"}}, "/outputs/labels"),
    ({"outputs": {"derived": ["../escape.nii.gz"]}}, "/outputs/derived/0"),
    ({"requirements": {"cpus": 0}}, "/requirements/cpus"),
    ({"requirements": {"memory_mb": 8}}, "/requirements/memory_mb"),
    ({"inputs": {"dicom": "yes"}}, "/inputs/dicom"),
    ({"parameters": {"properties": {"x": {"type": "number"}}}}, "/parameters/properties/x/default"),
    ({"parameters": {"properties": {"x": {"type": "object", "default": {}}}}}, "/parameters/properties/x/type"),
    ({"read_only_paths": ["etc"]}, "/read_only_paths/0"),
    ({"colour": "red"}, "/colour"),
]


def procnode_validate(cli, manifest):
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(manifest, f)
    try:
        return subprocess.run([cli, "tools", "validate", f.name], capture_output=True, text=True), f.name
    finally:
        os.remove(f.name)


def main(cli):
    with open(os.path.join(ROOT, "schemas", "tools", "tool-manifest.schema.json")) as f:
        schema = json.load(f)
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    manifests = sorted(glob.glob(os.path.join(ROOT, "tools", "*", "tool.json")) +
                       glob.glob(os.path.join(ROOT, "tests", "integration", "tools", "*", "tool.json")))
    assert len(manifests) >= 10, manifests
    failures = 0
    for path in manifests:
        with open(path) as f:
            errors = [e.message for e in validator.iter_errors(json.load(f))]
        ours = subprocess.run([cli, "tools", "validate", path], capture_output=True, text=True)
        ok = not errors and ours.returncode == 0
        failures += not ok
        print(("ok   " if ok else "FAIL ") + os.path.relpath(path, ROOT), errors, ours.stderr.strip())
    for change, pointer in BROKEN:
        manifest = copy.deepcopy(GOOD)
        manifest.update(change)
        schema_refuses = bool(list(validator.iter_errors(manifest)))
        ours, name = procnode_validate(cli, manifest)
        named = ours.returncode == 2 and f"{name}: {pointer}:" in ours.stderr
        ok = schema_refuses and named
        failures += not ok
        print(("ok   " if ok else "FAIL ") + f"broken {change}: schema refuses {schema_refuses}, procnode: {ours.stderr.strip()}")
    print(f"{len(manifests) + len(BROKEN) - failures} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
