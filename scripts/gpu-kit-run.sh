#!/bin/bash
# procnode GPU check kit, run on the GPU machine: ./run.sh OUTPUT_DIR
#
# Prints the GPU and driver, runs the GPU parity tests (GoogleTest XML), compute-sanitizer memcheck
# and racecheck over them (small grids), and the GPU benchmark (chest CT, both kernels), writing
# everything under OUTPUT_DIR (summary.txt first). Budget on one H200: parity about 1 min,
# sanitizers at most 2 x 2.5 min, benchmark about 1 min: under 8 minutes in all, each part bounded
# by a timeout.
# Exit: 0 every check passed; 1 a check failed (see summary.txt); 3 no NVIDIA driver or GPU here.
# A GPU test that cannot run here fails (PROCNODE_GPU_REQUIRED=1); it is never skipped.
set -u
here=$(cd "$(dirname "$0")" && pwd)
out=${1:?usage: run.sh OUTPUT_DIR}
mkdir -p "$out"
: > "$out/summary.txt"
export PROCNODE_GPU_KIT_DATA="$here/data"
started=$(date +%s)
say() { echo "[$(( $(date +%s) - started ))s] $*" | tee -a "$out/summary.txt"; }
status=0

say "procnode GPU check kit: $(cat "$here/VERSION" 2>/dev/null)"
if ! command -v nvidia-smi > /dev/null 2>&1 || ! nvidia-smi > "$out/nvidia-smi.txt" 2>&1; then
  say "NO GPU: nvidia-smi is missing or fails here (see nvidia-smi.txt); nothing measured"
  exit 3
fi
say "GPU: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -1)"
say "$(ldd --version 2>/dev/null | head -1) (the kit needs glibc 2.34 or later)"

PROCNODE_GPU_REQUIRED=1 timeout 240 "$here/bin/gpu_kit_parity" --gtest_output="xml:$out/parity.xml" > "$out/parity.log" 2>&1
rc=$?
counts=$(grep -E '^\[  (PASSED|FAILED|SKIPPED) ' "$out/parity.log" | sed 's/  */ /g' | tr '\n' ' ')
if [ $rc -eq 0 ]; then say "parity: ok: $counts"; else say "FAIL parity (exit $rc): $counts(see parity.log)"; status=1; fi

sanitizer=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
if [ -x "$sanitizer" ]; then
  for tool in memcheck racecheck; do
    PROCNODE_GPU_REQUIRED=1 PROCNODE_GPU_KIT_SMALL=1 timeout 150 "$sanitizer" --tool "$tool" --error-exitcode 9 \
      "$here/bin/gpu_kit_parity" > "$out/$tool.log" 2>&1
    rc=$?
    summary=$(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$out/$tool.log" | tail -1)
    if [ $rc -eq 0 ]; then say "$tool: ok: ${summary:-no errors}"; else say "FAIL $tool (exit $rc): $summary (see $tool.log)"; status=1; fi
  done
else
  say "FAIL compute-sanitizer not found (PATH, /usr/local/cuda/bin)"
  status=1
fi

timeout 300 "$here/bin/gpu_kit_bench" "$here/data" --json "$out/bench.json" --repeat 3 > "$out/bench.txt" 2>&1
rc=$?
sed 's/^/  /' "$out/bench.txt" | tee -a "$out/summary.txt"
if [ $rc -eq 0 ]; then say "benchmark: ok (bench.json)"; else say "FAIL benchmark (exit $rc; see bench.txt)"; status=1; fi

say "$([ $status -eq 0 ] && echo 'ALL PASSED' || echo 'SOME CHECKS FAILED')"
exit $status
