"""``MaskingCollator``: example dicts -> the batch of docs/ARCHITECTURE.md, with BERT masking.

Layout (token types in brackets), as in ``videobert.vocab``::

    video-text   [CLS](0) text(0) [>](1) video(1) [SEP](1)
    text-only    [CLS](0) text(0) [SEP](0)
    video-only   [CLS](0) [>](1) video(1) [SEP](1)

Truncation to ``max_length`` is longest-first: the shorter of text and video is kept whole when it
fits in half the room; both are cut from their ends. Rows are padded with ``[PAD]`` to the longest
row rounded up to a multiple of ``pad_to_multiple_of`` (but never past ``max_length``).

Masking, per example and per modality: ``max(1, round(mask_prob * n))`` of its n text (and,
separately, video) tokens are chosen, so every example with text has MLM labels and every one with
video has MVM labels; of those 80% become ``[MASK]``, 10% a random token of the same modality
(text: any text id but the specials; video: any visual word), 10% stay. Special tokens are never
chosen. Labels are -100 elsewhere.

Misaligned video-text examples (``aligned`` = 0, the alignment objective's negatives) are masked
like the others but carry no masked-token labels: their text does not describe their video, so
predicting masked tokens of one from the other would teach the model that the two modalities are
unrelated (LXMERT leaves mismatched pairs out of masked-token prediction for the same reason).
Their inputs are still masked, or the mere presence of ``[MASK]`` would tell the alignment head
which pairs are aligned.

Packing (``pack_sequences``): the padded rows are then laid end to end in fewer rows of the same
width, with ``position_ids`` and ``example_index`` telling the model where each example lies
(``videobert.corpus.packing``); masking is decided before, so it is the same either way.

Randomness: each draw is a counter-based hash (splitmix64) of (example seed, position in the row,
purpose), so an example is masked the same way in any batch, on any worker, in any order, and the
whole batch is masked in a few vectorised numpy operations.
"""

from __future__ import annotations

from itertools import chain
from typing import Sequence

import numpy as np
import torch

from videobert.corpus.packing import pack_batch
from videobert.vocab import TEXT_ONLY, VIDEO_ONLY, VIDEO_TEXT, UnifiedVocab

IGNORE = -100
_SELECT, _ACTION, _REPLACE = 1, 2, 3  # purposes of the random draws


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """A well-mixed 64-bit hash of each element of the uint64 array ``x`` (wrapping arithmetic)."""
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def hashed_bits(seeds: np.ndarray, length: int, purpose: int) -> np.ndarray:
    """``[B, length]`` uint64 random bits from per-row ``seeds [B]`` (uint64) and a ``purpose`` tag."""
    keys = _splitmix64(seeds ^ np.full_like(seeds, purpose * 0xD1B54A32D192ED03 % 2**64))
    return _splitmix64(keys[:, None] + np.arange(length, dtype=np.uint64)[None, :] * np.uint64(0x9E3779B97F4A7C15))


def _uniform(bits: np.ndarray) -> np.ndarray:
    return (bits >> np.uint64(11)).astype(np.float64) * 2.0**-53


