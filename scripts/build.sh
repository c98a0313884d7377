#!/usr/bin/env bash
# Configures and builds Coord into build/ (Ninja, all cores; COORD_BUILD_DIR,
# COORD_CMAKE_ARGS, COORD_BUILD_TYPE and COORD_BUILD_TARGETS change that). Installs missing
# Debian packages first. CUDA targets are built when nvcc is found.
# Environment: COORD_BUILD_DIR (build/), COORD_BUILD_TYPE (RelWithDebInfo),
# COORD_CMAKE_ARGS (extra cmake arguments), COORD_BUILD_TARGETS (default: all).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh "$@"
if [[ -z "${CUDACXX:-}" && -x /usr/local/cuda/bin/nvcc ]] && ! command -v nvcc >/dev/null; then
  export CUDACXX=/usr/local/cuda/bin/nvcc
fi
# ccache (when present) makes a second configuration or a second checkout cheap:
# paths under the checkout are hashed relative to it, so trees share one cache.
launcher=()
if command -v ccache >/dev/null; then
  for lang in C CXX CUDA; do
    launcher+=("-DCMAKE_${lang}_COMPILER_LAUNCHER=env;CCACHE_BASEDIR=$PWD;CCACHE_NOHASHDIR=1;ccache")
  done
fi
build_dir="${COORD_BUILD_DIR:-build}"
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE="${COORD_BUILD_TYPE:-RelWithDebInfo}" \
  "${launcher[@]}" ${COORD_CMAKE_ARGS:-} >/dev/null
# COORD_BUILD_TARGETS (space-separated) builds only those targets (scripts/sanitize.sh,
# scripts/fuzz.sh).
targets=()
for t in ${COORD_BUILD_TARGETS:-}; do targets+=(--target "$t"); done
cmake --build "$build_dir" -j"$(nproc)" "${targets[@]}"
