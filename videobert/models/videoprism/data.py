"""VideoPrism's training data: clips of a clip store, chosen through a corpus split.

The corpus (``videobert.corpus``) stores each video's visual words in clip order, one word per
1.5 s clip, and each sentence's word range; a clip store (``videobert.video.clip_store``) keeps the
same clips' frames. So a sentence's word range *is* its clip range, and ``CorpusClips`` joins the
two (refusing a store whose clip counts disagree with the corpus).

- ``PairDataset`` (stages 1 and 3): one example per sentence with clips: ``{"frames", "text_ids", "seed"}``.
- ``ClipDataset`` (stage 2): video-only windows of ``ceil(num_frames / frames_per_clip)`` clips from
  every video of the split (transcribed or not): ``{"frames", "seed"}``.

``frames`` is uint8 ``[num_frames, S, S, 3]``: ``num_frames`` frames spread evenly over the clips'
frames, each taken at a random point of its share of time (a jitter drawn from the example's
generator). Both datasets are deterministic in ``(seed, epoch, position)`` as
``videobert.corpus.PretrainingDataset`` is (same rank / worker dealing, ``state_dict`` /
``load_state_dict``), so one process and two ranks read the same examples, and a resumed run
continues exactly.
"""

from __future__ import annotations

import math
import os
from typing import Iterator

import numpy as np
from torch.utils.data import IterableDataset, get_worker_info

from videobert.corpus.dataset import EpochPosition
from videobert.corpus.store import CorpusSplit
from videobert.utils.dist import rank_and_world_size
from videobert.video.clip_store import ClipStore

_ORDER = 0x56505253  # keeps the epoch order's random stream apart from the examples'


def spread_frames(available: int, count: int, offset: float = 0.5) -> np.ndarray:
    """Indices ``[count]`` of ``count`` frames spread over ``available`` ones: frame ``j`` is at
    ``(j + offset) / count`` of the way (``offset`` in [0, 1); 0.5: the middle of each share);
    with fewer frames than asked, frames repeat."""
    if available < 1 or count < 1:
        raise ValueError(f"cannot take {count} frames of {available}")
    return np.minimum(((np.arange(count) + offset) * available / count).astype(np.int64), available - 1)


class CorpusClips:
    """A corpus split's videos in a clip store: ``frames(video, clip_lo, clip_hi, count, offset)``."""

    def __init__(self, corpus_dir: str | os.PathLike, split: str, store: str | os.PathLike | ClipStore):
        self.corpus = CorpusSplit(corpus_dir, split)
        self.store = store if isinstance(store, ClipStore) else ClipStore(store)
        self.first_row = np.zeros(len(self.corpus.video_ids), dtype=np.int64)
        for v, video_id in enumerate(self.corpus.video_ids):
            lo, hi = (int(x) for x in self.corpus.videos[v, :2])
            rows = self.store.rows(video_id)
            if len(rows) != hi - lo:
                raise ValueError(f"video {video_id!r}: the corpus {corpus_dir} has {hi - lo} clips (visual words), the clip "
                                 f"store {self.store.directory} {len(rows)}: were they made with other clip settings?")
            self.first_row[v] = rows[0] if len(rows) else 0

    def clips(self, video: int) -> int:
        lo, hi = self.corpus.videos[video, :2]
        return int(hi - lo)

    def frames(self, video: int, clip_lo: int, clip_hi: int, count: int, offset: float = 0.5) -> np.ndarray:
        """uint8 ``[count, S, S, 3]`` spread over clips ``clip_lo .. clip_hi - 1`` of ``video``."""
        rows = self.first_row[video] + np.arange(clip_lo, clip_hi)
        frames = self.store.frames(rows).reshape(-1, self.store.size, self.store.size, 3)
        return frames[spread_frames(len(frames), count, offset)]


