#!/usr/bin/env bash
# The local demo: builds Coord, then `coordctl start` in local mode runs an
# in-process coordinator and two agents (simulated nodes on 127.0.0.1 and
# 127.0.0.2) and a job of 2 nodes x 2 ranks, streaming its logs until it ends.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
export PATH="$PWD/build/bin:$PATH"
exec coordctl start --config configs/demo.json --local-nodes 2
