"""End-to-end extraction clips/s beside model-only clips/s (the extractor's model, on the same
device and in the same precision, on clips already in memory, same batch size and input size): the
ratio shows how well decoding hides behind the model.

CPU: 112 px, 30-frame clips at 20 fps, batch 4, 6 videos of 4.5 s (18 clips), 1 decoding worker
(the machine has 2 cores: torch uses them for the model). ``VIDEOBERT_BENCH_FULL=1`` uses 12
videos. On a GPU: 224 px in bf16 (as the extractor runs), batch 32, 48 videos (144 clips), one
decoding worker per spare core up to 8.

    PYTHONPATH=. python -m pytest benchmarks/bench_extract.py --benchmark-only
"""

import os
import time

import numpy as np
import pytest
import torch

from videobert.features.extract import ExtractConfig, Extractor, extract_features, load_model
from videobert.video import normalize_clips, read_raw_clips
from videobert.video.sampling import ClipSpec
from videobert.video.synthetic import write_video

GPU = torch.cuda.is_available()
if GPU:
    SIZE, BATCH, VIDEOS, WORKERS = 224, 32, 48, max(1, min(8, (os.cpu_count() or 2) - 1))
else:
    SIZE, BATCH, VIDEOS, WORKERS = 112, 4, 12 if os.environ.get("VIDEOBERT_BENCH_FULL") else 6, 1


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench_extract")
    for i in range(VIDEOS):
        write_video(root / f"v{i:02d}.mp4", fps=30, frames=135, width=480, height=270, textured=True)
    return root


def config(videos, out) -> ExtractConfig:
    return ExtractConfig(videos=str(videos), out=str(out), size=SIZE, batch_size=BATCH, workers=WORKERS, progress=False)


def model_only_clips_per_s(videos, tmp_path) -> float:
    """The extractor's own model (BatchNorm folded, its device and dtype) on one uint8 batch in
    host memory: the copy to the device, normalisation and S3D, as the extractor does them."""
    extractor = Extractor(config(videos, tmp_path / "unused"))
    model, _ = load_model(None, extractor.device, seed=0)
    raw = [c.frames for c in read_raw_clips(videos / "v00.mp4", ClipSpec(size=SIZE), backend="pyav")]
    frames = torch.from_numpy(np.stack((raw * BATCH)[:BATCH]))

    def step():
        clips = normalize_clips(frames.to(extractor.device), extractor.dtype)
        with torch.inference_mode(), torch.autocast(extractor.device.type, dtype=extractor.dtype, enabled=GPU):
            out = model.embed(clips).float().cpu()
        return out

    step()
    best = float("inf")
    for _ in range(3 if not GPU else 10):
        start = time.perf_counter()
        step()
        best = min(best, time.perf_counter() - start)
    return BATCH / best


def test_extract_end_to_end(benchmark, videos, tmp_path):
    model_rate = model_only_clips_per_s(videos, tmp_path)
    runs = iter(range(100))

    def run():
        return extract_features(config(videos, tmp_path / f"out{next(runs)}"))

    summary = benchmark.pedantic(run, rounds=2, iterations=1)
    clips = summary.clips
    rate = clips / benchmark.stats.stats.min
    benchmark.extra_info.update({"clips": clips, "end_to_end_clips_per_s": rate, "model_only_clips_per_s": model_rate,
                                 "ratio": rate / model_rate, "device": "cuda" if GPU else "cpu", "workers": WORKERS})
    print(f"\nextract ({'cuda' if GPU else 'cpu'}, {WORKERS} decoding workers): {clips} clips, end-to-end {rate:.2f} clips/s, "
          f"model-only {model_rate:.2f} clips/s, ratio {rate / model_rate:.2f}")
