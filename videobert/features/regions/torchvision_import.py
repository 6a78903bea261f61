"""``import torchvision`` where its compiled operators cannot load.

PyPI's torchvision wheels for Linux are CUDA builds; beside a CPU-only torch their extension
fails to load (it links libc10_cuda), and ``import torchvision`` then stops at registering a fake
kernel for ``torchvision::nms``, an operator nobody defined. Faster R-CNN needs two of those
operators: RoIAlign, which torchvision already computes in plain PyTorch when its extension is
missing (run eagerly here), and non-maximum suppression, defined here in plain PyTorch. Nothing
changes where the extension loads.
"""

from __future__ import annotations

import sys
from types import ModuleType

import torch

_LIBRARY: torch.library.Library | None = None  # kept alive: dropping it unregisters the operators


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Indices of ``boxes [N, 4]`` (x1, y1, x2, y2) kept by greedy non-maximum suppression, by
    decreasing ``scores [N]`` (torchvision's ``nms`` contract: a box is dropped when its IoU with a
    kept, higher-scoring box exceeds ``iou_threshold``)."""
    order = scores.argsort(descending=True)
    boxes = boxes[order]
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    low = torch.maximum(boxes[:, None, :2], boxes[None, :, :2])
    high = torch.minimum(boxes[:, None, 2:], boxes[None, :, 2:])
    inter = (high - low).clamp(min=0).prod(-1)
    iou = inter / (area[:, None] + area[None, :] - inter).clamp_min(1e-12)
    keep = torch.ones(len(boxes), dtype=torch.bool, device=boxes.device)
    for i in range(len(boxes)):
        if keep[i]:
            keep[i + 1:] &= iou[i, i + 1:] <= iou_threshold
    return order[keep]


def import_torchvision() -> ModuleType:
    global _LIBRARY
    try:
        import torchvision
        return torchvision
    except ImportError as exc:
        raise ImportError("the Faster R-CNN region detector needs torchvision (pip install torchvision --no-deps, "
                          "the release that matches your torch)") from exc
    except RuntimeError as exc:
        if "torchvision::nms" not in str(exc):
            raise
    for name in [n for n in sys.modules if n == "torchvision" or n.startswith("torchvision.")]:
        del sys.modules[name]  # the failed import's half-initialised modules
    _LIBRARY = torch.library.Library("torchvision", "DEF")
    _LIBRARY.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _LIBRARY.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _LIBRARY.impl("nms", nms, "CPU")
    import torchvision
    import torchvision.ops.boxes as boxes

    roi_align = sys.modules["torchvision.ops.roi_align"]  # the module: torchvision.ops.roi_align is the function
    # torchvision.ops.nms refuses to run without its extension; its batched_nms calls this name
    boxes.nms = lambda b, s, t: torch.ops.torchvision.nms(b, s, t)
    # The plain-PyTorch RoIAlign is wrapped to be torch.compile'd on first use: ~12 s on a CPU
    # before the first frame. Run it eagerly (the wrapper keeps the function as __wrapped__).
    roi_align._roi_align = getattr(roi_align._roi_align, "__wrapped__", roi_align._roi_align)
    return torchvision
