#!/usr/bin/env bash
# The libFuzzer targets (tests/fuzz/: DICOM files with the byte walker, DCMTK and the private
# headers; Siemens CSA; GE protocol blocks; NIfTI; rule sets; tool manifests), built with Debian's
# clang under AddressSanitizer and UBSan in build-fuzz/ (or $FUZZ_BUILD_DIR). Each target first runs
# its regression inputs (tests/fuzz/regressions/TARGET/: every finding, kept once fixed), then
# fuzzes for SECONDS (default 60) from seeds made from the shared data and the repository. A finding
# stops the run, its input saved under build-fuzz/findings/TARGET/.
# Usage: scripts/fuzz.sh [SECONDS [TARGET...]]; FUZZ_TIMEOUT (60 s) is the time one input may take.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${FUZZ_BUILD_DIR:-$here/build-fuzz}
data=${PROCNODE_SHARED_DATA:-$here/../shared/data}
seconds=${1:-60}
[ $# -gt 0 ] && shift
targets=${*:-dicom csa ge_protocol nifti rules tool_manifest}
flags="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g -O1"
# ITK off: its 5.2 headers refuse this clang ("Unsupported compiler"), and no fuzz target reaches it.
CC=clang CXX=clang++ cmake -S "$here" -B "$build" -DCMAKE_BUILD_TYPE=Debug -DPROCNODE_CUDA=OFF -DPROCNODE_ITK=OFF -DPROCNODE_FUZZ=ON \
  -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" > /dev/null
cmake --build "$build" -j "$(nproc)" --target $(for t in $targets; do printf 'fuzz_%s ' "$t"; done)
/usr/bin/python3 "$here/tests/fuzz/make_seeds.py" "$build/seeds" "$data" "$here"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
for target in $targets; do
  program="$build/tests/fuzz/fuzz_$target"
  regressions="$here/tests/fuzz/regressions/$target"
  if [ -d "$regressions" ] && [ -n "$(ls -A "$regressions")" ]; then
    echo "== fuzz_$target: regression inputs"
    "$program" "$regressions"/*
  fi
  rm -rf "$build/findings/$target"
  mkdir -p "$build/corpus/$target" "$build/findings/$target"
  echo "== fuzz_$target: $seconds s"
  # DCMTK allocates an element's claimed length (up to 4 GiB, address space only, nothrow) before it
  # reads the value: not a finding by itself; resident memory past 2 GiB still is.
  "$program" -max_total_time="$seconds" -rss_limit_mb=2048 -malloc_limit_mb=4200 -timeout="${FUZZ_TIMEOUT:-60}" -report_slow_units=3600 -max_len=1048576 -print_final_stats=1 \
    -artifact_prefix="$build/findings/$target/" "$build/corpus/$target" "$build/seeds/$target" 2>&1 |
    grep -E "^#[0-9]+ +DONE|stat::number_of_executed_units|ERROR|SUMMARY|Test unit written|Done [0-9]+ runs" || true
  if ls "$build/findings/$target" | grep -qE '^(crash|leak|timeout|oom)-'; then
    echo "fuzz_$target: findings in $build/findings/$target" >&2
    exit 1
  fi
done
echo "fuzzing: no findings"
