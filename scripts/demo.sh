#!/usr/bin/env bash
# The main job on real data: installs and builds, starts PostgreSQL (job database) and Orthanc with
# the procnode plugin, sends the shared chest CT by C-STORE, waits for the job and shows the result.
# Leaves the servers running until Ctrl-C when run from a terminal (--exit to stop at once).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
"$here/scripts/build.sh" >/dev/null
exec /usr/bin/python3 "$here/scripts/demo.py" --build "${BUILD_DIR:-$here/build}" "$@"
