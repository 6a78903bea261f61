"""PyAV (FFmpeg) decoding: any codec FFmpeg reads, on the CPU.

Frames are decoded in order, resampled by presentation time, and only the frames that fill an
output slot are converted: resized with antialiased bilinear filtering (the weights of
torchvision's ``resize``, so frames match the S3D weights' own transform; swscale's scaling measured
7-10 levels away on average), centre-cropped and converted to RGB (see FrameConverter).

Conversion runs on a second thread, at most a clip's worth of frames behind the decoder, and
decoding of frames below LARGE_FRAME_PIXELS leaves it a core; the conversion kernels release the
GIL, so decoding and converting overlap instead of taking turns (benchmarks/RESULTS.md, video section).
"""

from __future__ import annotations

import os
from contextlib import closing
from typing import Iterator, NamedTuple

import av
import numpy as np
import torch
import torch.nn.functional as F
from av.video.reformatter import VideoReformatter

from videobert.ops.backends import compiled_module
from videobert.ops.frame_resize import frame_resize, yuv_to_rgb_affine

from .ahead import mapped_ahead
from .errors import CorruptVideoError
from .preprocess import S3D_MEAN, S3D_STD, normalize_levels, rotate_frames
from .probe import expected_duration, open_video, stream_start
from .sampling import ClipSpec, TimestampResampler, group_into_clips
from .types import DecodeReport, RawClip


# Frames of at least this many pixels decode on every core by default; smaller ones leave a core to
# the conversion thread. On 2 cores, in interleaved comparisons (benchmarks/RESULTS.md, video
# section), 1280x720 kept 0.01-0.13 more of a bare decode's speed with two decoding threads than with
# one, 640x360 0.12-0.23 more with one, and 640x272 came out even: decoding a large frame outweighs
# converting it.
LARGE_FRAME_PIXELS = 960 * 540


def default_threads(width: int, height: int, cores: int) -> int:
    """FFmpeg decoding threads for a ``width`` x ``height`` video on ``cores`` cores."""
    return cores if width * height >= LARGE_FRAME_PIXELS else max(1, cores - 1)


class PyAVDecoder:
    name = "pyav"

    def __init__(self, threads: int | None = None):
        # FFmpeg decoding threads (0: FFmpeg's own choice, cores + 1); None: default_threads per video
        self.threads = threads

    def raw_clips(self, path: str | os.PathLike, spec: ClipSpec, report: DecodeReport,
                  normalized: bool = False) -> Iterator[RawClip]:
        """Clips of uint8 RGB frames, or of float32 frames normalised for S3D (``normalized``)."""
        container, stream = open_video(path)
        with container:
            stream.thread_type = "AUTO"
            context = stream.codec_context
            stream.thread_count = (default_threads(context.width, context.height, os.cpu_count() or 1)
                                   if self.threads is None else self.threads)
            report.expected_seconds = expected_duration(container, stream)
            report.start_seconds = stream_start(stream)
            shown = self._resampled_frames(path, container, stream, spec, report)
            # converted a frame at a time soon after decoding, while the frame is still in cache (a clip
            # at a time measured 12% slower at 720p); closed before the container, so the conversion
            # thread finishes first even on an early exit
            with closing(mapped_ahead(FrameConverter(spec, normalized), shown, spec.clip_frames, "videobert-convert")) as slots:
                for clip_slots, start, end in group_into_clips(slots, spec):
                    yield RawClip(rotate_frames(clip_array(clip_slots), report.rotation), start, end)

    def _resampled_frames(self, path, container, stream, spec: ClipSpec, report: DecodeReport) -> Iterator[av.VideoFrame]:
        """The decoded frame shown in each output slot, in order (a frame repeats for repeated slots)."""
        resampler: TimestampResampler[av.VideoFrame] = TimestampResampler(spec.fps)
        try:
            for frame in container.decode(stream):
                if resampler.frames_seen == 0:
                    report.rotation = frame.rotation
                yield from resampler.push(frame.time, frame)
        except av.FFmpegError as exc:
            if resampler.frames_seen == 0:
                raise CorruptVideoError(path, f"no frame decodes: {exc}") from exc
            report.error = f"decoding stopped at {resampler.end_seconds:.2f} s: {exc}"
        if resampler.frames_seen == 0:
            raise CorruptVideoError(path, "the video stream has no decodable frames")
        yield from resampler.finish()
        report.first_time = resampler.first_time
        report.decoded_seconds = resampler.end_seconds


# 8-bit planar YUV formats the frame_resize kernel takes directly (-> full range?); decoders give
# these for nearly all H.264 / HEVC / VP9 / AV1 / MPEG-4 / MJPEG video.
PLANAR_YUV_FULL_RANGE = {"yuv420p": False, "yuv422p": False, "yuv444p": False,
                         "yuvj420p": True, "yuvj422p": True, "yuvj444p": True}
