#!/usr/bin/env bash
# Installs the npm `tfrecord` package (0.2.0, with the dependencies pinned by
# tests/trainer_e2e/tfrecord_reader/package-lock.json, every tarball checked against
# its sha512 there by `npm ci`) into a cache dir: the independent TFRecord reader the
# TensorBoard end-to-end test runs over gpt-rank's event files. Install scripts are
# not run and optional packages are left out, so its CRC-32C is fast-crc32c's
# pure-JavaScript one.
#
# Usage: scripts/fetch-tfrecord-reader.sh [--skip-without-npm] [DIR]
#        (DIR defaults to ${COORD_DATA_DIR:-$HOME/.cache/coord}; without npm and with
#        --skip-without-npm: nothing installed, exit 0, the test that needs it skips)
# Writes:  DIR/tfrecord-reader/node_modules/tfrecord/...
# Idempotent: a second run with the same lockfile does nothing. Exit 1 when npm fails.
set -euo pipefail
cd "$(dirname "$0")/.."
readonly SPEC="tests/trainer_e2e/tfrecord_reader"

say() { echo "fetch-tfrecord-reader: $*" >&2; }
die() { say "error: $*"; exit 1; }

if [[ "${1:-}" == "--skip-without-npm" ]]; then
  shift
  if ! command -v npm >/dev/null 2>&1; then
    say "npm is not installed: no TFRecord reader installed (the test that needs it will skip)"
    exit 0
  fi
fi
DIR="${1:-${COORD_DATA_DIR:-$HOME/.cache/coord}}"
command -v npm >/dev/null 2>&1 || die "'npm' is not installed"
command -v sha256sum >/dev/null 2>&1 || die "'sha256sum' is not installed"
mkdir -p "$DIR" || die "cannot create $DIR"

out="$DIR/tfrecord-reader"
stamp="$(sha256sum "$SPEC/package-lock.json" | cut -d' ' -f1)"
if [[ -f "$out/.stamp" && "$(cat "$out/.stamp")" == "$stamp" &&
      -f "$out/node_modules/tfrecord/lib/record_reader.js" ]]; then
  say "up to date in $out"
  exit 0
fi

work="$(mktemp -d "$DIR/.tfrecord-reader.XXXXXX")"
trap 'rm -rf "$work"' EXIT
cp "$SPEC/package.json" "$SPEC/package-lock.json" "$work/"
say "installing tfrecord 0.2.0 from the npm registry"
if ! (cd "$work" && npm ci --ignore-scripts --omit=optional --no-audit --no-fund \
        >"$work/npm.log" 2>&1); then
  cat "$work/npm.log" >&2
  die "npm ci failed (is the npm registry reachable?)"
fi
[[ -f "$work/node_modules/tfrecord/lib/record_reader.js" ]] || die "npm ci installed no tfrecord"
echo "$stamp" > "$work/.stamp"
rm -f "$work/npm.log"
rm -rf "$out"
mv "$work" "$out"
trap - EXIT
say "ready in $out"
