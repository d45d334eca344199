#!/usr/bin/env bash
# Installs the Debian packages, builds, and runs every test (unit, PostgreSQL, integration with
# real Orthanc + PostgreSQL + storescu; GPU tests skip with a message where there is no GPU).
# Extra arguments go to ctest, e.g. scripts/test.sh -L unit
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$here/build}
"$here/scripts/build.sh"
cd "$build"
echo "GPU tests run only where a GPU is present; here:"
./cli/procnode status
ctest --output-on-failure -j "$(nproc)" --timeout 900 "$@"
# The unit suite again under AddressSanitizer and UndefinedBehaviorSanitizer (its own build folder).
if [ "${SKIP_SANITIZERS:-0}" != 1 ] && [ $# -eq 0 ]; then
  "$here/scripts/sanitize.sh"
fi
# Every libFuzzer target: its regression inputs, then FUZZ_SECONDS (20) of fuzzing each (build-fuzz/).
if [ "${SKIP_FUZZ:-0}" != 1 ] && [ $# -eq 0 ]; then
  "$here/scripts/fuzz.sh" "${FUZZ_SECONDS:-20}"
fi
