"""Decoding for the extractor: a DataLoader-friendly stream of uint8 clip chunks from many videos.

Each worker process decodes its share of the videos and yields messages the main process turns
into batches: ``ClipChunk`` (up to ``chunk_clips`` clips of one video, in order), then one
``VideoEnd`` (clip count, truncation note) or ``VideoFailed`` (reason) per video. Only uint8 crosses
the process boundary (normalisation happens next to the model).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator, NamedTuple

import numpy as np
import torch

from videobert.video.reader import make_decoder, truncation_of
from videobert.video.sampling import ClipSpec
from videobert.video.types import DecodeReport

VIDEO_EXTENSIONS = frozenset({".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts",
                              ".flv", ".wmv", ".3gp", ".ogv"})


class ClipChunk(NamedTuple):
    video: int            # index into the extractor's video list
    frames: torch.Tensor  # uint8 [k, T, S, S, 3]
    times: np.ndarray     # float64 [k, 2] start/end s


class VideoEnd(NamedTuple):
    video: int
    clips: int
    note: str | None      # truncation warning text, if decoding stopped short


class VideoFailed(NamedTuple):
    video: int
    reason: str


def list_videos(source: str | os.PathLike) -> list[Path]:
    """Videos in a directory (by extension, sorted) or named in a list file (one path a line,
    relative to the list's folder; blank and ``#`` lines skipped). Ids (file stems) must be unique."""
    source = Path(source)
    if source.is_dir():
        videos = sorted(p for p in source.iterdir() if p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file())
    elif source.is_file():
        lines = [line.strip() for line in source.read_text(encoding="utf-8").splitlines()]
        videos = [source.parent / line for line in lines if line and not line.startswith("#")]
    else:
        raise FileNotFoundError(f"--videos {source}: neither a directory nor a list file")
    seen: dict[str, Path] = {}
    for video in videos:
        if video.stem in seen:
            raise ValueError(f"two videos share the id {video.stem!r}: {seen[video.stem]} and {video}")
        seen[video.stem] = video
    return videos


class ClipChunks(torch.utils.data.IterableDataset):
    """Iterates ``(index, path)`` pairs, split across DataLoader workers, into messages."""

    def __init__(self, videos: list[tuple[int, Path]], spec: ClipSpec, backend: str = "pyav", chunk_clips: int = 8,
                 pyav_threads: int | None = None):
        super().__init__()
        self.videos = videos
        self.spec = spec
        self.backend = backend
        self.chunk_clips = chunk_clips
        self.pyav_threads = pyav_threads

    def __iter__(self) -> Iterator[ClipChunk | VideoEnd | VideoFailed]:
        info = torch.utils.data.get_worker_info()
        mine = self.videos if info is None else self.videos[info.id::info.num_workers]
        if info is not None:
            torch.set_num_threads(1)  # the model owns the cores; decoders use FFmpeg's threads
        for index, path in mine:
            yield from self._video(index, path)

    def _video(self, index: int, path: Path) -> Iterator[ClipChunk | VideoEnd | VideoFailed]:
        report = DecodeReport()
        frames: list[np.ndarray] = []
        times: list[tuple[float, float]] = []
        count = 0
        try:
            decoder = make_decoder(path, self.backend, self.pyav_threads)
            for clip in decoder.raw_clips(path, self.spec, report):
                frames.append(clip.frames)
                times.append((clip.start, clip.end))
                count += 1
                if len(frames) == self.chunk_clips:
                    yield ClipChunk(index, torch.from_numpy(np.stack(frames)), np.array(times, dtype=np.float64))
                    frames, times = [], []
        except Exception as exc:  # one bad video must not stop the corpus: report it and go on
            yield VideoFailed(index, f"{type(exc).__name__}: {exc}")
            return
        if frames:
            yield ClipChunk(index, torch.from_numpy(np.stack(frames)), np.array(times, dtype=np.float64))
        truncation = truncation_of(path, report, count)
        yield VideoEnd(index, count, None if truncation is None else str(truncation))
