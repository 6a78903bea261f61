"""ActBERT's training data: corpus segments with their clips' S3D features, regions and actions.

``ActBertDataset`` is ``videobert.corpus.PretrainingDataset`` restricted to video-text examples
(ActBERT trains on narrated clips only; the paper's augmentation and negatives as VideoBERT's),
each example carrying its clips as rows of a :class:`~videobert.models.actbert.clips.ClipStore`
(the corpus ``words`` rows are the videos' clips in order, so a segment's word range is its clip
range) and each clip's action label. It is deterministic in (seed, epoch, position), shardable
and resumable exactly as ``PretrainingDataset`` is, whose state it keeps.

``ActBertCollator`` lays a batch out and masks each stream (module ``videobert.corpus.collator``'s
counter-based draws from each example's seed, one purpose per stream, ``max(1, round(p·n))``
positions of each): text as VideoBERT's text (80% ``[MASK]``, 10% random, 10% kept), actions and
object regions by zeroing their features (the model reads ``[MASK]`` there; a region keeps its
location). Masked positions of mismatched pairs (``aligned`` = 0) carry no labels, as in
VideoBERT's collator: their text does not describe their clips.
"""

from __future__ import annotations

import os
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import IterableDataset

from videobert.corpus import MaskingCollator, PretrainingDataset
from videobert.corpus.collator import select_masked
from videobert.corpus.store import CorpusSplit
from videobert.models.actbert.clips import WHOLE_FRAME, ClipStore
from videobert.text.actions import IGNORE, ActionVocab
from videobert.vocab import TEXT_ONLY, UnifiedVocab

_ACTIONS, _REGIONS = 0x41435431, 0x52454731  # purposes of the action / region masking draws


def corpus_clip_rows(corpus: CorpusSplit, store: ClipStore) -> np.ndarray:
    """int64 ``[W]``: the store row of each of the split's words (its videos' clips); -1 for the
    words of a video the store left out (its region detection failed): their examples keep their
    text and read no clips."""
    rows = np.zeros(len(corpus.words), dtype=np.int64)
    skipped = set(store.skipped_videos)
    for v, video_id in enumerate(corpus.video_ids):
        lo, hi = int(corpus.videos[v, 0]), int(corpus.videos[v, 1])
        if video_id in skipped:
            rows[lo:hi] = -1
            continue
        store_rows = store.rows(video_id)
        if len(store_rows) != hi - lo:
            raise ValueError(f"video {video_id!r} has {hi - lo} clips in the corpus but {len(store_rows)} in the clip store")
        rows[lo:hi] = store_rows
    return rows


def corpus_action_labels(corpus: CorpusSplit, actions: ActionVocab, decode) -> np.ndarray:
    """int64 ``[W]``: each word's (clip's) action, that of the sentence it belongs to (-100: none);
    ``decode(ids) -> str`` is the corpus's tokenizer."""
    labels = np.full(len(corpus.words), IGNORE, dtype=np.int64)
    for _, text_lo, text_hi, word_lo, word_hi in corpus.sentences:
        labels[word_lo:word_hi] = actions.label(decode(corpus.text_ids[text_lo:text_hi].tolist()))
    return labels


def sentences_of(corpus: CorpusSplit, decode) -> list[str]:
    """The split's sentences as text (for an action vocabulary of the most frequent verbs)."""
    return [decode(corpus.text_ids[lo:hi].tolist()) for _, lo, hi, _, _ in corpus.sentences]


class ActBertDataset(IterableDataset):
    """Examples ``{"text_ids", "clips" (store rows), "actions" (labels per clip), "aligned", "seed"}``;
    ``clips`` is empty where the segment's video was left out of the store (``corpus_clip_rows``)."""

    def __init__(self, corpus_dir: str | os.PathLike, clip_rows: np.ndarray, action_labels: np.ndarray,
                 split: str = "train", seed: int = 0, rank: int | None = None, world_size: int | None = None,
                 negative_rate: float = 0.5, concat_prob: float = 0.5, max_concat: int = 3, max_stride: int = 5,
                 epoch_length: int | None = None) -> None:
        super().__init__()
        self.examples = PretrainingDataset(corpus_dir, split=split, seed=seed, rank=rank, world_size=world_size,
                                           stream_weights=(0.0, 0.0, 1.0), negative_rate=negative_rate,
                                           concat_prob=concat_prob, max_concat=max_concat, max_stride=max_stride,
                                           epoch_length=epoch_length, with_word_rows=True)
        self.clip_rows, self.action_labels = clip_rows, action_labels

    def __len__(self) -> int:
        return len(self.examples)

    def set_epoch(self, epoch: int) -> None:
        self.examples.set_epoch(epoch)

    def state_dict(self, consumed: int | None = None) -> dict:
        return self.examples.state_dict(consumed)

    def load_state_dict(self, state: dict) -> None:
        self.examples.load_state_dict(state)

    def __iter__(self) -> Iterator[dict]:
        for example in self.examples:
            rows = np.asarray(example["word_rows"], dtype=np.int64)
            rows = rows[self.clip_rows[rows] >= 0]  # clips of a video the store left out are not read
            yield {"text_ids": example["text_ids"], "clips": self.clip_rows[rows].tolist(),
                   "actions": self.action_labels[rows].tolist(), "aligned": example["aligned"], "seed": example["seed"]}


