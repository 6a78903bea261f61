"""Video decoding (PyAV by default, NVIDIA DALI for GPUs), clip sampling and S3D preprocessing.

``read_clips(path, fps=20, clip_frames=30, size=224, backend="auto")`` yields
``Clip(frames float32 [3, T, size, size], start s, end s)``.
"""

from .errors import (CorruptVideoError, EmptyVideoFileError, NoVideoStreamError, TruncatedVideoWarning,
                     UnsupportedCodecError, VideoError, VideoNotFoundError)
from .preprocess import S3D_MEAN, S3D_STD, normalize_clips
from .reader import BACKENDS, read_clips, read_raw_clips
from .sampling import ClipSpec
from .types import Clip, RawClip

__all__ = [
    "BACKENDS", "Clip", "ClipSpec", "CorruptVideoError", "EmptyVideoFileError", "NoVideoStreamError",
    "RawClip", "S3D_MEAN", "S3D_STD", "TruncatedVideoWarning", "UnsupportedCodecError", "VideoError",
    "VideoNotFoundError", "normalize_clips", "read_clips", "read_raw_clips",
]
