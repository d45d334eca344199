#!/bin/bash
# The GPU check kit: prepared here (no GPU needed), run on a GPU machine in one go.
#
#   scripts/gpu-kit.sh build [--build DIR] [--out DIR]   build the CUDA programs for Hopper (sm_90 +
#       PTX) and gather them, the chest CT as NIfTI (both kernels) and run.sh into DIR (default
#       gpu-kit/, git-ignored; under 60 MiB; needs only glibc 2.34+ and the NVIDIA driver there)
#   scripts/gpu-kit.sh check-cpu [--out DIR]             the kit's CPU-side checks (CI): every program
#       starts, finds no GPU, says so and exits with its documented code
#
# There: DIR/run.sh RESULTS_DIR (exit 0 all passed, 1 a check failed, 3 no GPU).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
command=${1:-}
shift || true
build="$root/build"
out="$root/gpu-kit"
while [ $# -gt 0 ]; do
  case "$1" in
    --build) build=$(cd "$2" && pwd); shift 2 ;;
    --out) out="$2"; shift 2 ;;
    *) echo "gpu-kit.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
shared="${PROCNODE_SHARED_DATA:-$root/../shared/data}"
limit_mib=60

case "$command" in
  build)
    if [ ! -f "$build/CMakeCache.txt" ]; then
      cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release > /dev/null
    fi
    if ! grep -q '^PROCNODE_CUDA:BOOL=ON' "$build/CMakeCache.txt"; then
      echo "gpu-kit.sh: $build is configured without CUDA (nvcc not found?); the kit needs it" >&2
      exit 1
    fi
    cmake --build "$build" --target gpu_kit_parity gpu_kit_bench procnode -j "$(nproc)"
    rm -rf "$out"
    mkdir -p "$out/bin" "$out/data"
    for program in gpu_kit_parity gpu_kit_bench; do
      strip -o "$out/bin/$program" "$build/processors/$program"
      # Only what a bare Linux with glibc and the NVIDIA driver has.
      extra=$(ldd "$out/bin/$program" | awk '{print $1}' |
              grep -v -E '^(linux-vdso\.so\.1|libc\.so\.6|libm\.so\.6|libgcc_s\.so\.1|/lib64/ld-linux-x86-64\.so\.2)$' || true)
      if [ -n "$extra" ]; then
        echo "gpu-kit.sh: $program needs libraries a bare machine lacks: $extra" >&2
        exit 1
      fi
    done
    for kernel in lung-kernel standard-kernel; do
      "$build/cli/procnode" convert "$shared/ct-chest-lung-dx-a0001/$kernel" "$out/data/chest-$kernel.nii.gz" > /dev/null
    done
    cp "$root/scripts/gpu-kit-run.sh" "$out/run.sh"
    chmod +x "$out/run.sh"
    echo "procnode $(git -C "$root" describe --always --dirty 2>/dev/null || echo unknown), built $(date -u +%Y-%m-%dT%H:%MZ)" > "$out/VERSION"
    size_kib=$(du -sk "$out" | cut -f1)
    if [ "$size_kib" -gt $((limit_mib * 1024)) ]; then
      echo "gpu-kit.sh: the kit is $((size_kib / 1024)) MiB, over $limit_mib MiB" >&2
      exit 1
    fi
    echo "GPU check kit in $out ($((size_kib / 1024)) MiB): there, run $(basename "$out")/run.sh RESULTS_DIR"
    ;;
  check-cpu)
    [ -x "$out/run.sh" ] || { echo "gpu-kit.sh: no kit in $out (build it first)" >&2; exit 1; }
    results=$(mktemp -d)
    trap 'rm -rf "$results"' EXIT
    export PROCNODE_GPU_KIT_DATA="$out/data"
    fail() { echo "gpu-kit check-cpu: FAIL $*" >&2; exit 1; }
    # The benchmark measures the CPU twin on both kernels, finds no GPU, says so, exits 3.
    set +e
    "$out/bin/gpu_kit_bench" "$out/data" --json "$results/bench.json" --repeat 1 > "$results/bench.txt" 2>&1
    rc=$?
    set -e
    cat "$results/bench.txt"
    [ $rc -eq 3 ] || fail "gpu_kit_bench exited $rc, expected 3 (no GPU)"
    grep -q '^no GPU: ' "$results/bench.txt" || fail "gpu_kit_bench did not say there is no GPU"
    grep -q 'lung-kernel .*CPU: stats' "$results/bench.txt" || fail "gpu_kit_bench measured no CPU figures"
    # The parity tests skip, saying why, where a GPU is not required, and fail where it is.
    "$out/bin/gpu_kit_parity" > "$results/parity.txt" 2>&1 || fail "gpu_kit_parity failed without a GPU requirement"
    grep -q 'SKIPPED' "$results/parity.txt" || fail "gpu_kit_parity did not skip"
    set +e
    PROCNODE_GPU_REQUIRED=1 "$out/bin/gpu_kit_parity" > "$results/required.txt" 2>&1
    rc=$?
    set -e
    [ $rc -ne 0 ] || fail "gpu_kit_parity passed with PROCNODE_GPU_REQUIRED=1 and no GPU"
    grep -q 'GPU required: ' "$results/required.txt" || fail "gpu_kit_parity did not say a GPU is required"
    # run.sh finds no driver, says so, exits 3.
    set +e
    "$out/run.sh" "$results/run" > "$results/run.txt" 2>&1
    rc=$?
    set -e
    cat "$results/run.txt"
    [ $rc -eq 3 ] || fail "run.sh exited $rc, expected 3 (no GPU)"
    grep -q 'NO GPU' "$results/run.txt" || fail "run.sh did not say there is no GPU"
    echo "gpu-kit check-cpu: ok (the kit's programs start, find no GPU, say so and exit as documented)"
    ;;
  *)
    sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
    [ "$command" = "--help" ] || [ "$command" = "-h" ] || exit 2
    ;;
esac