def pad_rows(arrays: Sequence[np.ndarray], width: int, fill: float, dtype: Any) -> np.ndarray:
    """Stack ``[n_b, ...]`` arrays into ``[B, width, ...]``, padded with ``fill``."""
    trailing = arrays[0].shape[1:]
    out = np.full((len(arrays), width, *trailing), fill, dtype=dtype)
    for b, array in enumerate(arrays):
        out[b, : len(array)] = array
    return out


class ActBertCollator:
    """``collator(examples) -> dict[str, torch.Tensor]`` for ``ActBertForPretraining(**batch)``.

    ``max_text`` tokens of text (with ``[CLS]`` / ``[SEP]``), ``max_clips`` clips (longer segments
    keep their first clips), the store's regions of each clip (whole frame first). An example
    without clips (its video was left out of the store) reads one ``[MASK]`` action and one
    ``[MASK]`` whole-frame region, the model's "nothing seen" as in scoring (every row needs a real
    key in each stream), and has no action, object or matching labels."""

    def __init__(self, store: ClipStore, text_vocab_size: int, max_text: int = 64, max_clips: int = 32,
                 mask_prob: float = 0.15, pad_to_multiple_of: int = 8) -> None:
        self.store, self.max_clips, self.mask_prob = store, max_clips, mask_prob
        self.multiple = pad_to_multiple_of
        # text alone through VideoBERT's collator: the same layout, masking and checks for the text stream
        self.text = MaskingCollator(UnifiedVocab(text_vocab_size=text_vocab_size, num_visual_words=1), max_length=max_text,
                                    mask_prob=mask_prob, pad_to_multiple_of=pad_to_multiple_of)

    def _width(self, lengths: Sequence[int]) -> int:
        return -(-max(lengths) // self.multiple) * self.multiple

    def __call__(self, examples: Sequence[dict]) -> dict[str, torch.Tensor]:
        text = self.text([{"stream": TEXT_ONLY, "text_ids": ex["text_ids"], "visual_words": [], "aligned": -100,
                           "seed": ex["seed"]} for ex in examples])
        aligned = np.array([ex["aligned"] for ex in examples], dtype=np.int64)
        labelled = aligned != 0
        seeds = np.array([ex["seed"] % 2**64 for ex in examples], dtype=np.uint64)
        mlm_labels = text["mlm_labels"].numpy().copy()
        mlm_labels[~labelled] = IGNORE

        clips = [np.asarray(ex["clips"][: self.max_clips], dtype=np.int64) for ex in examples]
        unseen = np.array([len(c) == 0 for c in clips])
        store = self.store
        action_rows = [store.actions[c] if len(c) else np.zeros((1, store.action_dim), np.float32) for c in clips]
        # rounded up for the kernels but never past max_clips: action positions are clip indices,
        # and ClipEmbeddings has max_clips of them
        action_width = min(self.max_clips, self._width([len(a) for a in action_rows]))
        action_real = pad_rows([np.ones(len(a), bool) for a in action_rows], action_width, False, bool)
        action_masked = select_masked(action_real, seeds, self.mask_prob, purpose=_ACTIONS)
        action_masked[unseen, 0] = True
        actions = pad_rows(action_rows, action_width, 0.0, np.float32)
        actions[action_masked] = 0.0
        action_labels = pad_rows([np.asarray(ex["actions"][: self.max_clips], np.int64) for ex in examples],
                                action_width, IGNORE, np.int64)
        action_labels = np.where(action_masked & labelled[:, None], action_labels, IGNORE)

        nothing_seen = (np.zeros((1, store.region_dim), np.float32), WHOLE_FRAME[None],
                        np.zeros((1, store.num_classes), np.float32), np.zeros(1, np.int64), np.zeros(1, bool))
        regions = [store.regions(c) if len(c) else nothing_seen for c in clips]
        region_width = self._width([len(r[3]) for r in regions])
        region_features = pad_rows([r[0] for r in regions], region_width, 0.0, np.float32)
        region_locations = pad_rows([r[1] for r in regions], region_width, 0.0, np.float32)
        region_targets = pad_rows([r[2] for r in regions], region_width, 0.0, np.float32)
        region_clips = pad_rows([r[3] for r in regions], region_width, 0, np.int64)
        region_real = pad_rows([np.ones(len(r[3]), bool) for r in regions], region_width, False, bool)
        is_object = pad_rows([r[4] for r in regions], region_width, False, bool)
        region_masked = select_masked(is_object, seeds, self.mask_prob, purpose=_REGIONS)
        region_labelled = region_masked & labelled[:, None]  # objects only: "nothing seen" has no class
        region_masked[unseen, 0] = True
        region_features[region_masked] = 0.0

        attention_mask = np.concatenate([text["attention_mask"].numpy(), action_real, region_real], axis=1).astype(np.int64)
        batch = {
            "input_ids": text["input_ids"].numpy(), "token_type_ids": text["token_type_ids"].numpy(),
            "attention_mask": attention_mask, "mlm_labels": mlm_labels,
            "action_features": actions, "action_masked": action_masked.astype(np.int64), "action_labels": action_labels,
            "region_features": region_features, "region_locations": region_locations, "region_clips": region_clips,
            "region_masked": region_masked.astype(np.int64), "region_targets": region_targets,
            "region_labelled": region_labelled,
            "matching_labels": np.where(np.isin(aligned, (0, 1)) & ~unseen, aligned, IGNORE),
        }
        return {key: torch.from_numpy(np.ascontiguousarray(value)) for key, value in batch.items()}