class _ExampleStream(EpochPosition, IterableDataset):
    """Units in a fresh random order each epoch; example ``p`` built from a generator seeded by
    ``(seed, epoch, p)``; rank ``r`` of ``w`` takes positions ``r, r + w, ...`` of the first
    ``N - N % w``; workers are dealt local positions in blocks of ``worker_block``."""

    def __init__(self, units: int, seed: int, rank: int | None, world_size: int | None, worker_block: int = 1):
        super().__init__()
        self.num_units, self.seed = units, seed
        self.rank, self.world_size = rank_and_world_size(rank, world_size)
        self.worker_block = worker_block
        self.epoch, self.start, self._position = 0, 0, 0
        self._order: tuple[int, np.ndarray] | None = None

    def __len__(self) -> int:
        """Examples per epoch on this rank."""
        return self.num_units // self.world_size

    def example(self, position: int) -> dict:
        """The example at global ``position`` of the current epoch."""
        if self._order is None or self._order[0] != self.epoch:
            self._order = (self.epoch, np.random.default_rng([self.seed, self.epoch, _ORDER]).permutation(self.num_units))
        unit = int(self._order[1][position])
        rng = np.random.default_rng([self.seed, self.epoch, position])
        example = self.make(unit, rng)
        example["seed"] = int(rng.integers(2**63 - 1))
        return example

    def make(self, unit: int, rng: np.random.Generator) -> dict:
        raise NotImplementedError

    def __iter__(self) -> Iterator[dict]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        for k in range(self.start, len(self)):
            if ((k - self.start) // self.worker_block) % workers != worker:
                continue
            example = self.example(self.rank + k * self.world_size)
            if info is None:
                self._position = k + 1
            yield example
        if info is None:
            self.start = 0


class PairDataset(_ExampleStream):
    """Stage 1: a sentence's text with frames from its clips."""

    def __init__(self, clips: CorpusClips, num_frames: int, seed: int = 0, rank: int | None = None,
                 world_size: int | None = None, worker_block: int = 1):
        corpus = clips.corpus
        self.clips, self.num_frames = clips, num_frames
        self.sentences = np.flatnonzero(corpus.sentences[:, 4] > corpus.sentences[:, 3])  # sentences with clips
        if not len(self.sentences):
            raise ValueError("the corpus split has no sentence that spans a clip: no text-video pairs")
        super().__init__(len(self.sentences), seed, rank, world_size, worker_block)

    def make(self, unit: int, rng: np.random.Generator) -> dict:
        video, text_lo, text_hi, word_lo, word_hi = (int(x) for x in self.clips.corpus.sentences[self.sentences[unit]])
        start = int(self.clips.corpus.videos[video, 0])
        frames = self.clips.frames(video, word_lo - start, word_hi - start, self.num_frames, float(rng.random()))
        return {"frames": frames, "text_ids": self.clips.corpus.text_ids[text_lo:text_hi].tolist()}


class ClipDataset(_ExampleStream):
    """Stage 2: video-only windows of clips from every video of the split."""

    def __init__(self, clips: CorpusClips, num_frames: int, seed: int = 0, rank: int | None = None,
                 world_size: int | None = None, worker_block: int = 1):
        self.clips, self.num_frames = clips, num_frames
        self.window = math.ceil(num_frames / clips.store.frames_per_clip)
        units = [(v, lo) for v in range(len(clips.corpus.video_ids)) for lo in range(0, clips.clips(v), self.window)]
        if not units:
            raise ValueError("the corpus split has no clips; no video-only examples")
        self.units = np.array(units, dtype=np.int64)
        super().__init__(len(self.units), seed, rank, world_size, worker_block)

    def make(self, unit: int, rng: np.random.Generator) -> dict:
        video, lo = (int(x) for x in self.units[unit])
        hi = min(lo + self.window, self.clips.clips(video))
        return {"frames": self.clips.frames(video, lo, hi, self.num_frames, float(rng.random()))}
