#!/usr/bin/env python3
"""Megatron's GPT index mappings in numpy, transcribed from the Megatron-DeepSpeed
era megatron/data/gpt_dataset.py (_num_epochs, _build_doc_idx, _build_sample_idx,
_build_shuffle_idx, the separate_last_epoch rule of _build_index_mappings) and
dataset_utils.get_train_valid_test_split_, so the C++ port is checked against
numpy's real RandomState. Needs numpy (Debian: /usr/bin/python3).

Usage: megatron_index_reference.py JSON   (one spec, or a JSON list of specs -> list of results)
  {"op": "shuffle", "seed": S, "n": N, "dtype": "int32"|"uint32"|"int64"}
      -> numpy.random.RandomState(S).shuffle(arange(N)) as a JSON list
  {"op": "split", "splits": "949,50,1", "size": N} -> the 4 boundaries
  {"op": "index", "sizes": [...], "first": A, "end": B, "num_samples": M,
   "seq_length": L, "seed": S} -> {"doc_idx", "sample_idx", "shuffle_idx", "num_epochs",
   "separate_last_epoch"}
"""
import json
import sys

import numpy as np


def get_train_valid_test_split_(splits_string, size):
    splits = []
    if splits_string.find(',') != -1:
        splits = [float(s) for s in splits_string.split(',')]
    elif splits_string.find('/') != -1:
        splits = [float(s) for s in splits_string.split('/')]
    else:
        splits = [float(splits_string)]
    while len(splits) < 3:
        splits.append(0.)
    splits = splits[:3]
    splits_sum = sum(splits)
    assert splits_sum > 0.0
    splits = [split / splits_sum for split in splits]
    splits_index = [0]
    for index, split in enumerate(splits):
        splits_index.append(splits_index[index] + int(round(split * float(size))))
    diff = splits_index[-1] - size
    for index in range(1, len(splits_index)):
        splits_index[index] -= diff
    assert len(splits_index) == 4
    assert splits_index[-1] == size
    return splits_index


def _num_epochs(tokens_per_epoch, seq_length, num_samples):
    num_epochs = 0
    total_tokens = 0
    while True:
        num_epochs += 1
        total_tokens += tokens_per_epoch
        if ((total_tokens - 1) // seq_length) >= num_samples:
            return num_epochs


def _build_doc_idx(documents, num_epochs, np_rng, separate_last_epoch):
    if not separate_last_epoch or num_epochs == 1:
        doc_idx = np.mgrid[0:num_epochs, 0:len(documents)][1]
        doc_idx[:] = documents
        doc_idx = doc_idx.reshape(-1)
        doc_idx = doc_idx.astype(np.int32)
        np_rng.shuffle(doc_idx)
        return doc_idx
    doc_idx_first = _build_doc_idx(documents, num_epochs - 1, np_rng, False)
    doc_idx_last = _build_doc_idx(documents, 1, np_rng, False)
    return np.concatenate((doc_idx_first, doc_idx_last))


def _build_sample_idx(sizes, doc_idx, seq_length, num_epochs, tokens_per_epoch):
    num_samples = (num_epochs * tokens_per_epoch - 1) // seq_length
    sample_idx = np.zeros([num_samples + 1, 2], dtype=np.int32)
    sample_index = 0
    doc_idx_index = 0
    doc_offset = 0
    sample_idx[sample_index][0] = doc_idx_index
    sample_idx[sample_index][1] = doc_offset
    sample_index += 1
    while sample_index <= num_samples:
        remaining_seq_length = seq_length + 1
        while remaining_seq_length != 0:
            doc_id = doc_idx[doc_idx_index]
            doc_length = sizes[doc_id] - doc_offset
            remaining_seq_length -= doc_length
            if remaining_seq_length <= 0:
                doc_offset += (remaining_seq_length + doc_length - 1)
                remaining_seq_length = 0
            else:
                doc_idx_index += 1
                doc_offset = 0
        sample_idx[sample_index][0] = doc_idx_index
        sample_idx[sample_index][1] = doc_offset
        sample_index += 1
    return sample_idx


def _build_shuffle_idx(num_samples, total_size, np_rng):
    dtype_ = np.uint32
    if total_size >= (np.iinfo(np.uint32).max - 1):
        dtype_ = np.int64
    shuffle_idx_first = np.arange(start=0, stop=num_samples, step=1, dtype=dtype_)
    np_rng.shuffle(shuffle_idx_first)
    if num_samples == total_size:
        return shuffle_idx_first
    shuffle_idx_last = np.arange(start=num_samples, stop=total_size, step=1, dtype=dtype_)
    np_rng.shuffle(shuffle_idx_last)
    return np.concatenate((shuffle_idx_first, shuffle_idx_last))


def build_index_mappings(sizes, first, end, num_samples, seq_length, seed):
    sizes = np.array(sizes, dtype=np.int32)
    documents = np.arange(start=first, stop=end, step=1, dtype=np.int32)
    tokens_per_epoch = int(np.sum(sizes[documents]))
    num_epochs = _num_epochs(tokens_per_epoch, seq_length, num_samples)
    np_rng = np.random.RandomState(seed=seed)
    if num_epochs == 1:
        separate_last_epoch = False
    else:
        num_samples_from_epochs_minus_one = ((num_epochs - 1) * tokens_per_epoch - 1) // seq_length
        last_epoch_num_samples = num_samples - num_samples_from_epochs_minus_one
        assert last_epoch_num_samples >= 0
        num_samples_per_epoch = (tokens_per_epoch - 1) // seq_length
        assert last_epoch_num_samples < (num_samples_per_epoch + 1)
        separate_last_epoch = (last_epoch_num_samples < int(0.80 * num_samples_per_epoch))
    doc_idx = _build_doc_idx(documents, num_epochs, np_rng, separate_last_epoch)
    sample_idx = _build_sample_idx(sizes, doc_idx, seq_length, num_epochs, tokens_per_epoch)
    if separate_last_epoch:
        num_samples_ = num_samples_from_epochs_minus_one
    else:
        num_samples_ = sample_idx.shape[0] - 1
    shuffle_idx = _build_shuffle_idx(num_samples_, sample_idx.shape[0] - 1, np_rng)
    return {'doc_idx': doc_idx.tolist(), 'sample_idx': sample_idx.reshape(-1).tolist(),
            'shuffle_idx': shuffle_idx.tolist(), 'num_epochs': num_epochs,
            'separate_last_epoch': bool(separate_last_epoch)}


def main(spec):
    if spec['op'] == 'shuffle':
        x = np.arange(spec['n'], dtype=spec['dtype'])
        np.random.RandomState(seed=spec['seed']).shuffle(x)
        return x.tolist()
    if spec['op'] == 'split':
        return get_train_valid_test_split_(spec['splits'], spec['size'])
    if spec['op'] == 'index':
        return build_index_mappings(spec['sizes'], spec['first'], spec['end'],
                                    spec['num_samples'], spec['seq_length'], spec['seed'])
    raise ValueError(spec['op'])


if __name__ == '__main__':
    arg = json.loads(sys.argv[1])
    json.dump([main(s) for s in arg] if isinstance(arg, list) else main(arg), sys.stdout)
