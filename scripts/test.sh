#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds, runs every CPU test
# (unit, integration with real agents/coordd/sshd, PyTorch reference checks).
# GPU tests (label gpu) run by scripts/gpu-check.sh on a machine with a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh --with-bench
cd build
ctest -LE gpu --output-on-failure --timeout 900 -j"$(nproc)"
