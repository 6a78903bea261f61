"""Opening a video file with PyAV, with a specific error for each way it can be unreadable,
and the container's own idea of how long the video stream is."""

from __future__ import annotations

import os
from pathlib import Path

import av

from .errors import CorruptVideoError, EmptyVideoFileError, NoVideoStreamError, VideoNotFoundError


def check_file(path: str | os.PathLike) -> Path:
    """The path, if it names a non-empty regular file; else the matching :class:`VideoError`."""
    path = Path(path)
    if not path.exists():
        raise VideoNotFoundError(path, "no such file")
    if not path.is_file():
        raise VideoNotFoundError(path, "not a regular file")
    if path.stat().st_size == 0:
        raise EmptyVideoFileError(path, "file is empty (0 bytes)")
    return path


def open_video(path: str | os.PathLike) -> tuple["av.container.InputContainer", "av.video.stream.VideoStream"]:
    """Open ``path`` and pick its first video stream. The caller closes the container."""
    path = check_file(path)
    try:
        container = av.open(str(path), mode="r")
    except av.FFmpegError as exc:
        raise CorruptVideoError(path, f"cannot open container: {exc}") from exc
    if not container.streams.video:
        kinds = sorted({s.type for s in container.streams})
        container.close()
        if "audio" in kinds or "subtitle" in kinds:
            what = "audio only" if kinds == ["audio"] else f"streams: {', '.join(kinds)}"
            raise NoVideoStreamError(path, f"no video stream ({what})")
        # e.g. an MP4 cut before its index: the container opens but describes no media.
        raise CorruptVideoError(path, f"no audio or video stream (streams: {', '.join(kinds) or 'none'}); "
                                      "truncated or not a media file")
    return container, container.streams.video[0]


def expected_duration(container, stream) -> float | None:
    """Duration (s) the container announces for ``stream``, from its start time; None if unknown."""
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return None


def stream_start(stream) -> float:
    """The stream's start time in seconds (0 when the container does not say)."""
    if stream.start_time is None or stream.time_base is None:
        return 0.0
    return float(stream.start_time * stream.time_base)