def truncated_lengths(n_text: np.ndarray, n_video: np.ndarray, budget: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Longest-first truncation of text and video lengths to ``budget`` tokens (all ``[B]``)."""
    text = np.minimum(n_text, np.maximum(budget - n_video, (budget + 1) // 2))
    return text, np.minimum(n_video, budget - text)


class MaskingCollator:
    """``collator(examples) -> dict[str, torch.Tensor]``; see the module docstring."""

    def __init__(self, vocab: UnifiedVocab | None = None, max_length: int = 512, mask_prob: float = 0.15,
                 mask_token_prob: float = 0.8, random_token_prob: float = 0.1, pad_to_multiple_of: int = 8,
                 pack_sequences: bool = False):
        self.vocab = vocab or UnifiedVocab()
        if max_length < 3:
            raise ValueError(f"max_length must be >= 3 ([CLS] [>] [SEP]), got {max_length}")
        if not 0 <= mask_prob <= 1 or mask_token_prob < 0 or random_token_prob < 0 or mask_token_prob + random_token_prob > 1:
            raise ValueError("need 0 <= mask_prob <= 1 and mask_token_prob + random_token_prob <= 1 (both >= 0)")
        self.max_length, self.mask_prob = max_length, mask_prob
        self.mask_token_prob, self.random_token_prob = mask_token_prob, random_token_prob
        self.pad_to_multiple_of = pad_to_multiple_of
        self.pack_sequences = pack_sequences
        specials = np.array(self.vocab.special_ids)
        self._text_pool = np.setdiff1d(np.arange(self.vocab.text_vocab_size), specials)  # random text replacements
        self._forbidden_text = specials[specials < self.vocab.text_vocab_size]
        self._forbidden_text = self._forbidden_text[self._forbidden_text != self.vocab.unk_id]  # [UNK] is ordinary text

    def _check(self, examples: Sequence[dict], streams: np.ndarray, aligned: np.ndarray, text: np.ndarray, video: np.ndarray) -> None:
        if np.any((streams < TEXT_ONLY) | (streams > VIDEO_TEXT)):
            raise ValueError(f"example {int(np.argmax((streams < 0) | (streams > 2)))}: stream must be 0, 1 or 2")
        for b, ex in enumerate(examples):
            if (ex["stream"] == TEXT_ONLY and ex["visual_words"]) or (ex["stream"] == VIDEO_ONLY and ex["text_ids"]):
                raise ValueError(f"example {b}: a {['text-only', 'video-only'][ex['stream']]} example has the other modality")
        bad = (streams == VIDEO_TEXT) != np.isin(aligned, (0, 1))
        if np.any(bad):
            raise ValueError(f"example {int(np.argmax(bad))}: 'aligned' must be 0/1 for video-text examples and -100 otherwise")
        if text.size and (text.min() < 0 or text.max() >= self.vocab.text_vocab_size or np.isin(text, self._forbidden_text).any()):
            raise ValueError(f"text_ids must be WordPiece ids in [0, {self.vocab.text_vocab_size}) without special tokens")
        if video.size and (video.min() < 0 or video.max() >= self.vocab.num_visual_words):
            raise ValueError(f"visual_words must lie in [0, {self.vocab.num_visual_words}), got [{video.min()}, {video.max()}]")

    def __call__(self, examples: Sequence[dict]) -> dict[str, torch.Tensor]:
        vocab = self.vocab
        streams = np.array([ex["stream"] for ex in examples], dtype=np.int64)
        aligned = np.array([ex["aligned"] for ex in examples], dtype=np.int64)
        seeds = np.array([ex["seed"] % 2**64 for ex in examples], dtype=np.uint64)
        n_text = np.array([len(ex["text_ids"]) for ex in examples], dtype=np.int64)
        n_video = np.array([len(ex["visual_words"]) for ex in examples], dtype=np.int64)
        budget = self.max_length - np.where(streams == TEXT_ONLY, 2, 3)
        n_text, n_video = truncated_lengths(n_text, n_video, budget)
        text = np.fromiter(chain.from_iterable(ex["text_ids"][:n] for ex, n in zip(examples, n_text.tolist())), np.int64, int(n_text.sum()))
        video = np.fromiter(chain.from_iterable(ex["visual_words"][:n] for ex, n in zip(examples, n_video.tolist())), np.int64, int(n_video.sum()))
        self._check(examples, streams, aligned, text, video)

        has_video = streams != TEXT_ONLY
        lengths = 2 + n_text + has_video * (1 + n_video)
        multiple = self.pad_to_multiple_of
        width = min(-(-int(lengths.max()) // multiple) * multiple, self.max_length)
        rows = np.arange(len(examples))
        pos = np.arange(width)[None, :]
        is_text = (pos >= 1) & (pos < 1 + n_text[:, None])
        video_start = (2 + n_text)[:, None]
        is_video = has_video[:, None] & (pos >= video_start) & (pos < video_start + n_video[:, None])

        ids = np.full((len(examples), width), vocab.pad_id, dtype=np.int64)
        ids[:, 0] = vocab.cls_id
        ids[is_text] = text  # boolean indexing walks row-major: row b's text lands in row b, in order
        ids[is_video] = video + vocab.visual_offset
        ids[rows[has_video], 1 + n_text[has_video]] = vocab.video_sep_id
        ids[rows, lengths - 1] = vocab.sep_id
        attention_mask = (pos < lengths[:, None]).astype(np.int64)
        token_type_ids = (has_video[:, None] & (pos >= 1 + n_text[:, None]) & (pos < lengths[:, None])).astype(np.int64)

        selected_text = select_masked(is_text, seeds, self.mask_prob)
        selected_video = select_masked(is_video, seeds, self.mask_prob)
        labelled = (aligned != 0)[:, None]  # misaligned pairs: masked, but unlabelled (module docstring)
        mlm_labels = np.where(selected_text & labelled, ids, IGNORE)
        mvm_labels = np.where(selected_video & labelled, ids - vocab.visual_offset, IGNORE)

        action = _uniform(hashed_bits(seeds, width, _ACTION))
        replace = hashed_bits(seeds, width, _REPLACE)
        selected = selected_text | selected_video
        to_mask = selected & (action < self.mask_token_prob)
        to_random = selected & (action >= self.mask_token_prob) & (action < self.mask_token_prob + self.random_token_prob)
        random_text = self._text_pool[(replace % np.uint64(len(self._text_pool))).astype(np.int64)]
        random_video = (replace % np.uint64(vocab.num_visual_words)).astype(np.int64) + vocab.visual_offset
        ids = np.where(to_random & selected_text, random_text, ids)
        ids = np.where(to_random & selected_video, random_video, ids)
        ids[to_mask] = vocab.mask_id

        batch = {"input_ids": ids, "token_type_ids": token_type_ids, "attention_mask": attention_mask,
                 "mlm_labels": mlm_labels, "mvm_labels": mvm_labels, "alignment_labels": aligned, "stream": streams}
        if self.pack_sequences:
            batch = pack_batch(batch, vocab.pad_id)
        return {key: torch.from_numpy(value) for key, value in batch.items()}


def select_masked(candidates: np.ndarray, seeds: np.ndarray, mask_prob: float, purpose: int = _SELECT) -> np.ndarray:
    """``[B, L]`` bool: ``max(1, round(mask_prob * n))`` random candidates of each row (0 if none),
    drawn from the rows' ``seeds [B]`` (uint64) for ``purpose`` (other purposes: other draws)."""
    count = candidates.sum(axis=1)
    wanted = np.where((count > 0) & (mask_prob > 0), np.maximum(1, np.rint(count * mask_prob)), 0)
    score = np.where(candidates, _uniform(hashed_bits(seeds, candidates.shape[1], purpose)), 2.0)
    rank = np.argsort(np.argsort(score, axis=1, kind="stable"), axis=1, kind="stable")
    return candidates & (rank < wanted[:, None])
