"""A clip store: every video's clips as uint8 frames at a model's size, decoded once, read by row.

Models that learn from pixels (VideoPrism) read frames, not S3D features. The store decodes each
video with the library's own decoders and clip sampling (``read_raw_clips``), on the *same clip
grid* as feature extraction: clip ``i`` covers ``[i, i + 1) x clip_seconds`` (1.5 s), so row ``k``
of a video here is the clip of the ``k``-th visual word of that video in a corpus. A clip keeps
``frames_per_clip`` frames, resampled at ``frames_per_clip / clip_seconds`` fps (slot ``j`` shows the
frame on screen at ``start + j / fps``), centre-cropped to ``size`` x ``size``.

Why a store rather than decoding in DataLoader workers (``benchmarks/bench_videoprism_data.py``,
measured alone on 2 cores; benchmarks/RESULTS.md): an example of the demo is 4 clips of one video.
Decoding them on the fly (open the file, decode from its start to the clips with PyAV at 32 px)
gave 36-38 examples/s on one worker, gathering them from the memory-mapped store 31,000-61,000,
and the demo's stage-1 training step consumes 269-275 examples/s: on the fly would need 7 workers
to keep the trainer busy, on a machine whose two cores the trainer already holds. Writing the store
for all 120 demo videos (2,000 clips x 4 frames of 32 x 32 px, 25 MB) takes 3-4 s (the demo's
``clips`` stage).

Layout of a store directory::

    fingerprint.json           the clip settings (``claim_output``: a rerun with others is refused)
    manifest.jsonl             per video: done (clips, truncation if any) / failed + reason
    <video_id>.times.npy       float64 [n, 2]  clip start / end seconds
    <video_id>.frames.npy      uint8 [n, F, S, S, 3]; written last, atomically: a video is in the
                               store once this file exists
"""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from videobert.utils.dist import rank_and_world_size, shard
from videobert.utils.fingerprint import FINGERPRINT_FILE, claim_output, read_fingerprint
from videobert.utils.io import atomic_path
from videobert.utils.manifest import Manifest

from .errors import TruncatedVideoWarning, VideoError
from .reader import read_raw_clips
from .sampling import ClipSpec

log = logging.getLogger(__name__)

FRAMES_SUFFIX = ".frames.npy"
TIMES_SUFFIX = ".times.npy"
STAGE = "clip store"


def clip_store_spec(frames_per_clip: int, size: int, clip_seconds: float = 1.5) -> ClipSpec:
    """The decoding spec of a store: ``frames_per_clip`` frames over each ``clip_seconds`` clip."""
    if frames_per_clip < 1 or clip_seconds <= 0:
        raise ValueError(f"frames_per_clip must be >= 1 and clip_seconds > 0, got {frames_per_clip}, {clip_seconds}")
    return ClipSpec(fps=frames_per_clip / clip_seconds, clip_frames=frames_per_clip, size=size, partial="pad")


def _save_npy(path: Path, array: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, array)


@dataclass
class ClipStoreSummary:
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)        # already in the store
    failed: dict[str, str] = field(default_factory=dict)    # video id -> reason
    clips: int = 0


def write_clip_store(videos: Sequence[str | os.PathLike], out: str | os.PathLike, frames_per_clip: int, size: int,
                     clip_seconds: float = 1.5, backend: str = "pyav", rank: int | None = None,
                     world_size: int | None = None, overwrite: bool = False) -> ClipStoreSummary:
    """Decode ``videos`` (this rank's shard) into the store at ``out``; a rerun skips finished
    videos. A video that cannot be decoded is recorded as failed (with the reason) and the rest go on."""
    out = Path(out)
    spec = clip_store_spec(frames_per_clip, size, clip_seconds)
    fingerprint = {"stage": STAGE, "fps": spec.fps, "clip_frames": spec.clip_frames, "size": spec.size,
                   "partial": spec.partial, "clip_seconds": clip_seconds, "backend": backend}
    rank, world_size = rank_and_world_size(rank, world_size)
    claim_output(out / FINGERPRINT_FILE, STAGE, fingerprint, overwrite=overwrite)
    manifest = Manifest(out / (f"manifest.rank{rank}.jsonl" if world_size > 1 else "manifest.jsonl"))
    summary = ClipStoreSummary()
    for path in shard(sorted(Path(v) for v in videos), rank, world_size):
        video_id = path.stem
        if (out / f"{video_id}{FRAMES_SUFFIX}").exists():
            summary.skipped.append(video_id)
            continue
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", TruncatedVideoWarning)
                clips = list(read_raw_clips(path, spec, backend))
            if not clips:
                raise VideoError(path, "no clip decoded")
        except VideoError as exc:
            log.warning("clip store: skipping %s: %s", path, exc)
            manifest.record(video_id, "failed", reason=str(exc))
            summary.failed[video_id] = str(exc)
            continue
        truncated = [str(w.message) for w in caught if issubclass(w.category, TruncatedVideoWarning)]
        _save_npy(out / f"{video_id}{TIMES_SUFFIX}", np.array([(c.start, c.end) for c in clips], dtype=np.float64))
        _save_npy(out / f"{video_id}{FRAMES_SUFFIX}", np.stack([c.frames for c in clips]).astype(np.uint8, copy=False))
        manifest.record(video_id, "done", clips=len(clips), truncated=truncated[0] if truncated else None)
        summary.done.append(video_id)
        summary.clips += len(clips)
    return summary


