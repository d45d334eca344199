"""Every example rule set in schemas/examples validates against schemas/rules.schema.json
(python3-jsonschema, Draft 2020-12) and against procnode's own validator (`procnode rules
validate`), and a broken one is refused by both."""
import glob
import json
import os
import subprocess
import sys

import jsonschema

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")


def main(cli):
    with open(os.path.join(ROOT, "schemas", "rules.schema.json")) as f:
        schema = json.load(f)
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    examples = sorted(glob.glob(os.path.join(ROOT, "schemas", "examples", "*.json")))
    assert examples, "no examples"
    failures = 0
    for path in examples:
        with open(path) as f:
            errors = list(validator.iter_errors(json.load(f)))
        ours = subprocess.run([cli, "rules", "validate", path], capture_output=True, text=True)
        ok = not errors and ours.returncode == 0
        failures += not ok
        print(("ok   " if ok else "FAIL ") + os.path.basename(path), [e.message for e in errors], ours.stderr.strip())
    broken = {"rules": [{"id": "x", "match": {"attribute": "Modality", "equals": "CT", "in": ["MR"]},
                         "action": {"pipeline": "volume-stats", "colour": "red"}}]}
    schema_refuses = bool(list(validator.iter_errors(broken)))
    path = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"broken-rules-{os.getpid()}.json")
    with open(path, "w") as f:
        json.dump(broken, f)
    ours = subprocess.run([cli, "rules", "validate", path], capture_output=True, text=True)
    os.remove(path)
    print("broken example refused by the schema:", schema_refuses, "and by procnode:", ours.returncode == 2, ours.stderr.strip())
    failures += not schema_refuses or ours.returncode != 2
    print(f"{len(examples) + 1 - failures} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
