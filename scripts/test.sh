#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds, runs every CPU test
# (unit, integration with real agents/coordd/sshd, PyTorch reference checks).
# GPU tests (label gpu) run by scripts/gpu-check.sh on a machine with a GPU. Then the
# fuzz smoke run (scripts/fuzz.sh --smoke) and the control plane's unit tests under
# ASan + UBSan (scripts/sanitize.sh asan --control-plane).
#
# Where nvcc is installed, both configurations are built, so neither can break:
#   build/         with the CUDA backend (what GPU nodes run): the unit tests; the
#                  objects it shares with the other build are the same (ccache)
#   build-nocuda/  -DCOORD_WITH_CUDA=OFF (a fresh Debian 12, a head node): the whole suite
# Without nvcc, build/ is the no-CUDA configuration and runs the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh --with-bench
jobs="$(nproc)"
if grep -q '^COORD_WITH_CUDA:BOOL=ON' build/CMakeCache.txt; then
  COORD_BUILD_DIR=build-nocuda COORD_CMAKE_ARGS="-DCOORD_WITH_CUDA=OFF" scripts/build.sh --with-bench
  echo "test: the CUDA configuration (build/), unit tests"
  (cd build && ctest -L unit -LE gpu --output-on-failure --timeout 900 -j"$jobs")
  echo "test: the configuration without CUDA (build-nocuda/), every CPU test"
  cpu_build=build-nocuda
else
  cpu_build=build
fi
(cd "$cpu_build" && ctest -LE gpu --output-on-failure --timeout 900 -j"$jobs")
# Every parser of outside input under libFuzzer + ASan + UBSan: each harness over its
# corpus and a few seconds more (build-fuzz/, clang; docs/fuzzing.md).
echo "test: fuzz smoke run (build-fuzz/)"
scripts/fuzz.sh --smoke
# The control plane's unit tests under AddressSanitizer + UndefinedBehaviorSanitizer
# (build-asan/; the whole suite and TSan: scripts/sanitize.sh, docs/testing.md).
echo "test: control-plane unit tests under ASan + UBSan (build-asan/)"
scripts/sanitize.sh asan --control-plane
