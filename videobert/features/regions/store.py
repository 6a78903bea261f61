"""The on-disk layout of per-clip regions, beside a video's S3D features.

A regions directory (``<features>/regions/`` by default) holds, per finished video,
``<video_id>.safetensors`` with

    boxes          float32 [R, 4]   x1, y1, x2, y2 in pixels of the decoded frame
    features       float32 [R, D]   the detector's region features
    class_probs    float32 [R, C]   the detector's class distribution of each region
    clip_offsets   int64   [n + 1]  clip i owns regions clip_offsets[i]:clip_offsets[i + 1]
    frame_features float32 [n, D]   the whole-frame region of each clip
    times          float64 [n, 2]   the clips' start / end (s): the S3D file's rows, in order

and metadata ``frame_width``, ``frame_height``, ``detector``, ``class_names`` (JSON). Each clip is
read at its middle frame. Files are written atomically; a clip may have no regions (it keeps its
whole-frame region); a box outside the frame is refused, naming the video and clip.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from safetensors import safe_open
from safetensors.numpy import save_file

from videobert.utils.io import atomic_path

SUFFIX = ".safetensors"
REGIONS_DIR = "regions"
BOX_TOLERANCE_PX = 0.5  # detectors clip to the frame; rounding may leave a box a hair outside


@dataclass
class VideoRegions:
    """One video's regions (the arrays of the module docstring)."""

    video_id: str
    boxes: np.ndarray
    features: np.ndarray
    class_probs: np.ndarray
    clip_offsets: np.ndarray
    frame_features: np.ndarray
    times: np.ndarray
    frame_width: int
    frame_height: int
    detector: str
    class_names: list[str]

    def check(self) -> None:
        """Raise ``ValueError`` naming the video (and clip) when the arrays disagree or a box is
        outside the frame."""
        n, regions = len(self.times), len(self.boxes)
        where = f"video {self.video_id!r}"
        if self.clip_offsets.shape != (n + 1,) or self.clip_offsets[0] != 0 or self.clip_offsets[-1] != regions \
                or np.any(np.diff(self.clip_offsets) < 0):
            raise ValueError(f"{where}: clip_offsets must rise from 0 to {regions} regions over {n} clips")
        if self.boxes.shape != (regions, 4) or len(self.features) != regions or len(self.class_probs) != regions:
            raise ValueError(f"{where}: boxes {self.boxes.shape}, features {self.features.shape} and class_probs "
                             f"{self.class_probs.shape} must have one row per region")
        if self.frame_features.ndim != 2 or len(self.frame_features) != n or self.frame_features.shape[1] != self.features.shape[1]:
            raise ValueError(f"{where}: frame_features {self.frame_features.shape} must be [{n} clips, feature dim]")
        if self.class_probs.shape[1:] != (len(self.class_names),):
            raise ValueError(f"{where}: class_probs has {self.class_probs.shape[1:]} classes, class_names {len(self.class_names)}")
        if self.frame_width <= 0 or self.frame_height <= 0:
            raise ValueError(f"{where}: frame size {self.frame_width} x {self.frame_height} is not positive")
        x1, y1, x2, y2 = self.boxes.T if regions else (np.zeros(0),) * 4
        bad = ((x1 < -BOX_TOLERANCE_PX) | (y1 < -BOX_TOLERANCE_PX) | (x2 > self.frame_width + BOX_TOLERANCE_PX)
               | (y2 > self.frame_height + BOX_TOLERANCE_PX) | (x2 <= x1) | (y2 <= y1) | ~np.isfinite(self.boxes).all(1))
        if np.any(bad):
            region = int(np.argmax(bad))
            clip = int(np.searchsorted(self.clip_offsets, region, side="right")) - 1
            raise ValueError(f"{where} clip {clip}: box {self.boxes[region].round(2).tolist()} is outside the "
                             f"{self.frame_width} x {self.frame_height} frame (or empty)")

    def locations(self) -> np.ndarray:
        """``[R, 5]`` float32 locations of the boxes (:func:`region_locations`)."""
        return region_locations(self.boxes, self.frame_width, self.frame_height)


def region_locations(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    """ActBERT's 5-d location of pixel boxes ``[R, 4]`` in a ``width x height`` frame:
    ``(x1/W, y1/H, x2/W, y2/H, box area / frame area)``, float32 ``[R, 5]``. The whole frame is
    ``(0, 0, 1, 1, 1)``."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    scaled = boxes / np.array([width, height, width, height], dtype=np.float64)
    area = (scaled[:, 2] - scaled[:, 0]) * (scaled[:, 3] - scaled[:, 1])
    return np.concatenate([scaled, area[:, None]], axis=1).astype(np.float32)


def regions_path(regions_dir: str | os.PathLike, video_id: str) -> Path:
    return Path(regions_dir) / f"{video_id}{SUFFIX}"


def write_video_regions(regions_dir: str | os.PathLike, regions: VideoRegions) -> Path:
    """Check and atomically write one video's regions."""
    regions.check()
    path = regions_path(regions_dir, regions.video_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {"boxes": regions.boxes.astype(np.float32), "features": regions.features.astype(np.float32),
               "class_probs": regions.class_probs.astype(np.float32), "clip_offsets": regions.clip_offsets.astype(np.int64),
               "frame_features": regions.frame_features.astype(np.float32), "times": regions.times.astype(np.float64)}
    metadata = {"frame_width": str(regions.frame_width), "frame_height": str(regions.frame_height),
                "detector": regions.detector, "class_names": json.dumps(regions.class_names)}
    with atomic_path(path) as tmp:
        save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(tmp), metadata=metadata)
    return path


def read_video_regions(regions_dir: str | os.PathLike, video_id: str) -> VideoRegions:
    path = regions_path(regions_dir, video_id)
    if not path.is_file():
        raise FileNotFoundError(f"{regions_dir}: no regions for video {video_id!r} (run `videobert extract --regions`)")
    with safe_open(str(path), framework="numpy") as f:
        meta = f.metadata()
        arrays = {k: f.get_tensor(k) for k in ("boxes", "features", "class_probs", "clip_offsets", "frame_features", "times")}
    regions = VideoRegions(video_id, **arrays, frame_width=int(meta["frame_width"]), frame_height=int(meta["frame_height"]),
                           detector=meta["detector"], class_names=json.loads(meta["class_names"]))
    regions.check()
    return regions


def finished_region_ids(regions_dir: str | os.PathLike) -> list[str]:
    return sorted(p.name[: -len(SUFFIX)] for p in Path(regions_dir).glob(f"*{SUFFIX}") if not p.name.startswith("."))
