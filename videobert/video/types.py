"""The values that pass between the decoding backends and :func:`videobert.video.read_clips`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch


class Clip(NamedTuple):
    """One clip: ``frames`` float32 ``[3, T, size, size]`` normalised for S3D; ``start`` and ``end``
    in seconds from the first frame (``end - start`` < T / fps only for a padded last clip)."""

    frames: torch.Tensor
    start: float
    end: float


class RawClip(NamedTuple):
    """A clip as a decoder gives it: ``frames`` ``[T, size, size, 3]`` RGB, display-rotated: uint8,
    or float32 normalised for S3D when the decoder was asked for ``normalized`` clips."""

    frames: np.ndarray
    start: float
    end: float


@dataclass
class DecodeReport:
    """Filled in by a backend while it decodes (times in seconds)."""

    expected_seconds: float | None = None  # the container's duration for the stream
    start_seconds: float = 0.0             # the stream's start time
    first_time: float | None = None        # presentation time of the first frame (clip time 0)
    decoded_seconds: float = 0.0           # media time decoded, from the first frame
    rotation: float = 0.0                  # display rotation, degrees counter-clockwise
    error: str | None = None               # why decoding stopped early, if it did
