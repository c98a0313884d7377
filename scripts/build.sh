#!/usr/bin/env bash
# Configures and builds Coord into build/ (Ninja, all cores). Installs missing
# Debian packages first. CUDA targets are built when nvcc is found.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh "$@"
if [[ -z "${CUDACXX:-}" && -x /usr/local/cuda/bin/nvcc ]] && ! command -v nvcc >/dev/null; then
  export CUDACXX=/usr/local/cuda/bin/nvcc
fi
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE="${COORD_BUILD_TYPE:-RelWithDebInfo}" >/dev/null
cmake --build build -j"$(nproc)"
