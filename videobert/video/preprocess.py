"""From decoded uint8 frames to S3D's input: rotation, normalisation, layout.

Geometry follows torchvision's S3D Kinetics transform (``VideoClassification(crop_size=224,
resize_size=(256, 256))``): each frame is resized to a square ``resize_size x resize_size``
(bilinear, antialiased; the aspect ratio is not kept, as in the weights' training) and the centre
``size x size`` is cropped. The backends do the resize and crop while decoding; this module does
the steps shared by both.
"""

from __future__ import annotations

import numpy as np
import torch

from videobert.ops.frame_resize import level_gain_offset

# torchvision's VideoClassification defaults (Kinetics statistics), in [0, 1] units.
S3D_MEAN = (0.43216, 0.394666, 0.37645)
S3D_STD = (0.22803, 0.22145, 0.216989)


def rotate_frames(frames: np.ndarray, degrees: float) -> np.ndarray:
    """Apply a display rotation to square frames ``[T, S, S, 3]`` uint8.

    ``degrees`` is counter-clockwise, as FFmpeg's display matrix and PyAV's ``VideoFrame.rotation``
    give it. On a square crop of a square resize, rotating last equals rotating the source first.
    """
    quarter_turns = round(degrees / 90) % 4
    if quarter_turns == 0:
        return frames
    return np.ascontiguousarray(np.rot90(frames, k=quarter_turns, axes=(1, 2)))


def normalize_levels(frames: torch.Tensor) -> torch.Tensor:
    """uint8 RGB ``[..., 3]`` -> float32 ``[..., 3]`` normalised for S3D: ``(x / 255 - mean) / std``
    per channel, on any device."""
    if frames.dtype != torch.uint8 or frames.shape[-1] != 3:
        raise ValueError(f"expected uint8 frames [..., T, H, W, 3], got {frames.dtype} {tuple(frames.shape)}")
    gain, offset = level_gain_offset(S3D_MEAN, S3D_STD).to(frames.device)
    return torch.addcmul(offset, frames.to(torch.float32), gain)


def normalize_clips(frames: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """uint8 ``[..., T, H, W, 3]`` (RGB) -> ``dtype`` ``[..., 3, T, H, W]`` normalised for S3D
    (:func:`normalize_levels`). Works on any device (the extractor runs it on the GPU, so only
    uint8 crosses process and host-device boundaries)."""
    # Returned as a view with the channels innermost: for a batch that is channels_last_3d, the
    # layout in which CPU convolutions run S3D about 2x faster (33 vs 16 clips/s at 64 px, 9.3 vs
    # 4.8 at 112 px). Normalising channels-first was quicker by itself (2.6 vs 4.2 ms a clip) but
    # handed the network the slow layout.
    return normalize_levels(frames).movedim(-1, -4).to(dtype)
