"""Where the tasks get visual words: each video's words with their clip times.

A *video-word table* maps ``video_id -> (words int64 [n] in [0, num_visual_words),
times float64 [n, 2] clip start/end seconds)``, in time order. The demo passes one directly;
the command line builds it from extracted features and a fitted hierarchical k-means.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Iterable, Iterator, Mapping

import numpy as np

if TYPE_CHECKING:
    from videobert.tasks.annotations import Segment

log = logging.getLogger(__name__)

VideoWords = Mapping[str, tuple[np.ndarray, np.ndarray]]


def segment_words(words: np.ndarray, times: np.ndarray, start: float, end: float) -> np.ndarray:
    """The visual words whose clip centre lies in ``[start, end]`` seconds. ``[n], [n, 2] -> [m]``."""
    times = np.asarray(times, dtype=np.float64).reshape(-1, 2)
    words = np.asarray(words, dtype=np.int64)
    if len(words) != len(times):
        raise ValueError(f"{len(words)} words but {len(times)} clip times")
    centre = times.mean(axis=1)
    return words[(centre >= start) & (centre <= end)]


def segments_with_words(segments: Iterable["Segment"], video_words: VideoWords, skipped: dict[str, int] | None = None
                        ) -> Iterator[tuple["Segment", np.ndarray]]:
    """``(segment, its visual words [m >= 1])`` for each segment whose video is in ``video_words`` and
    holds at least one clip centre inside it (:func:`segment_words`); the others are counted in
    ``skipped`` under ``"missing_video"`` or ``"no_clips"``."""
    for seg in segments:
        reason = "missing_video"
        if seg.video_id in video_words:
            words = segment_words(*video_words[seg.video_id], seg.start, seg.end)
            if words.size:
                yield seg, words
                continue
            reason = "no_clips"
        if skipped is not None:
            skipped[reason] = skipped.get(reason, 0) + 1


def load_kmeans(path: str | os.PathLike):
    """A fitted ``HierarchicalKMeans`` read from ``path`` (safetensors)."""
    from videobert.visual_words import HierarchicalKMeans

    return HierarchicalKMeans.load(path)


def words_from_features(features_dir: str | os.PathLike, kmeans, video_ids: Iterable[str] | None = None
                        ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Assign every finished video's features (``videobert extract`` output) to visual words.

    ``video_ids`` keeps only those videos (e.g. a held-out split).
    """
    from videobert.features.store import iter_video_features

    wanted = None if video_ids is None else set(video_ids)
    table = {}
    for video_id, features, times in iter_video_features(features_dir):
        if wanted is not None and video_id not in wanted:
            continue
        words = np.asarray(kmeans.assign(np.asarray(features, dtype=np.float32)), dtype=np.int64)
        table[video_id] = (words, np.asarray(times, dtype=np.float64))
    if wanted is not None and wanted - set(table):
        log.warning("%d requested videos have no features in %s, e.g. %s", len(wanted - set(table)),
                    features_dir, sorted(wanted - set(table))[:3])
    return table


def save_video_words(path: str | os.PathLike, table: VideoWords) -> None:
    """Write a video-word table as one ``.npz`` (keys ``<video id>/words``, ``<video id>/times``), atomically."""
    from videobert.utils.io import atomic_path

    arrays = {}
    for video_id, (words, times) in table.items():
        arrays[f"{video_id}/words"] = np.asarray(words, dtype=np.int64)
        arrays[f"{video_id}/times"] = np.asarray(times, dtype=np.float64).reshape(-1, 2)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)


def load_video_words(path: str | os.PathLike) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Read a table written by :func:`save_video_words`."""
    with np.load(path) as arrays:
        ids = sorted({key.rsplit("/", 1)[0] for key in arrays.files})
        missing = [i for i in ids if f"{i}/words" not in arrays.files or f"{i}/times" not in arrays.files]
        if missing:
            raise ValueError(f"{path}: videos {missing[:3]} lack '<id>/words' or '<id>/times'")
        return {i: (arrays[f"{i}/words"], arrays[f"{i}/times"]) for i in ids}
