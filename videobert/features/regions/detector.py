"""Regions of every clip of a set of videos: a detector run on each clip's middle frame.

``Detector`` is what a backend provides (``faster_rcnn.FasterRCNNDetector``, torchvision's
Faster R-CNN with the user's weights; the demo's stand-in, ``videobert.demo.detector``);
``extract_regions`` decodes the frames, runs it and writes one regions file per video beside the
S3D features (``store``), aligned with the S3D file's clips. Reruns skip finished videos; a video
that fails is recorded in the manifest with its reason and the others go on. Ranks share the work
as S3D extraction does: rank r of w takes videos ``r, r + w, ...`` of the same list (so each rank
detects on the videos whose features it extracted) and keeps a manifest of its own.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np

from videobert.features.regions.store import VideoRegions, regions_path, write_video_regions
from videobert.features.store import finished_video_ids, read_video_features
from videobert.utils.manifest import Manifest

log = logging.getLogger(__name__)


@dataclass
class Detections:
    """One frame's regions: ``boxes [k, 4]`` pixels (x1, y1, x2, y2), ``features [k, D]``,
    ``class_probs [k, C]``, and ``frame_feature [D]`` (the whole frame as one more region)."""

    boxes: np.ndarray
    features: np.ndarray
    class_probs: np.ndarray
    frame_feature: np.ndarray


class Detector(Protocol):
    name: str
    class_names: list[str]   # C names; class_probs columns in this order
    feature_dim: int         # D
    settings: dict           # what else decides its output (weights' digest, thresholds): the output's fingerprint

    def detect(self, frame: np.ndarray, video_id: str, time: float) -> Detections:
        """Regions of ``frame`` (uint8 ``[H, W, 3]`` RGB), the frame of ``video_id`` shown at ``time`` s."""


def frames_at(path: str | os.PathLike, times: Sequence[float]) -> list[np.ndarray]:
    """The RGB frames (uint8 ``[H, W, 3]``, the file's own size) shown at each of ``times`` (s,
    ascending): the last frame presented at or before the time (the first frame before it)."""
    import av

    targets = np.asarray(times, dtype=np.float64)
    frames: list[np.ndarray] = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
        last = None  # the last decoded frame, converted to RGB only when a target time takes it
        for frame in container.decode(stream):
            t = (float(frame.pts * frame.time_base) if frame.pts is not None else 0.0) - start
            while len(frames) < len(targets) and t > targets[len(frames)] + 1e-6:
                frames.append((last if last is not None else frame).to_ndarray(format="rgb24"))
            if len(frames) == len(targets):
                break
            last = frame
        while len(frames) < len(targets) and last is not None:
            frames.append(last.to_ndarray(format="rgb24"))
    if len(frames) < len(targets):
        raise ValueError(f"{path}: no frames decoded")
    return frames


def detect_video(path: str | os.PathLike, video_id: str, times: np.ndarray, detector: Detector) -> VideoRegions:
    """Run ``detector`` on the middle frame of each clip (``times [n, 2]`` s) of one video."""
    middles = times.mean(axis=1) if len(times) else np.zeros(0)
    frames = frames_at(path, middles) if len(times) else []
    found = [detector.detect(frame, video_id, float(t)) for frame, t in zip(frames, middles)]
    dim, classes = detector.feature_dim, len(detector.class_names)
    height, width = (frames[0].shape[:2] if frames else (1, 1))

    def stacked(name: str, shape: tuple[int, ...]) -> np.ndarray:
        parts = [np.asarray(getattr(d, name), dtype=np.float32).reshape(-1, *shape) for d in found]
        return np.concatenate(parts) if parts else np.zeros((0, *shape), np.float32)

    counts = [len(d.boxes) for d in found]
    return VideoRegions(
        video_id=video_id, boxes=stacked("boxes", (4,)), features=stacked("features", (dim,)),
        class_probs=stacked("class_probs", (classes,)), clip_offsets=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        frame_features=stacked("frame_feature", (dim,)), times=np.asarray(times, dtype=np.float64),
        frame_width=int(width), frame_height=int(height), detector=detector.name, class_names=list(detector.class_names))


def extract_regions(videos: str | os.PathLike, features_dir: str | os.PathLike, detector: Detector,
                    regions_dir: str | os.PathLike | None = None, overwrite: bool = False,
                    rank: int | None = None, world_size: int | None = None) -> dict[str, object]:
    """Regions of this rank's share of ``videos`` (``rank`` / ``world_size``: default ``RANK`` /
    ``WORLD_SIZE``, else the only rank) that have S3D features in ``features_dir`` (clip times from
    there), into ``regions_dir`` (default ``features_dir/regions``); a video without features (its
    extraction failed: the features' manifest says why) is passed over. Returns counts of done /
    skipped / failed (with reasons). A directory holding another detector's regions is refused
    (``StaleOutputError`` naming the change) unless ``overwrite``, which starts it over."""
    from videobert.features.clip_loader import list_videos
    from videobert.features.extract import manifest_path
    from videobert.utils.dist import rank_and_world_size, shard
    from videobert.utils.fingerprint import claim_output

    rank, world_size = rank_and_world_size(rank, world_size)
    out = Path(regions_dir) if regions_dir is not None else Path(features_dir) / "regions"
    out.mkdir(parents=True, exist_ok=True)
    # every rank claims the same fingerprint, as S3D extraction does: the file is written atomically
    # with the same content, so the ranks' writes cannot mix
    claim_output(out / "fingerprint.json", "regions", {"detector": detector.name, "classes": list(detector.class_names),
                                                        "feature_dim": detector.feature_dim, "settings": detector.settings},
                 overwrite)
    # sharded as S3D extraction shards the same list (not the finished features, which other ranks
    # are still adding to): each rank reads only the feature files it wrote
    finished = set(finished_video_ids(features_dir))
    paths = {p.stem: p for p in shard(list_videos(str(videos)), rank, world_size) if p.stem in finished}
    manifest = Manifest(manifest_path(out, rank, world_size))  # one per rank: ranks never append to one file
    summary: dict[str, object] = {"done": 0, "skipped": 0, "failed": {}}
    for video_id, path in paths.items():
        if regions_path(out, video_id).is_file():
            summary["skipped"] += 1
            continue
        try:
            _, times = read_video_features(features_dir, video_id)
            write_video_regions(out, detect_video(path, video_id, times, detector))
        except Exception as exc:  # one bad video never loses the rest
            log.warning("regions of %s failed: %s", video_id, exc)
            summary["failed"][video_id] = str(exc)
            manifest.record(video_id, "failed", reason=str(exc))
            continue
        manifest.record(video_id, "done")
        summary["done"] += 1
    return summary
