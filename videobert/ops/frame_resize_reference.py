"""Plain PyTorch reference for ``frame_resize``: the specification the C++ kernel is tested against."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def frame_resize_reference(y: torch.Tensor, u: torch.Tensor, v: torch.Tensor, affine: torch.Tensor,
                           resize: tuple[int, int], crop: tuple[int, int, int, int]) -> torch.Tensor:
    """One YUV frame to an RGB crop of its resize.

    y [H, W], u and v [Hc, Wc] uint8 (any chroma subsampling: each plane covers the whole picture);
    affine [3, 4] float32; resize (rows, cols); crop (top, left, height, width) inside the resize.
    Each plane is resized on its own to ``resize`` with antialiased bilinear filtering (float32),
    the crop is cut, and every pixel becomes ``rgb = affine[:, :3] @ (Y, U, V) + affine[:, 3]``,
    clamped to [0, 255] and rounded half up. Returns [height, width, 3] uint8.
    """
    top, left, height, width = crop
    planes = [
        F.interpolate(p[None, None].float(), size=resize, mode="bilinear", antialias=True, align_corners=False)[
            0, 0, top:top + height, left:left + width]
        for p in (y, u, v)
    ]
    yuv = torch.stack(planes, dim=-1)
    rgb = yuv @ affine[:, :3].T.to(yuv) + affine[:, 3].to(yuv)
    return (rgb.clamp(0, 255) + 0.5).floor().to(torch.uint8)
