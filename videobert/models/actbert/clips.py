"""``ClipStore``: every clip's S3D feature and regions, by clip row.

A clip *row* indexes the clips of one or more feature directories (``videobert extract``
layout, each with its ``regions/``), videos in the directories' order, clips in time order; the
ActBERT dataset turns corpus words into rows and the scoring hooks read videos as arrays of rows.
``regions(rows)`` gives each clip's whole-frame region followed by its detected regions.

Features are standardised per dimension over the store's clips (actions by their own statistics,
regions and whole frames by theirs), as VideoBERT's visual-word centroids are: an extractor's raw
features (S3D with random weights: norms near 1e-5, most of it one shared direction) would hide
what tells clips apart from a freshly initialised projection. The statistics are the loaded
store's and are not saved with a model: a model reads features as it was trained on them only
from a store of the same feature directories with the same ``max_regions_per_clip`` (the
regions read decide the region statistics). Scoring a model on other directories standardises
them by their own statistics, which is right only where they are distributed as the training
store's.

A video whose region detection failed (``extract_regions`` records it as failed in the regions
directory's manifest, ``manifest.jsonl`` or one per rank) is left out with a warning and listed
in ``skipped_videos``; the rest of the corpus goes on. A video with neither regions nor such a
record is an error.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from videobert.features.regions.store import REGIONS_DIR, read_video_regions, regions_path
from videobert.features.store import iter_video_features
from videobert.utils.manifest import Manifest

log = logging.getLogger(__name__)

WHOLE_FRAME = np.array([0.0, 0.0, 1.0, 1.0, 1.0], dtype=np.float32)  # its location


def failed_region_ids(regions_dir: str | os.PathLike) -> set[str]:
    """Videos a regions directory's manifests (``manifest.jsonl``, or one per rank) record as failed."""
    return {key for path in sorted(Path(regions_dir).glob("manifest*.jsonl"))
            for key in Manifest(path).keys_with_status("failed")}


def _statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = features.mean(axis=0, dtype=np.float64)
    return mean, features.std(axis=0, dtype=np.float64)


def standardised(features: np.ndarray, mean: np.ndarray | None = None, std: np.ndarray | None = None) -> np.ndarray:
    """``(features - mean) / std`` per dimension (default: the features' own statistics); a constant
    dimension becomes 0. float32."""
    if mean is None or std is None:
        mean, std = _statistics(features)
    return ((features - mean) / np.where(std > 0, std, 1.0)).astype(np.float32)


