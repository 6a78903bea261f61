"""Small synthetic video files for tests, benchmarks and demos, written with PyAV.

Frame ``i`` has a smooth horizontal gradient whose brightness encodes ``i`` (so a test can tell
which source frame a decoder picked) and a white band on its left edge (so a test can tell how it
was rotated).
"""

from __future__ import annotations

import os
from fractions import Fraction
from functools import lru_cache
from typing import Sequence

import av
import numpy as np

# codec -> (pixel format, container suffix that holds it)
CODECS = {
    "libx264": ("yuv420p", ".mp4"),
    "mpeg4": ("yuv420p", ".avi"),
    "libvpx-vp9": ("yuv420p", ".webm"),
    "libvpx": ("yuv420p", ".webm"),
    "mjpeg": ("yuvj420p", ".avi"),
}


def frame_level(index: int) -> int:
    """Brightness (0-255) that marks source frame ``index`` (cycles every 12 frames, steps of 20)."""
    return 20 * (index % 12) + 10


def synthetic_frame(index: int, width: int, height: int) -> np.ndarray:
    """RGB uint8 ``[height, width, 3]`` frame ``index``: a gradient at level ``frame_level(index)``
    (green and blue), red ramps left to right, a white band over the leftmost eighth."""
    image = np.empty((height, width, 3), dtype=np.uint8)
    image[..., 0] = np.linspace(0, 255, width, dtype=np.float32)[None, :].astype(np.uint8)
    image[..., 1] = frame_level(index)
    image[..., 2] = frame_level(index)
    image[:, : max(1, width // 8)] = 255
    return image


def textured_frame(index: int, width: int, height: int, seed: int = 0) -> np.ndarray:
    """RGB uint8 frame ``index`` of a noise texture panning 2 px per frame: costs an encoder and a
    decoder about what camera footage does (unlike the flat synthetic frames), for benchmarks."""
    texture = _noise(width + 1024, height + 64, seed)
    shift = (2 * index) % 1024
    return np.ascontiguousarray(texture[32:32 + height, shift:shift + width])


@lru_cache(maxsize=2)
def _noise(width: int, height: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def write_video(path: str | os.PathLike, codec: str = "libx264", fps: float | Fraction = 30, frames: int = 60,
                width: int = 96, height: int = 64, times: Sequence[float] | None = None, rotation: int = 0,
                audio: bool = False, textured: bool = False, pix_fmt: str | None = None) -> str:
    """Write a synthetic video and return its path.

    ``fps`` may be fractional (``Fraction(30000, 1001)`` for 29.97); ``times`` (seconds, one per
    frame, increasing) makes a variable-frame-rate file (on a 1/90000 time base); ``rotation`` sets
    the display matrix (degrees counter-clockwise; MP4/MOV only); ``audio`` adds a sine track;
    ``textured`` writes :func:`textured_frame` instead of :func:`synthetic_frame`; ``pix_fmt``
    overrides the codec's pixel format in :data:`CODECS` (``codec`` may then be one not listed there).
    """
    pix_fmt = pix_fmt or CODECS[codec][0]
    rate = Fraction(fps).limit_denominator(1001)
    with av.open(os.fspath(path), "w") as container:
        stream = container.add_stream(codec, rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        if times is not None:
            stream.codec_context.time_base = Fraction(1, 90000)
            stream.time_base = Fraction(1, 90000)
        if rotation:
            stream.set_display_rotation(rotation)
        audio_stream = container.add_stream("aac", rate=16000) if audio else None
        count = len(times) if times is not None else frames
        for i in range(count):
            image = textured_frame(i, width, height) if textured else synthetic_frame(i, width, height)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            if times is not None:
                frame.pts = round(times[i] * 90000)
                frame.time_base = Fraction(1, 90000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
        if audio_stream is not None:
            _write_sine(container, audio_stream, seconds=count / float(rate))
    return os.fspath(path)


def write_audio_only(path: str | os.PathLike, seconds: float = 1.0) -> str:
    """An audio-only file (AAC in MP4, or by the suffix's container)."""
    with av.open(os.fspath(path), "w") as container:
        _write_sine(container, container.add_stream("aac", rate=16000), seconds)
    return os.fspath(path)


def _write_sine(container, stream, seconds: float) -> None:
    rate, samples = 16000, 1024
    total = int(seconds * rate)
    for start in range(0, total, samples):
        t = (np.arange(start, start + samples) / rate).astype(np.float32)
        frame = av.AudioFrame.from_ndarray((0.1 * np.sin(2 * np.pi * 440 * t))[None, :], format="fltp", layout="mono")
        frame.sample_rate, frame.pts = rate, start
        container.mux(stream.encode(frame))
    container.mux(stream.encode())
