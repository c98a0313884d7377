#!/usr/bin/env bash
# Builds with CUDA and runs every GPU test (ctest label gpu) in one call, for
# short GPU leases. Prints a short report; exit status is ctest's.
set -euo pipefail
cd "$(dirname "$0")/.."
export CUDACXX=${CUDACXX:-/usr/local/cuda/bin/nvcc}
cmake -S . -B build-gpu -G Ninja -DCOORD_WITH_CUDA=ON -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build-gpu -j"$(nproc)"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
cd build-gpu && ctest -L gpu --output-on-failure
