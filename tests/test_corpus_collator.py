"""MaskingCollator: the batch contract of docs/ARCHITECTURE.md and BERT masking invariants."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from videobert.corpus import MaskingCollator
from videobert.corpus.collator import truncated_lengths
from videobert.vocab import TEXT_ONLY, VIDEO_ONLY, VIDEO_TEXT, UnifiedVocab

VOCAB = UnifiedVocab(num_visual_words=12**2)
CLS, SEP, PAD, MASK, VSEP, OFF = VOCAB.cls_id, VOCAB.sep_id, VOCAB.pad_id, VOCAB.mask_id, VOCAB.video_sep_id, VOCAB.visual_offset
KEYS = {"input_ids", "token_type_ids", "attention_mask", "mlm_labels", "mvm_labels", "alignment_labels", "stream"}


def example(stream, text=(), words=(), aligned=None, seed=0):
    aligned = (1 if stream == VIDEO_TEXT else -100) if aligned is None else aligned
    return {"stream": stream, "text_ids": list(text), "visual_words": list(words), "aligned": aligned, "seed": seed}


def test_layout_of_the_three_streams():
    batch = MaskingCollator(VOCAB, mask_prob=0.0)([
        example(VIDEO_TEXT, [2000, 2001], [5, 6, 7], aligned=0),
        example(TEXT_ONLY, [3000]),
        example(VIDEO_ONLY, words=[143]),
    ])
    assert set(batch) == KEYS and all(v.dtype == torch.int64 for v in batch.values())
    assert batch["input_ids"].shape == (3, 8)
    assert batch["input_ids"].tolist() == [
        [CLS, 2000, 2001, VSEP, OFF + 5, OFF + 6, OFF + 7, SEP],
        [CLS, 3000, SEP, PAD, PAD, PAD, PAD, PAD],
        [CLS, VSEP, OFF + 143, SEP, PAD, PAD, PAD, PAD],
    ]
    assert batch["token_type_ids"].tolist() == [[0, 0, 0, 1, 1, 1, 1, 1], [0] * 8, [0, 1, 1, 1, 0, 0, 0, 0]]
    assert batch["attention_mask"].tolist() == [[1] * 8, [1, 1, 1, 0, 0, 0, 0, 0], [1, 1, 1, 1, 0, 0, 0, 0]]
    assert batch["alignment_labels"].tolist() == [0, -100, -100] and batch["stream"].tolist() == [2, 0, 1]
    assert (batch["mlm_labels"] == -100).all() and (batch["mvm_labels"] == -100).all()


def test_padding_to_multiple_of_8_but_never_past_max_length():
    collate = MaskingCollator(VOCAB, max_length=20)
    assert collate([example(TEXT_ONLY, [2000] * 7)])["input_ids"].shape == (1, 16)
    assert collate([example(TEXT_ONLY, [2000] * 30)])["input_ids"].shape == (1, 20)


def test_longest_first_truncation():
    assert truncated_lengths(np.array([100, 10, 100, 5]), np.array([10, 100, 100, 5]), np.array([50] * 4)) == (
        pytest.approx([40, 10, 25, 5]), pytest.approx([10, 40, 25, 5]))
    batch = MaskingCollator(VOCAB, max_length=16, mask_prob=0.0)([example(VIDEO_TEXT, range(2000, 2020), range(3))])
    row = batch["input_ids"][0].tolist()
    assert row == [CLS, *range(2000, 2010), VSEP, OFF, OFF + 1, OFF + 2, SEP]


def test_masking_rates_80_10_10():
    collate = MaskingCollator(VOCAB, max_length=512)
    examples = [example(VIDEO_TEXT, range(2000, 2100), range(100), seed=s) for s in range(40)]
    batch, plain = collate(examples), MaskingCollator(VOCAB, max_length=512, mask_prob=0.0)(examples)
    selected = (batch["mlm_labels"] != -100) | (batch["mvm_labels"] != -100)
    assert selected.sum().item() == 40 * 2 * 15
    ids, original = batch["input_ids"][selected], plain["input_ids"][selected]
    masked, kept = (ids == MASK).float().mean().item(), (ids == original).float().mean().item()
    assert 0.75 < masked < 0.85 and 0.07 < kept < 0.13 and 0.07 < 1 - masked - kept < 0.13


def test_misaligned_pairs_are_masked_alike_but_unlabelled():
    collate = MaskingCollator(VOCAB, mask_prob=0.5)
    aligned, misaligned = (example(VIDEO_TEXT, range(2000, 2010), range(10), aligned=a, seed=7) for a in (1, 0))
    batch = collate([aligned, misaligned])
    assert (batch["mlm_labels"][0] != -100).sum() == 5 and (batch["mvm_labels"][0] != -100).sum() == 5
    assert (batch["mlm_labels"][1] == -100).all() and (batch["mvm_labels"][1] == -100).all()
    # the same masks on the same seed: [MASK] tokens do not give away which pair is misaligned
    assert torch.equal(batch["input_ids"][0], batch["input_ids"][1])
    assert batch["alignment_labels"].tolist() == [1, 0]


def test_same_example_same_masks_in_any_batch():
    collate = MaskingCollator(VOCAB)
    target = example(VIDEO_TEXT, range(2000, 2040), range(50, 80), seed=123)
    alone = collate([target])
    crowd = collate([example(TEXT_ONLY, range(3000, 3200), seed=1), target, example(VIDEO_ONLY, words=range(9), seed=2)])
    n = int(alone["attention_mask"].sum())
    for key in ("input_ids", "token_type_ids", "mlm_labels", "mvm_labels"):
        assert torch.equal(alone[key][0, :n], crowd[key][1, :n])
    other_seed = collate([dict(target, seed=124)])
    assert not torch.equal(alone["input_ids"], other_seed["input_ids"])


def test_bad_examples_are_refused():
    collate = MaskingCollator(VOCAB)
    with pytest.raises(ValueError, match=r"visual_words must lie in \[0, 144\)"):
        collate([example(VIDEO_ONLY, words=[144])])
    with pytest.raises(ValueError, match="without special tokens"):
        collate([example(TEXT_ONLY, [2000, SEP])])
    with pytest.raises(ValueError, match="aligned"):
        collate([example(VIDEO_TEXT, [2000], [1], aligned=-100)])
    with pytest.raises(ValueError, match="text-only example has the other modality"):
        collate([example(TEXT_ONLY, [2000], [1])])


examples_strategy = st.lists(
    st.tuples(
        st.sampled_from([TEXT_ONLY, VIDEO_ONLY, VIDEO_TEXT]),
        st.lists(st.integers(999, VOCAB.text_vocab_size - 1), max_size=40),
        st.lists(st.integers(0, VOCAB.num_visual_words - 1), max_size=40),
        st.integers(0, 1),
        st.integers(0, 2**63 - 1),
    ),
    min_size=1, max_size=6,
)


def examples_of(items) -> list[dict]:
    """Valid examples from ``examples_strategy``'s items (each stream keeps only its modalities)."""
    return [example(s, t if s != VIDEO_ONLY else [], w if s != TEXT_ONLY else [], a if s == VIDEO_TEXT else -100, seed)
            for s, t, w, a, seed in items]


