"""Sequence packing (``MaskingCollator(pack_sequences=True)``, ``videobert.corpus.packing``): every
example lands whole, in order, with its own positions, in fewer rows; nothing else changes."""

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from test_corpus_collator import OFF, PAD, VOCAB, example, examples_of, examples_strategy
from videobert.corpus import MaskingCollator
from videobert.corpus.packing import first_fit_rows
from videobert.vocab import TEXT_ONLY, VIDEO_ONLY, VIDEO_TEXT

PER_POSITION = ("input_ids", "token_type_ids", "mlm_labels", "mvm_labels")


def test_first_fit_decreasing():
    row, start = first_fit_rows(np.array([5, 3, 4, 2, 8]), width=8)
    # 8 fills row 0; 5 opens row 1; 4 does not fit beside it and opens row 2; 3 completes row 1; 2 joins row 2
    assert row.tolist() == [1, 1, 2, 2, 0] and start.tolist() == [0, 5, 0, 4, 0]


def test_packed_layout():
    examples = [example(TEXT_ONLY, [2000] * 5), example(VIDEO_ONLY, words=[1, 2]), example(VIDEO_TEXT, [3000] * 6, [7] * 4),
                example(TEXT_ONLY, [2001])]
    batch = MaskingCollator(VOCAB, mask_prob=0.0, pack_sequences=True)(examples)
    # lengths 7, 5, 13, 3 in rows of 16: 13 + 3 in row 0, 7 + 5 in row 1
    assert batch["input_ids"].shape == (2, 16)
    assert batch["example_index"].tolist() == [[2] * 13 + [3] * 3, [0] * 7 + [1] * 5 + [-1] * 4]
    assert batch["position_ids"].tolist() == [list(range(13)) + [0, 1, 2], list(range(7)) + list(range(5)) + [0] * 4]
    assert batch["input_ids"][1, 7:].tolist() == [VOCAB.cls_id, VOCAB.video_sep_id, OFF + 1, OFF + 2, VOCAB.sep_id, PAD, PAD, PAD, PAD]
    assert batch["attention_mask"].tolist() == [[1] * 16, [1] * 12 + [0] * 4]
    assert batch["alignment_labels"].tolist() == [-100, -100, 1, -100] and batch["stream"].tolist() == [0, 1, 2, 0]


@settings(max_examples=80, deadline=None)
@given(examples_strategy, st.integers(3, 64), st.floats(0.0, 1.0))
def test_packing_moves_each_example_whole(items, max_length, mask_prob):
    examples = examples_of(items)
    padded = MaskingCollator(VOCAB, max_length=max_length, mask_prob=mask_prob)(examples)
    packed = MaskingCollator(VOCAB, max_length=max_length, mask_prob=mask_prob, pack_sequences=True)(examples)
    assert packed["input_ids"].shape[0] <= len(examples) and packed["input_ids"].shape[1] == padded["input_ids"].shape[1]
    for key in ("alignment_labels", "stream"):
        assert torch.equal(packed[key], padded[key])
    lengths = padded["attention_mask"].sum(1)
    index, positions = packed["example_index"], packed["position_ids"]
    for b, length in enumerate(lengths.tolist()):
        where = index == b
        assert int(where.sum()) == length and torch.equal(positions[where], torch.arange(length))
        for key in PER_POSITION:
            assert torch.equal(packed[key][where], padded[key][b, :length])
    padding = index == -1
    assert int((~padding).sum()) == int(lengths.sum()) and torch.equal(packed["attention_mask"].bool(), ~padding)
    assert (packed["input_ids"][padding] == PAD).all() and (packed["token_type_ids"][padding] == 0).all()
    assert (packed["mlm_labels"][padding] == -100).all() and (packed["mvm_labels"][padding] == -100).all()
