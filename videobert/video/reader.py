"""``read_clips``: a video file in, normalised S3D clips out, from either decoding backend."""

from __future__ import annotations

import os
import warnings
from typing import Iterator

import torch

from videobert.utils.dist import local_rank

from .dali_backend import AUTO_GPU_CODECS, DaliDecoder, dali_available
from .errors import TruncatedVideoWarning
from .probe import open_video
from .pyav_backend import PyAVDecoder
from .sampling import ClipSpec
from .types import Clip, DecodeReport, RawClip

BACKENDS = ("auto", "pyav", "dali", "dali-cpu")
# Decoding may stop this far (s) short of the container's announced duration without a warning:
# durations are rounded by muxers and the last frame's display time is an estimate.
TRUNCATION_TOLERANCE = 0.5


def make_decoder(path: str | os.PathLike, backend: str = "auto", pyav_threads: int | None = None):
    """The decoder for ``backend``: ``"pyav"``; ``"dali"`` (GPU when CUDA is available, else CPU);
    ``"dali-cpu"``; ``"auto"``: see :func:`auto_uses_dali`. DALI's GPU is ``cuda:LOCAL_RANK``, the
    process's own GPU under torchrun / deepspeed. ``pyav_threads``: FFmpeg decoding threads for
    PyAV (default: per video, ``pyav_backend.default_threads``)."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown video backend {backend!r}; choose from {BACKENDS}")
    gpu = torch.cuda.is_available()
    if backend == "pyav":
        return PyAVDecoder(pyav_threads)
    if backend in ("dali", "dali-cpu"):
        if not dali_available():
            raise ImportError("the DALI backend needs nvidia-dali (pip install nvidia-dali-cuda120)")
        return DaliDecoder(device="gpu" if gpu and backend == "dali" else "cpu", device_id=local_rank())
    if gpu and dali_available():
        container, stream = open_video(path)
        with container:
            codec = stream.codec_context.name
        if auto_uses_dali(codec, gpu=True):
            return DaliDecoder(device="gpu", device_id=local_rank())
    return PyAVDecoder(pyav_threads)


def auto_uses_dali(codec: str, gpu: bool) -> bool:
    """The ``backend="auto"`` rule: DALI only where it is the faster decoder, which is on a GPU
    (NVDEC) for :data:`~videobert.video.dali_backend.AUTO_GPU_CODECS`; PyAV everywhere else. On the
    CPU, PyAV's threaded FFmpeg decoding with the fused frame conversion is the faster (and the
    universal) choice, so ``"auto"`` never picks DALI's CPU decoder. ``scripts/gpu_check.sh --only
    decode`` measures both decoders per codec on a GPU and reports whether this rule matches."""
    return gpu and codec in AUTO_GPU_CODECS


def read_raw_clips(path: str | os.PathLike, spec: ClipSpec = ClipSpec(), backend: str = "auto") -> Iterator[RawClip]:
    """Like :func:`read_clips`, yielding uint8 ``[T, size, size, 3]`` clips (4x less to move
    between processes; normalise with :func:`videobert.video.preprocess.normalize_clips`)."""
    yield from _decoded_clips(path, spec, backend, normalized=False)


def read_clips(path: str | os.PathLike, fps: float = 20, clip_frames: int = 30, size: int = 224,
               backend: str = "auto", partial: str = "pad") -> Iterator[Clip]:
    """Decode ``path`` into non-overlapping clips of ``clip_frames`` frames resampled to ``fps``.

    Yields :class:`Clip` ``(frames float32 [3, clip_frames, size, size], start s, end s)``, frames
    normalised as torchvision's S3D weights expect (a channels-last view, the layout S3D runs
    fastest in on the CPU); times count from the first frame. The last partial clip is padded by
    repeating its last frame (``partial="pad"``, the default) or dropped (``"drop"``); see
    :mod:`videobert.video.sampling` for the timing rules.

    Raises (all :class:`~videobert.video.errors.VideoError`, naming the file):
    ``VideoNotFoundError``, ``EmptyVideoFileError``, ``CorruptVideoError``, ``NoVideoStreamError``,
    ``UnsupportedCodecError``. A file that stops decoding before its announced end yields the clips
    that decode, then issues a :class:`~videobert.video.errors.TruncatedVideoWarning` carrying the
    clip count and the seconds decoded / expected.
    """
    spec = ClipSpec(fps=fps, clip_frames=clip_frames, size=size, partial=partial)
    for clip in _decoded_clips(path, spec, backend, normalized=True):
        yield Clip(torch.from_numpy(clip.frames).movedim(-1, -4), clip.start, clip.end)


def _decoded_clips(path: str | os.PathLike, spec: ClipSpec, backend: str, normalized: bool) -> Iterator[RawClip]:
    """The decoder's clips (normalised by the decoder itself, in the same pass, when asked), then
    the truncation warning if decoding stopped short."""
    decoder = make_decoder(path, backend)
    report = DecodeReport()
    count = 0
    for clip in decoder.raw_clips(path, spec, report, normalized=normalized):
        count += 1
        yield clip
    truncation = truncation_of(path, report, count)
    if truncation is not None:
        warnings.warn(truncation, stacklevel=3)


def truncation_of(path: str | os.PathLike, report: DecodeReport, clips: int) -> TruncatedVideoWarning | None:
    """The warning to give when decoding (as ``report`` tells it) stopped short, else None."""
    expected = report.expected_seconds
    if expected is not None and report.first_time is not None:
        expected -= report.first_time - report.start_seconds  # time before the first frame
    short = expected is not None and report.decoded_seconds < expected - TRUNCATION_TOLERANCE
    if not (report.error or short):
        return None
    reason = report.error or "the stream ends before the container's announced duration"
    return TruncatedVideoWarning(path, clips, report.decoded_seconds, expected, reason)