@settings(max_examples=80, deadline=None)
@given(examples_strategy, st.integers(3, 64), st.floats(0.0, 1.0))
def test_masking_invariants(items, max_length, mask_prob):
    examples = examples_of(items)
    batch = MaskingCollator(VOCAB, max_length=max_length, mask_prob=mask_prob)(examples)
    plain = MaskingCollator(VOCAB, max_length=max_length, mask_prob=0.0)(examples)
    # a misaligned pair is masked exactly as the same pair marked aligned, and has no labels
    as_aligned = MaskingCollator(VOCAB, max_length=max_length, mask_prob=mask_prob)(
        [dict(ex, aligned=1) if ex["aligned"] == 0 else ex for ex in examples])
    misaligned = batch["alignment_labels"] == 0
    assert torch.equal(batch["input_ids"], as_aligned["input_ids"])
    for key in ("mlm_labels", "mvm_labels"):
        assert (batch[key][misaligned] == -100).all() and torch.equal(batch[key][~misaligned], as_aligned[key][~misaligned])
    collated, batch = batch, dict(as_aligned, alignment_labels=batch["alignment_labels"])  # the checks below see every mask
    ids, orig = batch["input_ids"], plain["input_ids"]
    width = ids.shape[1]
    assert width <= max_length and (width % 8 == 0 or width == max_length)
    for key in ("token_type_ids", "attention_mask", "alignment_labels", "stream"):
        assert torch.equal(batch[key], plain[key])
    is_text = (plain["token_type_ids"] == 0) & (orig != CLS) & (orig != SEP) & (orig != PAD)
    is_video = orig >= OFF
    special = ~(is_text | is_video)
    mlm, mvm = batch["mlm_labels"], batch["mvm_labels"]
    # special tokens and padding are never chosen and never changed
    assert torch.equal(ids[special], orig[special]) and (mlm[special] == -100).all() and (mvm[special] == -100).all()
    assert ((mlm != -100) <= is_text).all() and ((mvm != -100) <= is_video).all()
    # labels are the original tokens; unchosen tokens are untouched
    assert torch.equal(mlm[mlm != -100], orig[mlm != -100]) and torch.equal(mvm[mvm != -100] + OFF, orig[mvm != -100])
    chosen = (mlm != -100) | (mvm != -100)
    assert torch.equal(ids[~chosen], orig[~chosen])
    # replacements stay in their modality
    text_now, video_now = ids[mlm != -100], ids[mvm != -100]
    assert ((text_now == MASK) | ((text_now < VOCAB.text_vocab_size) & ~torch.isin(text_now, torch.tensor(VOCAB.special_ids)))).all()
    assert ((video_now == MASK) | ((video_now >= OFF) & (video_now < VOCAB.size))).all()
    # exactly max(1, round(p * n)) tokens of each modality in each row
    for row in range(len(examples)):
        for labels, candidates in ((mlm, is_text), (mvm, is_video)):
            n = int(candidates[row].sum())
            want = 0 if n == 0 or mask_prob == 0 else max(1, int(np.rint(n * mask_prob)))
            assert int((labels[row] != -100).sum()) == want
    # deterministic
    again = MaskingCollator(VOCAB, max_length=max_length, mask_prob=mask_prob)(examples)
    assert all(torch.equal(collated[k], again[k]) for k in KEYS)