class ClipStore:
    """Clips of ``feature_dirs`` (regions from ``<dir>/regions`` unless ``regions_dirs`` says otherwise).

    Attributes: ``video_ids``, ``offsets [V + 1]`` (video i owns rows offsets[i]:offsets[i+1]),
    ``times [N, 2]`` s, ``actions [N, Da]`` S3D features, ``frame_features [N, Dr]``,
    ``region_offsets [N + 1]`` into ``region_features [R, Dr]``, ``region_locations [R, 5]``,
    ``region_probs [R, C]``, ``class_names``, ``skipped_videos`` (failed region detection: left out)."""

    def __init__(self, feature_dirs: Sequence[str | os.PathLike], regions_dirs: Sequence[str | os.PathLike] | None = None,
                 max_regions_per_clip: int | None = None) -> None:
        regions_dirs = regions_dirs or [Path(d) / REGIONS_DIR for d in feature_dirs]
        if len(regions_dirs) != len(feature_dirs):
            raise ValueError(f"{len(feature_dirs)} feature directories but {len(regions_dirs)} regions directories")
        video_ids, counts, times, actions = [], [], [], []
        frame_features, region_counts, features, locations, probs = [], [], [], [], []
        self.class_names: list[str] | None = None
        self.skipped_videos: list[str] = []
        for feature_dir, regions_dir in zip(feature_dirs, regions_dirs):
            failed = failed_region_ids(regions_dir)
            for video_id, video_features, video_times in iter_video_features(feature_dir):
                if not regions_path(regions_dir, video_id).is_file():
                    if video_id not in failed:
                        raise FileNotFoundError(
                            f"no regions for video {video_id!r} of {feature_dir}, and {Path(regions_dir) / 'manifest.jsonl'} "
                            f"(or a rank's manifest) records no failure for it: run `videobert extract --regions` (it resumes)")
                    self.skipped_videos.append(video_id)  # one bad video never stops the corpus
                    continue
                regions = read_video_regions(regions_dir, video_id)
                if regions.times.shape != video_times.shape or not np.allclose(regions.times, video_times):
                    raise ValueError(f"video {video_id!r}: its regions in {regions_dir} were detected on other clips "
                                     f"({len(regions.times)}) than its S3D features in {feature_dir} ({len(video_times)}); "
                                     f"extract the regions again")
                if self.class_names is None:
                    self.class_names = regions.class_names
                elif regions.class_names != self.class_names:
                    raise ValueError(f"video {video_id!r}: detector classes differ from the other videos'")
                if video_id in video_ids:
                    raise ValueError(f"video {video_id!r} is in more than one feature directory")
                video_ids.append(video_id)
                counts.append(len(video_times))
                times.append(video_times)
                actions.append(np.asarray(video_features, dtype=np.float32))
                frame_features.append(regions.frame_features)
                boxes_locations = regions.locations()
                for clip in range(len(video_times)):
                    lo, hi = regions.clip_offsets[clip], regions.clip_offsets[clip + 1]
                    if max_regions_per_clip is not None:
                        hi = min(hi, lo + max_regions_per_clip)
                    region_counts.append(hi - lo)
                    features.append(regions.features[lo:hi])
                    locations.append(boxes_locations[lo:hi])
                    probs.append(regions.class_probs[lo:hi])
        if self.skipped_videos:
            log.warning("clip store: %d video(s) left out, their region detection failed (see the regions manifests): %s",
                        len(self.skipped_videos), ", ".join(self.skipped_videos))
        if not video_ids:
            raise ValueError(f"no extracted videos in {[str(d) for d in feature_dirs]} "
                             f"({len(self.skipped_videos)} left out: their region detection failed)")
        self.video_ids = video_ids
        self.offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self.times = np.concatenate(times)
        self.actions = standardised(np.concatenate(actions))
        frames, regions = np.concatenate(frame_features).astype(np.float32), np.concatenate(features).astype(np.float32)
        mean, std = _statistics(np.concatenate([frames, regions]))
        self.frame_features = standardised(frames, mean, std)
        self.region_offsets = np.concatenate([[0], np.cumsum(region_counts)]).astype(np.int64)
        self.region_features = standardised(regions, mean, std)
        self.region_locations = np.concatenate(locations).astype(np.float32)
        self.region_probs = np.concatenate(probs).astype(np.float32)
        self._row_of_video = {v: i for i, v in enumerate(video_ids)}

    def __len__(self) -> int:
        return int(self.offsets[-1])

    @property
    def action_dim(self) -> int:
        return int(self.actions.shape[1])

    @property
    def region_dim(self) -> int:
        return int(self.frame_features.shape[1])

    @property
    def num_classes(self) -> int:
        return int(self.region_probs.shape[1])

    def rows(self, video_id: str) -> np.ndarray:
        """int64 ``[n]`` rows of a video's clips, in time order."""
        if video_id not in self._row_of_video:
            raise KeyError(f"video {video_id!r} has no extracted clips in this store")
        i = self._row_of_video[video_id]
        return np.arange(self.offsets[i], self.offsets[i + 1], dtype=np.int64)

    def clip_table(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """``video_id -> (rows int64 [n], clip times float64 [n, 2])`` for every video."""
        return {v: (self.rows(v), self.times[self.rows(v)]) for v in self.video_ids}

    def regions(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The regions of clips ``rows [n]``, each clip's whole frame first: ``(features [R, Dr],
        locations [R, 5], class_probs [R, C] (whole frame: zeros), clip [R] (0 .. n-1), is_object [R] bool)``."""
        parts_f, parts_l, parts_p, clip, is_object = [], [], [], [], []
        for j, row in enumerate(np.asarray(rows, dtype=np.int64)):
            lo, hi = self.region_offsets[row], self.region_offsets[row + 1]
            parts_f += [self.frame_features[row : row + 1], self.region_features[lo:hi]]
            parts_l += [WHOLE_FRAME[None], self.region_locations[lo:hi]]
            parts_p += [np.zeros((1, self.num_classes), np.float32), self.region_probs[lo:hi]]
            clip += [j] * (1 + hi - lo)
            is_object += [False] + [True] * (hi - lo)
        if not clip:
            return (np.zeros((0, self.region_dim), np.float32), np.zeros((0, 5), np.float32),
                    np.zeros((0, self.num_classes), np.float32), np.zeros(0, np.int64), np.zeros(0, bool))
        return (np.concatenate(parts_f), np.concatenate(parts_l), np.concatenate(parts_p),
                np.asarray(clip, np.int64), np.asarray(is_object, bool))
