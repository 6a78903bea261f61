"""End-to-end extraction clips/s beside model-only clips/s (S3D on clips already in memory, same
batch size and input size): the ratio shows how well decoding hides behind the model.

CPU default: 112 px, 30-frame clips at 20 fps, batch 4, 6 videos of 4.5 s (18 clips), 1 decoding
worker (the machine has 2 cores: torch uses them for the model). ``VIDEOBERT_BENCH_FULL=1`` uses
12 videos.

    PYTHONPATH=. python -m pytest benchmarks/bench_extract.py --benchmark-only
"""

import os
import time

import numpy as np
import pytest
import torch

from videobert.features import S3D
from videobert.features.extract import ExtractConfig, extract_features
from videobert.video import normalize_clips, read_raw_clips
from videobert.video.sampling import ClipSpec
from videobert.video.synthetic import write_video

VIDEOS = 12 if os.environ.get("VIDEOBERT_BENCH_FULL") else 6
SIZE, BATCH = 112, 4


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench_extract")
    for i in range(VIDEOS):
        write_video(root / f"v{i:02d}.mp4", fps=30, frames=135, width=480, height=270, textured=True)
    return root


def model_only_clips_per_s(videos) -> float:
    raw = [c.frames for c in read_raw_clips(videos / "v00.mp4", ClipSpec(size=SIZE), backend="pyav")]
    frames = torch.from_numpy(np.stack((raw * BATCH)[:BATCH]))
    torch.manual_seed(0)
    model = S3D().eval().with_batchnorm_folded()  # as the extractor runs it
    best = float("inf")
    with torch.inference_mode():
        model.embed(normalize_clips(frames))
        for _ in range(3):
            start = time.perf_counter()
            model.embed(normalize_clips(frames))
            best = min(best, time.perf_counter() - start)
    return BATCH / best


def test_extract_end_to_end(benchmark, videos, tmp_path):
    model_rate = model_only_clips_per_s(videos)
    runs = iter(range(100))

    def run():
        out = tmp_path / f"out{next(runs)}"
        return extract_features(ExtractConfig(videos=str(videos), out=str(out), size=SIZE, batch_size=BATCH,
                                              workers=1, progress=False))

    summary = benchmark.pedantic(run, rounds=2, iterations=1)
    clips = summary.clips
    rate = clips / benchmark.stats.stats.min
    benchmark.extra_info.update({"clips": clips, "end_to_end_clips_per_s": rate, "model_only_clips_per_s": model_rate,
                                 "ratio": rate / model_rate})
    print(f"\nextract: {clips} clips, end-to-end {rate:.2f} clips/s, model-only {model_rate:.2f} clips/s, "
          f"ratio {rate / model_rate:.2f}")
