// Reads every record of a TFRecord file with the npm `tfrecord` package's
// RecordReader, which checks both masked CRC-32Cs of each record and throws on a
// mismatch or a torn record. Prints one line per record: its bytes in hex.
// Usage: node read_tfrecord.js READER_DIR FILE   (READER_DIR: scripts/fetch-tfrecord-reader.sh's)
'use strict';
const path = require('path');
const [readerDir, file] = process.argv.slice(2);
const { RecordReader } = require(path.join(readerDir, 'node_modules', 'tfrecord'));

(async () => {
  const reader = await RecordReader.create(file);
  for (;;) {
    const record = await reader.readRecord();
    if (record === null) break;
    console.log(Buffer.from(record).toString('hex'));
  }
  await reader.close();
})().catch((e) => {
  console.error(`read_tfrecord: ${file}: ${e.message}`);
  process.exit(1);
});
