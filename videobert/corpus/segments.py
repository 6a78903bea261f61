"""Segments as in the paper: which visual words go with which sentence.

A clip belongs to a sentence when the clip's midpoint lies in the sentence's span
``[start, end)``: clips are 1.5 s and many sentences are shorter than two clips, so asking for a
clip to lie wholly inside a sentence would leave most short sentences without video. Videos
without ASR are cut into fixed segments of 16 visual words.
"""

from __future__ import annotations

import numpy as np

WORDS_PER_VIDEO_SEGMENT = 16


def check_clip_times(times: np.ndarray, video_id: str = "") -> np.ndarray:
    """``times [n, 2]`` start/end seconds -> clip midpoints ``[n]``; they must not go back in time."""
    times = np.asarray(times, dtype=np.float64)
    if times.ndim != 2 or times.shape[1] != 2:
        raise ValueError(f"video {video_id!r}: clip times must have shape [n, 2], got {list(times.shape)}")
    centers = times.mean(axis=1)
    if centers.size > 1 and np.any(np.diff(centers) < 0):
        at = int(np.argmax(np.diff(centers) < 0)) + 1
        raise ValueError(f"video {video_id!r}: clip {at} starts before clip {at - 1} (clips must be in time order)")
    return centers


def sentence_word_ranges(spans: np.ndarray, clip_times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For sentences ``spans [S, 2]`` (start, end seconds) and clips ``clip_times [n, 2]`` in time
    order: ``(lo [S], hi [S])`` so that clips ``lo[s]:hi[s]`` are sentence ``s``'s video segment."""
    centers = check_clip_times(clip_times)
    spans = np.asarray(spans, dtype=np.float64).reshape(-1, 2)
    lo = np.searchsorted(centers, spans[:, 0], side="left")
    hi = np.maximum(lo, np.searchsorted(centers, spans[:, 1], side="left"))
    return lo.astype(np.int64), hi.astype(np.int64)


def fixed_word_ranges(num_words: int, size: int = WORDS_PER_VIDEO_SEGMENT) -> tuple[np.ndarray, np.ndarray]:
    """Consecutive segments of ``size`` words covering ``num_words`` (the last may be shorter)."""
    lo = np.arange(0, num_words, size, dtype=np.int64)
    return lo, np.minimum(lo + size, num_words)
