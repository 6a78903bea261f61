"""Exceptions for unreadable videos, and the warning for a video cut short.

Every error names the file; catching :class:`VideoError` catches them all (the extractor records
the message in its manifest and moves on to the next video).
"""

from __future__ import annotations

import os


class VideoError(Exception):
    """Base class: a video file that cannot be turned into clips."""

    def __init__(self, path: str | os.PathLike, message: str):
        self.path = os.fspath(path)
        super().__init__(f"{self.path}: {message}")


class VideoNotFoundError(VideoError, FileNotFoundError):
    """The path does not exist or is not a regular file."""


class EmptyVideoFileError(VideoError):
    """The file has zero bytes."""


class CorruptVideoError(VideoError):
    """The container or the stream cannot be read (garbage, bad header, undecodable from the start)."""


class NoVideoStreamError(VideoError):
    """The file is a valid media file without a video stream (e.g. audio only)."""


class UnsupportedCodecError(VideoError):
    """The chosen backend cannot decode this codec (e.g. DALI on CPU and H.264)."""


class TruncatedVideoWarning(UserWarning):
    """Decoding stopped before the end the container announced; the clips before it were yielded.

    Attributes: ``path``, ``clips`` (clips yielded), ``decoded_seconds`` (media time decoded),
    ``expected_seconds`` (the container's duration, or None), ``reason``.
    """

    def __init__(self, path: str | os.PathLike, clips: int, decoded_seconds: float,
                 expected_seconds: float | None, reason: str):
        self.path = os.fspath(path)
        self.clips = clips
        self.decoded_seconds = decoded_seconds
        self.expected_seconds = expected_seconds
        self.reason = reason
        expected = "unknown" if expected_seconds is None else f"{expected_seconds:.2f} s"
        super().__init__(f"{self.path}: truncated: decoded {decoded_seconds:.2f} s of {expected} "
                         f"({clips} clips yielded): {reason}")
