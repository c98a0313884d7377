#!/usr/bin/env python3
"""Reads a Megatron MMIDIDX dataset the way MMapIndexedDataset.Index does
(megatron/data/indexed_dataset.py), with only struct (no numpy/torch), and prints
it as JSON: {"dtype": code, "sizes": [...], "pointers": [...], "doc_idx": [...],
"sequences": [[tokens of sequence 0], ...]}. Usage: read_mmidx.py PREFIX"""
import json
import struct
import sys

# Megatron's dtypes table, as struct formats (6/7 are float64 there).
FORMATS = {1: 'B', 2: 'b', 3: 'h', 4: 'i', 5: 'q', 6: 'd', 7: 'd', 8: 'H'}


def main(prefix):
    with open(prefix + '.idx', 'rb') as f:
        assert f.read(9) == b'MMIDIDX\x00\x00', 'bad magic'
        assert struct.unpack('<Q', f.read(8)) == (1,), 'bad version'
        code, = struct.unpack('<B', f.read(1))
        n, = struct.unpack('<Q', f.read(8))
        d, = struct.unpack('<Q', f.read(8))
        sizes = list(struct.unpack('<%di' % n, f.read(4 * n)))
        pointers = list(struct.unpack('<%dq' % n, f.read(8 * n)))
        doc_idx = list(struct.unpack('<%dq' % d, f.read(8 * d)))
        assert f.read() == b'', 'trailing bytes in index'
    fmt = FORMATS[code]
    item = struct.calcsize(fmt)
    with open(prefix + '.bin', 'rb') as f:
        data = f.read()
    seqs = []
    for size, ptr in zip(sizes, pointers):
        seqs.append(list(struct.unpack_from('<%d%s' % (size, fmt), data, ptr)))
    assert sum(sizes) * item == len(data), 'bin size mismatch'
    json.dump({'dtype': code, 'sizes': sizes, 'pointers': pointers, 'doc_idx': doc_idx,
               'sequences': seqs}, sys.stdout)


if __name__ == '__main__':
    main(sys.argv[1])
