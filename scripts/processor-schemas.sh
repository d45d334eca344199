#!/usr/bin/env bash
# Writes schemas/processors/NAME.parameters.schema.json from the built procnode (`procnode
# processors`), after a processor's parameters change. The unit test
# ProcessorRegistry.TheParameterSchemasInTheRepositoryAreTheOnesTheCodeChecks fails until it is run.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
"${BUILD_DIR:-$here/build}/cli/procnode" processors | python3 -c '
import json, sys
for p in json.load(sys.stdin):
    with open(sys.argv[1] + "/" + p["name"] + ".parameters.schema.json", "w") as f:
        json.dump(p["parameters"], f, indent=2)
        f.write("\n")
' "$here/schemas/processors"
