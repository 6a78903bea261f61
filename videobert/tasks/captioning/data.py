"""Annotated segments and the clips they hold: what the captioning task reads.

A video's clips come from ``videobert extract`` output (S3D features and clip times) and a fitted
hierarchical k-means (their visual words). A segment holds the clips whose centre lies inside it
(``videobert.tasks.sources.segment_words``, the same rule as the other tasks), kept as row
indices so that its S3D features and its visual words stay aligned clip for clip.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Iterable, Mapping, NamedTuple, Sequence

import numpy as np

from videobert.tasks.annotations import Segment
from videobert.tasks.inputs import subsample_evenly
from videobert.tasks.sources import segment_words

log = logging.getLogger(__name__)


class VideoClips(NamedTuple):
    """One video's clips: S3D ``features`` float32 ``[n, D]``, ``times`` float64 ``[n, 2]`` (start/end s),
    visual ``words`` int64 ``[n]``."""

    features: np.ndarray
    times: np.ndarray
    words: np.ndarray


def load_video_clips(features_dirs: str | os.PathLike | Sequence[str | os.PathLike], kmeans,
                     video_ids: Iterable[str] | None = None) -> dict[str, VideoClips]:
    """Every finished video of one or more extraction directories (only ``video_ids`` if given),
    its features assigned to visual words by ``kmeans`` (``HierarchicalKMeans``)."""
    from videobert.features.store import iter_video_features

    dirs = [features_dirs] if isinstance(features_dirs, (str, os.PathLike)) else list(features_dirs)
    wanted = None if video_ids is None else set(video_ids)
    table: dict[str, VideoClips] = {}
    for directory in dirs:
        for video_id, features, times in iter_video_features(directory):
            if wanted is None or video_id in wanted:
                features = np.asarray(features, dtype=np.float32)
                words = np.asarray(kmeans.assign(features), dtype=np.int64)
                table[video_id] = VideoClips(features, np.asarray(times, dtype=np.float64).reshape(-1, 2), words)
    return table


@dataclass(frozen=True)
class CaptionSegment:
    """An annotated segment with its clips: ``rows`` int64 ``[n >= 1]`` index its video's clips, in time order."""

    segment_id: str   # "<video id>#<index of the annotation within its video>"
    video_id: str
    start: float      # seconds
    end: float
    caption: str
    rows: np.ndarray


def select_segments(segments: Sequence[Segment], clips: Mapping[str, VideoClips], max_clips: int,
                    where: str = "annotations") -> tuple[list[CaptionSegment], dict[str, int]]:
    """The segments that can be captioned, and how many were skipped for what.

    Skipped (counted, logged, never fatal): ``missing_video`` (no features for the video),
    ``no_clips`` (no clip centre inside the segment), ``empty_reference`` (a blank sentence).
    A segment of more than ``max_clips`` clips keeps ``max_clips`` of them, evenly spaced in time.
    """
    skipped = {"missing_video": 0, "no_clips": 0, "empty_reference": 0}
    kept = []
    index_in_video: dict[str, int] = {}
    for seg in segments:
        index = index_in_video.get(seg.video_id, 0)
        index_in_video[seg.video_id] = index + 1
        if not seg.sentence.strip():
            skipped["empty_reference"] += 1
            continue
        if seg.video_id not in clips:
            skipped["missing_video"] += 1
            continue
        video = clips[seg.video_id]
        rows = segment_words(np.arange(len(video.times)), video.times, seg.start, seg.end)
        if rows.size == 0:
            skipped["no_clips"] += 1
            continue
        kept.append(CaptionSegment(f"{seg.video_id}#{index}", seg.video_id, seg.start, seg.end, seg.sentence,
                                   subsample_evenly(rows, max_clips)))
    if any(skipped.values()):
        log.warning("captioning (%s): skipped %s", where, skipped)
    return kept, skipped
