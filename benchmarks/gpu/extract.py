"""GPU piece `extract`: S3D feature extraction end to end on the GPU in bf16 (PyAV decoding in
worker processes, batching, the model, the writes) against the model alone on clips already in
memory: clips/s of each and their ratio, which shows how well decoding hides behind the model.

The setup is benchmarks/bench_extract.py's GPU case (224 px, batch 32, 48 synthetic 4.5 s videos,
one decoding worker per spare core up to 8), reused as it is; the model-only figure without PyAV
(random uint8 clips) is measured even where PyAV is missing.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import torch

from gpu_common import REPO, MissingPackages, device, piece_main, require, time_call


def model_only(dev: torch.device, size: int, batch: int) -> dict:
    """The extractor's model (BatchNorm folded, channels-last, bf16 autocast on a GPU) on one batch
    of random uint8 clips in host memory: copy, normalisation and S3D, as the extractor does them."""
    from videobert.features.extract import load_model
    from videobert.video import normalize_clips

    dtype = torch.bfloat16 if dev.type == "cuda" else torch.float32
    model, _ = load_model(None, dev, seed=0)
    frames = torch.randint(0, 256, (batch, 30, size, size, 3), dtype=torch.uint8)
    if dev.type == "cuda":
        frames = frames.pin_memory()

    @torch.inference_mode()
    def step():
        clips = normalize_clips(frames.to(dev, non_blocking=True), dtype)
        with torch.autocast(dev.type, dtype=dtype, enabled=dev.type == "cuda"):
            return model.embed(clips).float().cpu()

    seconds = time_call(step, dev)
    return {"clips_per_s": batch / seconds, "batch": batch, "size": size, "dtype": str(dtype).removeprefix("torch.")}


def measure(args) -> dict:
    dev = device()
    size, batch = (32, 2) if args.smoke else (224, 32)
    result = {"device": str(dev), "model_only": model_only(dev, size, batch)}
    try:
        require(["av"], "end-to-end extraction (decoding the videos)")
    except MissingPackages as exc:
        result["end_to_end"] = {"skipped": str(exc)}
        return result
    sys.path.insert(0, str(REPO / "benchmarks"))
    import bench_extract  # noqa: E402  (the CPU/GPU benchmark's videos and extractor settings)
    from videobert.features.extract import extract_features

    frames, width, height = (135, 480, 270)  # bench_extract's videos: 4.5 s, three clips each
    if args.smoke:
        bench_extract.SIZE, bench_extract.BATCH, bench_extract.VIDEOS, bench_extract.WORKERS = size, batch, 2, 1
        frames, width, height = 30, 96, 64
    with tempfile.TemporaryDirectory() as tmp:
        videos = Path(tmp) / "videos"
        videos.mkdir()
        for i in range(bench_extract.VIDEOS):
            bench_extract.write_video(videos / f"v{i:02d}.mp4", fps=30, frames=frames, width=width, height=height, textured=True)
        start = time.perf_counter()
        summary = extract_features(bench_extract.config(videos, Path(tmp) / "out"))
        seconds = time.perf_counter() - start
    rate = summary.clips / seconds
    result["end_to_end"] = {"clips": summary.clips, "videos": len(summary.done), "failed": len(summary.failed),
                            "seconds": seconds, "clips_per_s": rate, "workers": bench_extract.WORKERS,
                            "over_model_only": rate / result["model_only"]["clips_per_s"]}
    return result


if __name__ == "__main__":
    piece_main(measure)
