"""torchvision's Faster R-CNN (ResNet-50 FPN) as a region detector.

Weights: torchvision's COCO state dict (``fasterrcnn_resnet50_fpn_coco-258fb6c6.pth``, 91 classes
with background) given by the user (nothing is downloaded), or random weights from a seed (tests
and plumbing only: such boxes mean nothing). A frame's regions are the detector's top
``max_regions`` boxes above ``score_threshold``; each region's feature is the box head's 1024-d
representation of its box, and its class distribution the softmax of the box predictor on that
feature; the whole-frame region is the same for the box covering the frame.
"""

from __future__ import annotations

import os

import numpy as np
import torch

from videobert.features.regions.detector import Detections
from videobert.features.regions.torchvision_import import import_torchvision

FEATURE_DIM = 1024  # TwoMLPHead's representation size


class FasterRCNNDetector:
    name = "faster_rcnn_resnet50_fpn"

    def __init__(self, weights: str | os.PathLike | None = None, num_classes: int = 91, max_regions: int = 10,
                 score_threshold: float = 0.2, min_size: int = 800, max_size: int = 1333, seed: int = 0,
                 device: str = "cpu", class_names: list[str] | None = None) -> None:
        import_torchvision()
        from torchvision.models.detection import fasterrcnn_resnet50_fpn

        torch.manual_seed(seed)
        self.model = fasterrcnn_resnet50_fpn(
            weights=None, weights_backbone=None, num_classes=num_classes, min_size=min_size, max_size=max_size,
            box_score_thresh=score_threshold, box_detections_per_img=max_regions,
            rpn_pre_nms_top_n_test=max(100, 10 * max_regions), rpn_post_nms_top_n_test=max(50, 5 * max_regions))
        if weights is not None:
            state = torch.load(weights, map_location="cpu", weights_only=True)
            try:
                self.model.load_state_dict(state)
            except RuntimeError as exc:
                raise ValueError(f"{weights}: not a Faster R-CNN ResNet-50 FPN state dict with {num_classes} classes: {exc}") from exc
        self.model.eval().to(device)
        self.device = device
        self.class_names = class_names or [f"class_{i}" for i in range(num_classes)]
        if len(self.class_names) != num_classes:
            raise ValueError(f"{len(self.class_names)} class names for {num_classes} classes")
        self.feature_dim = FEATURE_DIM
        from videobert.utils.fingerprint import sha256_file

        self.settings = {"weights": sha256_file(weights) if weights is not None else f"random (seed {seed})",
                         "max_regions": max_regions, "score_threshold": score_threshold, "min_size": min_size, "max_size": max_size}

    @torch.no_grad()
    def detect(self, frame: np.ndarray, video_id: str = "", time: float = 0.0) -> Detections:
        """Regions of ``frame`` (uint8 ``[H, W, 3]``); ``video_id`` and ``time`` are not needed here."""
        model = self.model
        height, width = frame.shape[:2]
        image = torch.from_numpy(np.ascontiguousarray(frame)).permute(2, 0, 1).float().div(255).to(self.device)
        images, _ = model.transform([image])
        features = model.backbone(images.tensors)
        proposals, _ = model.rpn(images, features)
        detections, _ = model.roi_heads(features, proposals, images.image_sizes)
        boxes = detections[0]["boxes"]  # in the resized image's pixels
        resized_h, resized_w = images.image_sizes[0]
        whole = torch.tensor([[0.0, 0.0, float(resized_w), float(resized_h)]], device=boxes.device)
        all_boxes = torch.cat([whole, boxes])
        pooled = model.roi_heads.box_roi_pool(features, [all_boxes], images.image_sizes)
        representation = model.roi_heads.box_head(pooled)            # [1 + k, 1024]
        logits, _ = model.roi_heads.box_predictor(representation)
        probs = torch.softmax(logits, dim=-1)
        scale = torch.tensor([width / resized_w, height / resized_h] * 2, device=boxes.device)
        original = (boxes * scale).clamp(min=0)
        original[:, 0::2] = original[:, 0::2].clamp(max=width)
        original[:, 1::2] = original[:, 1::2].clamp(max=height)
        keep = (original[:, 2] > original[:, 0]) & (original[:, 3] > original[:, 1])
        keep_all = torch.cat([torch.zeros(1, dtype=torch.bool, device=keep.device), keep])
        return Detections(boxes=original[keep].cpu().numpy(), features=representation[keep_all].cpu().numpy(),
                          class_probs=probs[keep_all].cpu().numpy(), frame_feature=representation[0].cpu().numpy())
