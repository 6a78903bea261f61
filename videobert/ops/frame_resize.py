"""``frame_resize``: a decoded YUV frame straight to an RGB crop of its antialiased resize.

Video decoders hand out YUV planes; S3D wants RGB frames resized (antialiased bilinear, as
torchvision's transform) and centre-cropped. Converting every source pixel to RGB and resizing three
channels, the usual route (swscale, then ``F.interpolate``), does about twice the work of resizing
the planes (one full-size channel, two small ones) and converting only the output pixels, which is
what this op does. The routes differ by rounding, by the order of resizing and clipping to
[0, 255] (the same wherever nothing clips), and in how chroma is resampled (here at its own
resolution): within a level or two, far inside the differences between decoders.

Backends: ``reference`` (plain PyTorch, videobert/ops/frame_resize_reference.py, any device) and
``cpu`` (C++, ``videobert._C``). ``backend="auto"`` picks cpu for CPU tensors. The op runs once per
decoded frame and is never traced, so it is a plain function rather than a ``torch.library``
custom op (the decoder's conversion thread calls it about 600 times a second at 360p; its checks and
tensor wrapping measured within 2% of calling the kernel on PyAV's planes directly).
"""

from __future__ import annotations

import functools
from typing import Sequence

import torch

from videobert.ops.backends import check_backend, compiled_module
from videobert.ops.frame_resize_reference import frame_resize_reference

FRAME_RESIZE_BACKENDS = ("reference", "cpu")
# (Kr, Kb) luma weights of the colour matrices (ITU-R BT.601, BT.709, BT.2020, SMPTE 240M, FCC)
LUMA_WEIGHTS = {
    "bt601": (0.299, 0.114),
    "bt709": (0.2126, 0.0722),
    "bt2020": (0.2627, 0.0593),
    "smpte240m": (0.212, 0.087),
    "fcc": (0.30, 0.11),
}


@functools.cache
def yuv_to_rgb_affine(matrix: str = "bt601", full_range: bool = False) -> torch.Tensor:
    """[3, 4] float32 map from 8-bit (Y, U, V, 1) to RGB in [0, 255] units.

    ``full_range=False``: "limited" (MPEG) range, Y in [16, 235] and chroma in [16, 240], as almost
    all video; ``True``: full (JPEG) range. Do not modify the returned tensor (it is cached).
    """
    if matrix not in LUMA_WEIGHTS:
        raise ValueError(f"unknown colour matrix {matrix!r}; choose from {sorted(LUMA_WEIGHTS)}")
    kr, kb = LUMA_WEIGHTS[matrix]
    kg = 1.0 - kr - kb
    luma_scale, chroma_scale, black = (1.0, 1.0, 0.0) if full_range else (255 / 219, 255 / 224, 16.0)
    linear = torch.tensor([
        [luma_scale, 0.0, 2 * (1 - kr) * chroma_scale],
        [luma_scale, -2 * kb * (1 - kb) / kg * chroma_scale, -2 * kr * (1 - kr) / kg * chroma_scale],
        [luma_scale, 2 * (1 - kb) * chroma_scale, 0.0],
    ], dtype=torch.float64)
    offset = -(linear[:, 0] * black + (linear[:, 1] + linear[:, 2]) * 128)
    return torch.cat([linear, offset[:, None]], dim=1).float().contiguous()