class ClipStore:
    """A finished store, read-only: rows are the clips of all its videos in video-id order.

    ``video_ids``, ``offsets [V + 1]`` (video v's rows are ``offsets[v] .. offsets[v + 1]``),
    ``frames_per_clip``, ``size``; ``rows(video_id)``, ``times(video_id) [n, 2]`` s,
    ``frames(rows) -> uint8 [len(rows), F, S, S, 3]``. Memory-mapped: many DataLoader workers can
    read one store."""

    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory)
        fingerprint = read_fingerprint(self.directory / FINGERPRINT_FILE)
        if fingerprint is None or fingerprint.get("stage") != STAGE:
            raise FileNotFoundError(f"{self.directory}: not a clip store (no {FINGERPRINT_FILE} of a {STAGE}); "
                                    "write one with `videobert extract --clips ...`")
        self.frames_per_clip, self.size = int(fingerprint["clip_frames"]), int(fingerprint["size"])
        self.clip_seconds = float(fingerprint["clip_seconds"])
        self.video_ids = sorted(p.name[: -len(FRAMES_SUFFIX)] for p in self.directory.glob(f"*{FRAMES_SUFFIX}")
                                if not p.name.startswith("."))
        self._index = {video_id: v for v, video_id in enumerate(self.video_ids)}
        self._frames = [np.load(self.directory / f"{i}{FRAMES_SUFFIX}", mmap_mode="r") for i in self.video_ids]
        self.offsets = np.concatenate([[0], np.cumsum([len(f) for f in self._frames])]).astype(np.int64)
        self._video_of_row = np.repeat(np.arange(len(self.video_ids)), np.diff(self.offsets))

    def __len__(self) -> int:
        """Clips in the store."""
        return int(self.offsets[-1])

    def _video(self, video_id: str) -> int:
        if video_id not in self._index:
            raise KeyError(f"video {video_id!r} is not in the clip store {self.directory} "
                           f"({len(self.video_ids)} videos; failed ones are in its manifest)")
        return self._index[video_id]

    def rows(self, video_id: str) -> np.ndarray:
        """The store rows ``[n]`` int64 of ``video_id``'s clips, in time order."""
        v = self._video(video_id)
        return np.arange(self.offsets[v], self.offsets[v + 1], dtype=np.int64)

    def times(self, video_id: str) -> np.ndarray:
        """Clip start / end seconds ``[n, 2]`` float64 of ``video_id``."""
        self._video(video_id)
        return np.load(self.directory / f"{video_id}{TIMES_SUFFIX}")

    def frames(self, rows: np.ndarray) -> np.ndarray:
        """uint8 ``[len(rows), F, S, S, 3]`` of the given store rows."""
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        if rows.size and (rows.min() < 0 or rows.max() >= len(self)):
            raise IndexError(f"clip rows must lie in [0, {len(self)}) of {self.directory}, got [{rows.min()}, {rows.max()}]")
        out = np.empty((len(rows), self.frames_per_clip, self.size, self.size, 3), dtype=np.uint8)
        videos = self._video_of_row[rows]
        for k, (row, v) in enumerate(zip(rows, videos)):
            out[k] = self._frames[v][row - self.offsets[v]]
        return out