# FFmpeg's AVColorSpace values -> colour matrix; unspecified and the rest: BT.601, as swscale does
COLOUR_MATRICES = {1: "bt709", 4: "fcc", 5: "bt601", 6: "bt601", 7: "smpte240m", 9: "bt2020", 10: "bt2020"}
JPEG_RANGE = 2  # AVCOL_RANGE_JPEG


def frame_planes(frame: av.VideoFrame) -> tuple[torch.Tensor, ...]:
    """The frame's planes as uint8 ``[rows, cols]`` tensor views (rows ``line_size`` bytes apart)."""
    return tuple(torch.from_numpy(np.frombuffer(p, np.uint8).reshape(p.height, p.line_size)[:, :p.width])
                 for p in frame.planes)


class Slot(NamedTuple):
    """Where a converted frame went: slot ``index`` of the clip-sized array ``clip``."""

    clip: np.ndarray
    index: int


def clip_array(slots: list[Slot]) -> np.ndarray:
    """The clip of these slots. FrameConverter counts slots as group_into_clips does, so a clip's
    frames already sit in order in one array; only the padding of a last partial clip (repeats of
    its last slot) is still to be copied in."""
    clip = slots[0].clip
    for t, slot in enumerate(slots):
        if slot.clip is not clip or slot.index != t:
            clip[t] = slot.clip[slot.index]
    return clip


class FrameConverter:
    """Each shown frame -> the next slot of a clip-sized array ``[T, size, size, 3]``: uint8 RGB, or
    float32 normalised for S3D; a frame shown in consecutive slots is converted once.

    8-bit planar YUV frames go through the ``frame_resize`` kernel (the planes resized, then only
    the output pixels converted and, for float32, normalised in the same pass: 0.11-0.13 ms per
    640x360 frame against 0.42 ms for the route below), with the frame's own colour matrix and range.
    Other formats (10-bit, NV12, RGB, grey) are converted to RGB by swscale through one shared
    reformatter (``frame.to_ndarray`` would build a new swscale context for every frame: 0.75 vs
    0.28 ms) and resized by PyTorch. The routes agree to rounding, except that swscale's fast
    conversion truncates (its RGB is about one level darker). Not thread-safe: one per thread."""

    def __init__(self, spec: ClipSpec, normalized: bool = False):
        self.reformatter = VideoReformatter()
        self.resize = spec.resize_size
        self.margin = (spec.resize_size - spec.size) // 2
        self.size = spec.size
        self.clip_frames = spec.clip_frames
        self.crop = (self.margin, self.margin, self.size, self.size)
        self.normalize = (S3D_MEAN, S3D_STD) if normalized else None
        self.dtype = np.float32 if normalized else np.uint8
        self.planar_kernel = compiled_module("_C") is not None
        self._clip = np.empty(0)
        self._next = spec.clip_frames
        self._last: av.VideoFrame | None = None

    def __call__(self, frame: av.VideoFrame) -> Slot:
        if self._next == self.clip_frames:  # a fresh array: yielded clips are never written again
            self._clip, self._next = np.empty((self.clip_frames, self.size, self.size, 3), self.dtype), 0
        t = self._next
        self._next += 1
        if t > 0 and frame is self._last:
            self._clip[t] = self._clip[t - 1]
        else:
            self._convert(frame, self._clip[t])
        self._last = frame
        return Slot(self._clip, t)

    def _convert(self, frame: av.VideoFrame, out: np.ndarray) -> None:
        full_range = PLANAR_YUV_FULL_RANGE.get(frame.format.name)
        if full_range is not None and self.planar_kernel:
            affine = yuv_to_rgb_affine(COLOUR_MATRICES.get(frame.colorspace, "bt601"),
                                       full_range or frame.color_range == JPEG_RANGE)
            frame_resize(*frame_planes(frame), affine, (self.resize, self.resize), self.crop, out=torch.from_numpy(out),
                         normalize=self.normalize, backend="cpu")
        else:
            levels = torch.from_numpy(self._through_rgb(frame))
            out[...] = levels if self.normalize is None else normalize_levels(levels)

    def _through_rgb(self, frame: av.VideoFrame) -> np.ndarray:
        rgb = self.reformatter.reformat(frame, format="rgb24").to_ndarray()
        rgb = torch.from_numpy(rgb).permute(2, 0, 1)[None]  # channels-last view
        resized = F.interpolate(rgb, size=(self.resize, self.resize), mode="bilinear", antialias=True, align_corners=False)
        m, s = self.margin, self.size
        return resized[0, :, m:m + s, m:m + s].permute(1, 2, 0).numpy()
