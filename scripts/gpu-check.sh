#!/usr/bin/env bash
# Every GPU check in one call, for short GPU leases: builds with CUDA (Release,
# sm_90), runs the GPU tests (ctest label gpu: each kernel against its CPU twin, the
# CUDA model against the CPU model, gpt-rank training on the GPU), then the GPU
# trainer benchmark against PyTorch, and prints a short report.
#   scripts/gpu-check.sh              tests + benchmark
#   scripts/gpu-check.sh --tests      tests only
# The training tests and the benchmark need the demo data: COORD_DATA_DIR, or
# ./data-cache (copy ~/.cache/coord/{brown,gpt2,preprocessed} there before a lease on a
# machine without network access, and carry it). Exit status: non-zero if a test failed.
set -uo pipefail
cd "$(dirname "$0")/.."
export CUDACXX=${CUDACXX:-/usr/local/cuda/bin/nvcc}
if [[ -z "${COORD_DATA_DIR:-}" && -d data-cache ]]; then export COORD_DATA_DIR=$PWD/data-cache; fi
out=${OUT:-/tmp}/gpu-check
mkdir -p "$out"
jobs=$(nproc)

echo "== GPU"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || echo "no nvidia-smi"

echo "== build (build-gpu)"
if ! { cmake -S . -B build-gpu -G Ninja -DCOORD_WITH_CUDA=ON -DCMAKE_BUILD_TYPE=Release \
         >"$out/cmake.log" 2>&1 &&
       cmake --build build-gpu -j"$jobs" >"$out/build.log" 2>&1; }; then
  tail -40 "$out/build.log" "$out/cmake.log"
  echo "BUILD FAILED"
  exit 2
fi

echo "== GPU tests (ctest -L gpu)"
(cd build-gpu && ctest -L gpu --output-on-failure -j1 --timeout 900) >"$out/ctest.log" 2>&1
tests_rc=$?
grep -E "tests passed|tests failed|\*\*\*Failed|Skipped|Not Run" "$out/ctest.log" | tail -40

if [[ "${1:-}" != "--tests" ]]; then
  echo "== benchmark (bench/gpu_trainer_bench.py)"
  python3 bench/gpu_trainer_bench.py --build build-gpu --json "$out/gpu_bench.json" \
    2>"$out/bench.err" || { echo "benchmark failed:"; tail -30 "$out/bench.err"; }
fi
echo "== logs in $out"
exit $tests_rc
