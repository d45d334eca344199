#!/usr/bin/env bash
# Installs the Debian packages, configures and builds procnode into ./build (or $BUILD_DIR).
# CUDA is compiled in when nvcc is found; pass -DPROCNODE_CUDA=OFF in CMAKE_ARGS to turn it off.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$here/build}
"$here/scripts/install-deps.sh"
cmake -S "$here" -B "$build" -DCMAKE_BUILD_TYPE=${BUILD_TYPE:-RelWithDebInfo} ${CMAKE_ARGS:-}
cmake --build "$build" -j "$(nproc)"
