"""Feature extraction at scale: many videos -> one S3D feature file per video, resumable.

Decoding runs in DataLoader worker processes (or in DALI) while the main process runs S3D on
batches that mix clips from many videos; each video's file is written (atomically) as soon as its
last clip is embedded, then recorded in the manifest. A rerun skips videos whose file exists;
a failing video is recorded as failed with the reason and the others continue.
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from videobert.utils.dist import local_rank, rank_and_world_size, shard
from videobert.utils.manifest import Manifest
from videobert.utils.processes import dies_with_this_process
from videobert.utils.seed import seed_everything
from videobert.video.dali_backend import dali_available
from videobert.video.preprocess import normalize_clips
from videobert.video.sampling import ClipSpec

from .clip_loader import ClipChunk, ClipChunks, VideoEnd, VideoFailed, list_videos
from .fingerprint import claim_extract_output
from .s3d import S3D
from .store import feature_path, write_video_features

log = logging.getLogger(__name__)


@dataclass
class ExtractConfig:
    videos: str                  # a directory of videos or a list file (one path a line)
    out: str                     # output directory
    weights: str | None = None   # torchvision S3D state dict; None: random weights (tests, demos)
    rank: int | None = None      # default: RANK from the launcher, else 0
    world_size: int | None = None
    batch_size: int = 16         # clips per model call
    workers: int = 2             # decoding processes (0: decode in the main process)
    size: int = 224              # crop side (pixels); 112 is 4x cheaper
    fps: float = 20.0
    clip_frames: int = 30
    partial: str = "pad"
    backend: str = "pyav"        # video backend: pyav | dali | dali-cpu | auto
    device: str = "auto"         # auto: cuda:LOCAL_RANK if CUDA is available, else cpu
    seed: int = 0
    progress: bool = True
    overwrite: bool = False      # delete features made with other settings (else such a directory is refused)


@dataclass
class ExtractSummary:
    done: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    clips: int = 0
    seconds: float = 0.0

    @property
    def clips_per_second(self) -> float:
        return self.clips / self.seconds if self.seconds else 0.0


def manifest_path(out: Path, rank: int, world_size: int) -> Path:
    """One manifest per rank, so ranks never append to the same file."""
    return out / ("manifest.jsonl" if world_size == 1 else f"manifest.rank{rank:05d}-of-{world_size:05d}.jsonl")


def pyav_threads_per_worker(workers: int, cores: int) -> int:
    """FFmpeg threads for each decoding process: the cores shared out between the workers, less one
    for each worker's conversion thread (at least one). Every worker taking all cores, PyAV's own
    default, would run workers x cores decoding threads."""
    return max(1, cores // max(1, workers) - 1)


def extraction_device(setting: str) -> torch.device:
    """``"auto"``: this process's GPU where CUDA is available, else the CPU. A GPU without an index
    (``"auto"``, ``"cuda"``) is ``cuda:LOCAL_RANK``: each rank of a node on its own GPU."""
    if setting == "auto":
        setting = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(setting)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", local_rank())
        visible = torch.cuda.device_count()
        if device.index >= visible:
            raise ValueError(f"LOCAL_RANK={device.index} asks for cuda:{device.index}, but {visible} CUDA device(s) are visible")
    return device


def decoding_start_method(device: torch.device, backend: str) -> str | None:
    """How decoding workers start: "spawn" when this process runs the model on a GPU or has already
    initialised CUDA (``torch.cuda.is_initialized()``), or when the workers may decode on the GPU
    (DALI: backend "dali", or "auto" with DALI installed, where CUDA is available): a forked child
    cannot use CUDA once its parent has started it (``torch.cuda.is_available()`` alone starts the
    driver), and a fork of a process holding a CUDA context is not safe. None, the platform's
    default (fork on Linux), for CPU extraction with PyAV workers: cheap to start, no CUDA anywhere."""
    decodes_on_gpu = backend in ("dali", "auto") and dali_available() and torch.cuda.is_available()
    if device.type == "cuda" or torch.cuda.is_initialized() or decodes_on_gpu:
        return "spawn"
    return None


def load_model(weights: str | None, device: torch.device, seed: int) -> tuple[S3D, str]:
    """The S3D to run (eval mode, BatchNorm folded into the convolutions, on ``device``;
    channels_last_3d on GPU) and a description."""
    if weights:
        model, described = S3D.from_file(weights), str(weights)
    else:
        torch.manual_seed(seed)
        model, described = S3D().eval(), f"random(seed={seed})"
        log.warning("no --weights given: S3D has random weights, features only fit tests and demos")
    model = model.with_batchnorm_folded().to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last_3d)
    return model, described


class _VideoState:
    def __init__(self):
        self.features: list[np.ndarray] = []
        self.times: list[np.ndarray] = []
        self.embedded = 0
        self.end: VideoEnd | None = None


class Extractor:
    """Runs one rank's share of a corpus; see :func:`extract_features`."""

    def __init__(self, config: ExtractConfig):
        self.config = config
        self.spec = ClipSpec(fps=config.fps, clip_frames=config.clip_frames, size=config.size, partial=config.partial)
        self.out = Path(config.out)
        self.device = extraction_device(config.device)
        # bf16 on GPUs (fp16 before compute capability 8.0); fp32 on CPU, where low precision is slower.
        self.dtype = torch.float32
        if self.device.type == "cuda":
            self.dtype = torch.bfloat16 if torch.cuda.get_device_capability(self.device) >= (8, 0) else torch.float16

    def run(self) -> ExtractSummary:
        config = self.config
        seed_everything(config.seed)
        rank, world = rank_and_world_size(config.rank, config.world_size)
        self.videos = shard(list_videos(config.videos), rank, world)
        self.out.mkdir(parents=True, exist_ok=True)
        claim_extract_output(config)  # checks the weights file; refuses features made another way
        self.manifest = Manifest(manifest_path(self.out, rank, world))
        self.summary = ExtractSummary()
        todo = []
        for index, video in enumerate(self.videos):
            if feature_path(self.out, video.stem).exists():
                self.summary.skipped.append(video.stem)
            else:
                todo.append((index, video))
        log.info("rank %d/%d: %d videos, %d already done", rank, world, len(self.videos), len(self.summary.skipped))
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)  # this rank's GPU for everything, the pinning thread too
        self.model, self.weights = load_model(config.weights, self.device, config.seed)
        self.states: dict[int, _VideoState] = {}
        self.queue: deque[tuple[int, torch.Tensor]] = deque()  # (video, uint8 clips) awaiting the model
        self.queued = 0
        start = time.perf_counter()
        with self._progress() as self.bar:
            for message in self._messages(todo):
                self._handle(message)
            self._flush_queue(final=True)
        self.summary.seconds = time.perf_counter() - start
        log.info("rank %d: %d videos done, %d failed, %d clips in %.1f s (%.1f clips/s)", rank, len(self.summary.done),
                 len(self.summary.failed), self.summary.clips, self.summary.seconds, self.summary.clips_per_second)
        return self.summary

    def _progress(self):
        from tqdm import tqdm

        return tqdm(unit="clip", desc="extract", disable=not self.config.progress, dynamic_ncols=True)

    def _messages(self, todo):
        workers = min(self.config.workers, len(todo))
        dataset = ClipChunks(todo, self.spec, self.config.backend, chunk_clips=max(1, min(8, self.config.batch_size)),
                             pyav_threads=pyav_threads_per_worker(workers, os.cpu_count() or 1))
        loader = torch.utils.data.DataLoader(
            dataset, batch_size=None, num_workers=workers, pin_memory=self.device.type == "cuda",
            prefetch_factor=4 if workers else None, persistent_workers=False,
            multiprocessing_context=decoding_start_method(self.device, self.config.backend) if workers else None,
            worker_init_fn=dies_with_this_process())  # no decoder outlives this process, even SIGKILLed
        return iter(loader)

    def _handle(self, message) -> None:
        if isinstance(message, ClipChunk):
            state = self.states.setdefault(message.video, _VideoState())
            state.times.append(message.times)
            self.queue.append((message.video, message.frames))
            self.queued += len(message.frames)
            self._flush_queue(final=False)
        elif isinstance(message, VideoEnd):
            self.states.setdefault(message.video, _VideoState()).end = message
            self._finish_if_complete(message.video)
        elif isinstance(message, VideoFailed):
            self.states.pop(message.video, None)
            dropped = [item for item in self.queue if item[0] == message.video]
            self.queue = deque(item for item in self.queue if item[0] != message.video)
            self.queued -= sum(len(frames) for _, frames in dropped)
            video = self.videos[message.video]
            self.manifest.record(video.stem, "failed", path=str(video), reason=message.reason)
            self.summary.failed[video.stem] = message.reason
            log.warning("failed: %s", message.reason)

    def _flush_queue(self, final: bool) -> None:
        while self.queued >= self.config.batch_size or (final and self.queued):
            owners, parts, taken = [], [], 0
            while self.queue and taken < self.config.batch_size:
                video, frames = self.queue.popleft()
                take = min(len(frames), self.config.batch_size - taken)
                if take < len(frames):  # split a chunk across two batches
                    self.queue.appendleft((video, frames[take:]))
                    frames = frames[:take]
                owners.append((video, take))
                parts.append(frames)
                taken += take
            self.queued -= taken
            features = self._embed(torch.cat(parts))
            row = 0
            for video, count in owners:
                state = self.states[video]
                state.features.append(features[row:row + count])
                state.embedded += count
                row += count
            self.summary.clips += taken
            self.bar.update(taken)
            for video in dict.fromkeys(v for v, _ in owners):
                self._finish_if_complete(video)

    @torch.inference_mode()
    def _embed(self, frames: torch.Tensor) -> np.ndarray:
        """uint8 ``[n, T, S, S, 3]`` -> float32 ``[n, 1024]``."""
        frames = frames.to(self.device, non_blocking=True)
        clips = normalize_clips(frames, self.dtype)
        if self.device.type == "cuda":
            with torch.autocast("cuda", dtype=self.dtype):
                return self.model.embed(clips).float().cpu().numpy()
        return self.model.embed(clips).float().numpy()

    def _finish_if_complete(self, index: int) -> None:
        state = self.states.get(index)
        if state is None or state.end is None or state.embedded < state.end.clips:
            return
        del self.states[index]
        video = self.videos[index]
        features = np.concatenate(state.features) if state.features else np.zeros((0, 1024), np.float32)
        times = np.concatenate(state.times) if state.times else np.zeros((0, 2), np.float64)
        metadata = {"video": str(video), "weights": self.weights, "fps": str(self.spec.fps),
                    "clip_frames": str(self.spec.clip_frames), "size": str(self.spec.size)}
        write_video_features(self.out, video.stem, features, times, metadata)
        fields = {"path": str(video), "clips": int(len(features))}
        if state.end.note:
            fields["note"] = state.end.note
        self.manifest.record(video.stem, "done", **fields)
        self.summary.done.append(video.stem)
        self.bar.set_postfix(videos=len(self.summary.done), failed=len(self.summary.failed), refresh=False)


def extract_features(config: ExtractConfig) -> ExtractSummary:
    """Extract S3D features for this rank's share of ``config.videos`` into ``config.out``."""
    return Extractor(config).run()
