"""``PretrainingDataset``: a corpus split as a deterministic, shardable, resumable stream of examples.

How an epoch is laid out (everything below is a function of ``(seed, epoch)`` only):

1. Each of ``N`` positions gets a stream, drawn with probabilities ``stream_weights`` (text-only,
   video-only, video-text). ``N`` is ``epoch_length`` or, by default, the number of units of the
   streams with non-zero weight (about one pass over the corpus).
2. The k-th position of stream s in the epoch takes unit ``perm_s[k mod n_s]``, with ``perm_s`` a
   fresh permutation of the stream's units each epoch (this is the shuffle).
3. The example at position p is built with a generator seeded by ``(seed, epoch, p)``; its
   ``"seed"`` (for the collator's masking) comes from the same generator.

So example p is the same whatever the number of ranks, workers or restarts. Ranks: rank r of w
takes positions ``r, r + w, r + 2w, ...`` of the first ``N - N % w`` (equal shares, as data
parallel training needs). Inside a rank, local positions are dealt to DataLoader workers in
blocks of ``worker_block`` (set it to the DataLoader's batch size: the DataLoader then yields
the rank's examples exactly in local position order).

Resuming mid-epoch exactly: the state is ``{"epoch", "position"}`` where position is the number of
examples this rank has consumed in the epoch. ``state_dict()`` counts the examples iterated in
this process (right with ``num_workers=0``); with workers, the main process cannot see what they
produced ahead, so pass what training consumed: ``state_dict(consumed=steps_in_epoch *
batch_size)``. ``load_state_dict(state)`` (or ``start=`` in the constructor) makes the next
iteration start there; iterations after a finished one start at 0. Call ``set_epoch(e)`` before
each epoch.

Memory: the epoch plan costs 9 bytes per position in each worker (an int8 stream and an int64
unit); the corpus itself is memory-mapped.
"""

from __future__ import annotations

import os
from typing import Iterator, Sequence

import numpy as np
from torch.utils.data import IterableDataset, get_worker_info

from videobert.corpus.examples import Augmentation, ExampleMaker
from videobert.corpus.store import CorpusSplit
from videobert.utils.dist import rank_and_world_size

_PLAN = 0x504C414E  # a tag that keeps the plan's random stream apart from the examples'


class EpochPosition:
    """Where a deterministic, resumable example stream stands: ``epoch``, ``start`` (where this
    iteration begins) and ``_position`` (examples consumed in the epoch), with ``seed`` and
    ``__len__`` (examples per epoch on this rank) from the dataset. ``state_dict`` /
    ``load_state_dict`` save and restore it (module docstring)."""

    seed: int
    epoch: int
    start: int
    _position: int

    def set_epoch(self, epoch: int) -> None:
        self.epoch, self.start, self._position = epoch, 0, 0

    def state_dict(self, consumed: int | None = None) -> dict:
        return {"epoch": self.epoch, "position": self._position if consumed is None else consumed, "seed": self.seed}

    def load_state_dict(self, state: dict) -> None:
        if state.get("seed", self.seed) != self.seed:
            raise ValueError(f"state was saved with seed {state['seed']}, this dataset has seed {self.seed}")
        if not 0 <= state["position"] <= len(self):
            raise ValueError(f"position {state['position']} is outside the epoch's {len(self)} examples")
        self.epoch, self.start, self._position = state["epoch"], state["position"], state["position"]


class PretrainingDataset(EpochPosition, IterableDataset):
    """Examples ``{"stream", "text_ids", "visual_words", "aligned", "seed"}`` from a corpus split.

    ``stream_weights``: probabilities (unnormalised) of text-only, video-only, video-text;
    ``negative_rate``: share of video-text examples whose text comes from another video;
    ``concat_prob`` / ``max_concat`` / ``max_stride``: augmentation (see ``videobert.corpus.examples``);
    ``with_word_rows``: examples also carry ``"word_rows"``, their words' rows of the split's ``words``.
    """

    def __init__(self, corpus_dir: str | os.PathLike, split: str = "train", seed: int = 0,
                 rank: int | None = None, world_size: int | None = None,
                 stream_weights: Sequence[float] = (1.0, 1.0, 1.0), negative_rate: float = 0.5,
                 concat_prob: float = 0.5, max_concat: int = 3, max_stride: int = 5,
                 epoch_length: int | None = None, worker_block: int = 1, epoch: int = 0, start: int = 0,
                 with_word_rows: bool = False):
        super().__init__()
        self.corpus_dir, self.split, self.seed = corpus_dir, split, seed
        self.rank, self.world_size = rank_and_world_size(rank, world_size)
        self.corpus = CorpusSplit(corpus_dir, split)
        segment = self.corpus.info["config"].get("words_per_video_segment", 16)
        self.maker = ExampleMaker(self.corpus, Augmentation(concat_prob, max_concat, max_stride, negative_rate, segment), with_word_rows)
        self.units = np.array([self.maker.units(s) for s in range(3)], dtype=np.int64)
        weights = np.asarray(stream_weights, dtype=np.float64)
        if weights.shape != (3,) or np.any(weights < 0):
            raise ValueError(f"stream_weights must be 3 non-negative numbers, got {list(stream_weights)}")
        weights = np.where(self.units > 0, weights, 0.0)  # a stream without units cannot be drawn
        if weights.sum() == 0:
            raise ValueError(f"{corpus_dir}/{split}: no units in any stream with a non-zero weight (units per stream: {self.units.tolist()})")
        self.weights = weights / weights.sum()
        self.epoch_length = int(epoch_length if epoch_length is not None else self.units[self.weights > 0].sum())
        self.worker_block = worker_block
        self.epoch, self.start, self._position = epoch, start, start
        self._plan_cache: tuple[int, np.ndarray, np.ndarray] | None = None

    def __len__(self) -> int:
        """Examples per epoch on this rank."""
        return self.epoch_length // self.world_size

    def plan(self) -> tuple[np.ndarray, np.ndarray]:
        """This epoch's ``(streams [N] int8, units [N] int64)`` for all positions."""
        if self._plan_cache is None or self._plan_cache[0] != self.epoch:
            rng = np.random.default_rng([self.seed, self.epoch, _PLAN])
            streams = rng.choice(3, size=self.epoch_length, p=self.weights).astype(np.int8)
            units = np.zeros(self.epoch_length, dtype=np.int64)
            for s in range(3):
                where = np.flatnonzero(streams == s)
                if len(where):
                    units[where] = rng.permutation(self.units[s])[np.arange(len(where)) % self.units[s]]
            self._plan_cache = (self.epoch, streams, units)
        return self._plan_cache[1], self._plan_cache[2]

    def example(self, position: int) -> dict:
        """The example at global ``position`` of the current epoch."""
        streams, units = self.plan()
        rng = np.random.default_rng([self.seed, self.epoch, position])
        example = self.maker.example(int(streams[position]), int(units[position]), rng)
        example["seed"] = int(rng.integers(2**63 - 1))
        return example

    def local_positions(self) -> range:
        """Local positions (0 .. len-1) this process yields in this iteration, before worker dealing."""
        return range(self.start, len(self))

    def __iter__(self) -> Iterator[dict]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        positions = self.local_positions()
        for k in positions:
            if ((k - positions.start) // self.worker_block) % workers != worker:
                continue
            example = self.example(self.rank + k * self.world_size)
            if info is None:
                self._position = k + 1  # counted when handed over: the consumer has it
            yield example
        if info is None:
            self.start = 0  # a finished iteration is not resumed; the next one starts the epoch over

