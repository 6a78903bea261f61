"""NVIDIA DALI decoding: NVDEC on a GPU (H.264, HEVC, VP9, AV1, ...), libavcodec on the CPU
(VP8, VP9 and MJPEG only).

The frame *selection* is the same as PyAV's: the presentation times of the stream's packets are
read with PyAV's demuxer (no decoding), run through the shared :class:`TimestampResampler`, and
DALI decodes exactly the selected frame indices (repeats allowed), resizes them to the square
(linear, antialiased) and crops the centre, in chunks of ``clips_per_run`` clips.
"""

from __future__ import annotations

import os
import threading
from functools import lru_cache
from typing import Iterator

import av
import numpy as np
import torch

from .errors import CorruptVideoError, UnsupportedCodecError
from .preprocess import normalize_levels, rotate_frames
from .probe import expected_duration, open_video, stream_start
from .sampling import ClipSpec, TimestampResampler, group_into_clips
from .types import DecodeReport, RawClip

CPU_CODECS = frozenset({"vp8", "vp9", "mjpeg"})
GPU_CODECS = CPU_CODECS | {"h264", "hevc", "av1", "mpeg4"}
# What ``read_clips(backend="auto")`` hands to DALI on a GPU: the codecs NVDEC decodes in hardware on
# every GPU generation the CUDA build targets (7.0 on). AV1 (Ampere on), VP8, MPEG-4 part 2 and MJPEG
# depend on the generation, so "auto" leaves them to PyAV; backend="dali" still tries them.
AUTO_GPU_CODECS = frozenset({"h264", "hevc", "vp9"})


def dali_available() -> bool:
    try:
        import nvidia.dali  # noqa: F401
    except ImportError:
        return False
    return True


class DaliDecoder:
    name = "dali"

    def __init__(self, device: str = "cpu", device_id: int = 0, clips_per_run: int = 8, threads: int = 2):
        """``device_id``: the CUDA device index of ``device="gpu"`` (callers pass ``LOCAL_RANK``)."""
        if device not in ("cpu", "gpu"):
            raise ValueError(f"DALI device must be 'cpu' or 'gpu', got {device!r}")
        self.device = device
        self.device_id = device_id
        self.clips_per_run = clips_per_run
        self.threads = threads

    def supports(self, codec: str) -> bool:
        return codec in (GPU_CODECS if self.device == "gpu" else CPU_CODECS)

    def raw_clips(self, path: str | os.PathLike, spec: ClipSpec, report: DecodeReport,
                  normalized: bool = False) -> Iterator[RawClip]:
        """Clips of uint8 RGB frames, or of float32 frames normalised for S3D (``normalized``)."""
        frame_indices = self._select_frames(path, spec, report)
        encoded = np.fromfile(os.fspath(path), dtype=np.uint8)
        clips = list(group_into_clips(frame_indices, spec))
        pipeline = _pipeline(self.device, self.device_id, self.threads, spec.size, spec.resize_size)
        for first in range(0, len(clips), self.clips_per_run):
            chunk = clips[first:first + self.clips_per_run]
            indices = np.array([i for frames, _, _ in chunk for i in frames], dtype=np.int32)
            try:
                decoded = pipeline.decode(encoded, indices)  # [F, S, S, 3] uint8
            except RuntimeError as exc:
                if first == 0:
                    raise CorruptVideoError(path, f"DALI cannot decode: {_first_line(exc)}") from exc
                report.error = f"DALI stopped at {chunk[0][1]:.2f} s: {_first_line(exc)}"
                return
            for n, (_, start, end) in enumerate(chunk):
                frames = rotate_frames(decoded[n * spec.clip_frames:(n + 1) * spec.clip_frames], report.rotation)
                yield RawClip(normalize_levels(torch.from_numpy(frames)).numpy() if normalized else frames, start, end)

    def _select_frames(self, path, spec: ClipSpec, report: DecodeReport) -> list[int]:
        """Frame indices (presentation order) that fill each output slot, from packet times."""
        container, stream = open_video(path)
        with container:
            codec = stream.codec_context.name
            if not self.supports(codec):
                raise UnsupportedCodecError(path, f"DALI on {self.device.upper()} cannot decode {codec} "
                                                  f"(supported: {sorted(GPU_CODECS if self.device == 'gpu' else CPU_CODECS)})")
            report.expected_seconds = expected_duration(container, stream)
            report.start_seconds = stream_start(stream)
            try:
                times = sorted(float(p.pts * p.time_base) for p in container.demux(stream) if p.pts is not None and p.size)
                container.seek(0)
                first = next(container.decode(stream), None)  # the display matrix travels on frames
            except av.FFmpegError as exc:
                raise CorruptVideoError(path, f"cannot read the video stream: {exc}") from exc
        if not times or first is None:
            raise CorruptVideoError(path, "the video stream has no decodable frames")
        report.rotation = first.rotation
        resampler: TimestampResampler[int] = TimestampResampler(spec.fps)
        selected = [i for index, t in enumerate(times) for i in resampler.push(t, index)]
        selected += resampler.finish()
        report.first_time = resampler.first_time
        report.decoded_seconds = resampler.end_seconds
        return selected


def _first_line(exc: BaseException) -> str:
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__


class _Pipeline:
    """A built DALI pipeline fed one encoded file and a list of frame indices per run."""

    def __init__(self, device: str, device_id: int, threads: int, size: int, resize: int):
        from nvidia.dali import fn, pipeline_def, types

        @pipeline_def(batch_size=1, num_threads=threads, device_id=device_id if device == "gpu" else None,
                      prefetch_queue_depth=1, exec_dynamic=True)
        def decode_resize_crop():
            encoded = fn.external_source(name="encoded", dtype=types.UINT8, ndim=1)
            indices = fn.external_source(name="indices", dtype=types.INT32, ndim=1)
            frames = fn.decoders.video(encoded, frames=indices, device="mixed" if device == "gpu" else "cpu")
            frames = fn.resize(frames, resize_x=resize, resize_y=resize, antialias=True,
                               interp_type=types.INTERP_LINEAR)
            return fn.crop(frames, crop=(size, size), crop_pos_x=0.5, crop_pos_y=0.5)

        self.pipeline = decode_resize_crop()
        self.pipeline.build()
        self.lock = threading.Lock()

    def decode(self, encoded: np.ndarray, indices: np.ndarray) -> np.ndarray:
        with self.lock:
            self.pipeline.feed_input("encoded", [encoded])
            self.pipeline.feed_input("indices", [indices])
            (out,) = self.pipeline.run()
            if hasattr(out, "as_cpu"):
                out = out.as_cpu()
            return np.array(out[0])


@lru_cache(maxsize=4)
def _pipeline(device: str, device_id: int, threads: int, size: int, resize: int) -> _Pipeline:
    return _Pipeline(device, device_id, threads, size, resize)