def frame_resize(y: torch.Tensor, u: torch.Tensor, v: torch.Tensor, affine: torch.Tensor,
                 resize: tuple[int, int], crop: tuple[int, int, int, int], out: torch.Tensor | None = None,
                 normalize: tuple[Sequence[float], Sequence[float]] | None = None, backend: str = "auto") -> torch.Tensor:
    """RGB crop ``crop`` (top, left, height, width) of the frame resized to ``resize`` (rows, cols).

    y [H, W], u and v [Hc, Wc] uint8 planes (rows may be padded: only the last stride must be 1);
    affine [3, 4] float32 (see :func:`yuv_to_rgb_affine`). Each plane is resized on its own with
    antialiased bilinear filtering (PyTorch's ``F.interpolate(..., antialias=True)`` weights), the
    crop's pixels are mapped to RGB, clamped and rounded half up (see
    :func:`~videobert.ops.frame_resize_reference.frame_resize_reference`). Returns [height, width, 3]
    uint8 levels, or with ``normalize=(mean, std)`` (per channel, in [0, 1] units) float32
    ``(level / 255 - mean) / std`` as :func:`videobert.video.normalize_clips` computes it, in one
    pass. Written into ``out`` when given (contiguous, of that shape and dtype).
    """
    _check(y, u, v, affine, resize, crop)
    name = check_backend(backend, y, FRAME_RESIZE_BACKENDS)
    top, left, height, width = crop
    dtype = torch.uint8 if normalize is None else torch.float32
    if out is None:
        out = torch.empty(height, width, 3, dtype=dtype, device=y.device)
    elif out.shape != (height, width, 3) or out.dtype != dtype or not out.is_contiguous() or out.device != y.device:
        raise ValueError(f"out must be a contiguous {dtype} [{height}, {width}, 3] tensor on {y.device}, "
                         f"got {out.dtype} {tuple(out.shape)} on {out.device}")
    gain_offset = None if normalize is None else level_gain_offset(*normalize)
    if name == "reference":
        levels = frame_resize_reference(y, u, v, affine, resize, crop)
        if gain_offset is not None:
            gain, offset = gain_offset.to(levels.device)
            levels = torch.addcmul(offset, levels.float(), gain)
        return out.copy_(levels)
    affine = affine.contiguous()
    compiled_module("_C").frame_resize(
        y.data_ptr(), y.stride(0), y.shape[1], y.shape[0], u.data_ptr(), v.data_ptr(), u.stride(0), u.shape[1],
        u.shape[0], resize[0], resize[1], top, left, height, width, affine.data_ptr(),
        0 if gain_offset is None else gain_offset.data_ptr(), out.data_ptr(), out.stride(0))
    return out


@functools.cache
def _level_gain_offset(mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    mean_t, std_t = torch.tensor(mean, dtype=torch.float32), torch.tensor(std, dtype=torch.float32)
    return torch.stack([1.0 / (255.0 * std_t), -mean_t / std_t]).contiguous()


def level_gain_offset(mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """[2, 3] float32 CPU (cached; do not modify): per-channel gain and offset taking a level
    (0-255) to ``(level / 255 - mean) / std`` as ``level * gain + offset``. The kernel and
    :func:`videobert.video.preprocess.normalize_levels` both use these, so they agree to rounding."""
    mean, std = tuple(float(m) for m in mean), tuple(float(s) for s in std)
    if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
        raise ValueError(f"normalize must be (mean, std) with 3 values each and std > 0, got {mean}, {std}")
    return _level_gain_offset(mean, std)


def _check(y, u, v, affine, resize, crop) -> None:
    for name, plane in (("y", y), ("u", u), ("v", v)):
        if plane.dtype != torch.uint8 or plane.dim() != 2 or plane.numel() == 0:
            raise ValueError(f"plane {name} must be a non-empty uint8 [rows, cols] tensor, got {plane.dtype} {tuple(plane.shape)}")
        if plane.stride(1) != 1 or plane.stride(0) < plane.shape[1]:
            raise ValueError(f"plane {name} must have contiguous rows (strides {plane.stride()})")
        if plane.device != y.device:
            raise ValueError(f"plane {name} is on {plane.device} but y on {y.device}")
    if u.shape != v.shape or u.stride(0) != v.stride(0):
        raise ValueError(f"u and v must have the same shape and row stride, got {tuple(u.shape)} / {u.stride(0)} "
                         f"and {tuple(v.shape)} / {v.stride(0)}")
    if affine.shape != (3, 4) or affine.dtype != torch.float32 or affine.device != y.device:
        raise ValueError(f"affine must be float32 [3, 4] on {y.device}, got {affine.dtype} {tuple(affine.shape)} on {affine.device}")
    rows, cols = resize
    top, left, height, width = crop
    if rows < 1 or cols < 1:
        raise ValueError(f"resize must be positive, got {resize}")
    if height < 1 or width < 1 or top < 0 or left < 0 or top + height > rows or left + width > cols:
        raise ValueError(f"crop (top, left, height, width) = {crop} must be non-empty and lie inside the resize {resize}")
