// Runs the reference GPT-2 encoder (npm gpt-3-encoder's Encoder.js) over texts.
// Usage: node gpt2_reference_encode.js PACKAGE_DIR INPUT.json OUTPUT.json
//   INPUT: JSON array of strings; OUTPUT: JSON array of arrays of token ids.
// Encoder.js grows its result with Array.concat per word (quadratic), so long
// texts are cut after a "\n" that has non-whitespace on both sides: there the
// regex always ends a piece ("\n" alone, as \s+), and nothing before the cut looks
// past it, so the ids are exactly those of the whole text.
'use strict';
const fs = require('fs');
const path = require('path');

const [pkg, input, output] = process.argv.slice(2);
const enc = require(path.join(path.resolve(pkg), 'Encoder.js'));
const texts = JSON.parse(fs.readFileSync(input, 'utf-8'));
const result = texts.map((text) => {
  const ids = [];
  for (const chunk of text.split(/(?<=\S\n)(?=\S)/u)) {
    for (const id of enc.encode(chunk)) ids.push(id);
  }
  return ids;
});
fs.writeFileSync(output, JSON.stringify(result));
