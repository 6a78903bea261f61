"""The demo's stand-in region detector: the generator's ground truth for *where* and *what*.

The synthetic scenes know every object's shape, placement and motion per frame
(``videobert.demo.scenes.object_box``), so this "detector" boxes the object exactly and gives its
class with certainty (a one-hot distribution over background + the demo's shapes); a frame where
the object is off (``flash``) or between actions has no regions (the clip keeps its whole-frame
region). The region *features* are computed from the decoded frame's pixels inside the box (an
area-averaged ``size x size`` RGB crop), as a detector's are from its feature map: nothing about
the class label enters them. The report says plainly that the demo's regions come from here.
"""

from __future__ import annotations

import os

import numpy as np
import torch
from torch.nn import functional as F

from videobert.demo.scenes import SHAPES, Placement, object_box
from videobert.demo.synthetic import VideoScript, load_scripts
from videobert.features.regions.detector import Detections


def pooled_crop(frame: np.ndarray, box: tuple[float, float, float, float] | None, size: int) -> np.ndarray:
    """The pixels of ``box`` (whole frame: ``None``) of ``frame`` (uint8 ``[H, W, 3]``) averaged
    down to ``size x size``: float32 ``[3 * size * size]`` in [0, 1]."""
    height, width = frame.shape[:2]
    x1, y1, x2, y2 = box if box is not None else (0, 0, width, height)
    left, top = int(np.floor(x1)), int(np.floor(y1))
    right, bottom = max(int(np.ceil(x2)), left + 1), max(int(np.ceil(y2)), top + 1)
    crop = torch.from_numpy(np.ascontiguousarray(frame[top:bottom, left:right])).permute(2, 0, 1).float() / 255
    return F.adaptive_avg_pool2d(crop[None], size)[0].reshape(-1).numpy()


class SceneDetector:
    name = "demo_ground_truth"

    def __init__(self, scripts_path: str | os.PathLike, crop_size: int = 4) -> None:
        self.scripts: dict[str, VideoScript] = {s.video_id: s for s in load_scripts(scripts_path)}
        self.crop_size = crop_size
        self.class_names = ["background", *SHAPES]
        self.feature_dim = 3 * crop_size * crop_size
        self.settings = {"crop_size": crop_size}

    def detect(self, frame: np.ndarray, video_id: str, time: float) -> Detections:
        if video_id not in self.scripts:
            raise KeyError(f"video {video_id!r} is not in the demo's scripts")
        script = self.scripts[video_id]
        height, width = frame.shape[:2]
        if (width, height) != (script.width, script.height):
            raise ValueError(f"video {video_id!r}: decoded frame is {width} x {height}, the script says {script.width} x {script.height}")
        boxes = []
        for segment in script.segments:
            if segment.start <= time < segment.end:
                box = object_box(width, height, segment.noun, segment.verb, time - segment.start,
                                 Placement(segment.x, segment.y, segment.angle))
                if box is not None:
                    boxes.append((box, self.class_names.index(segment.noun)))
        probs = np.zeros((len(boxes), len(self.class_names)), np.float32)
        for i, (_, label) in enumerate(boxes):
            probs[i, label] = 1.0
        return Detections(boxes=np.array([b for b, _ in boxes], np.float32).reshape(-1, 4),
                          features=np.array([pooled_crop(frame, b, self.crop_size) for b, _ in boxes], np.float32).reshape(-1, self.feature_dim),
                          class_probs=probs, frame_feature=pooled_crop(frame, None, self.crop_size))
