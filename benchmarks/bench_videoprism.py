"""VideoPrism: encoder throughput (clips/s: frames -> space-time tokens -> pooled embedding) and
training-step throughput (forward, backward, AdamW step; clips/s) of stage 1 (contrastive), stage 2
(masked distillation against a frozen teacher) and stage 3 (text alignment on the frozen encoder).
Attention runs through
``F.scaled_dot_product_attention``.

Configs: ``tiny`` (the demo's sizes; batch 32) and ``base`` (published VideoPrism-B: 16 x 288 px
frames, 4,096 tokens a clip; batch 2 on a CPU). On a GPU the ``gpu`` preset (bf16 autocast) runs
instead of ``base`` (batch 8). ``VIDEOBERT_BENCH_SMOKE=1`` shrinks every case to a smoke run.

Run: ``pytest benchmarks/bench_videoprism.py`` or ``python benchmarks/bench_videoprism.py`` for a table.
"""

from __future__ import annotations

import os
from typing import Callable

import numpy as np
import pytest
import torch

from timing import best_seconds, training_step
from videobert.models.videoprism import VideoPrismConfig, VideoPrismForPretraining
from videobert.models.videoprism.collator import VideoPrismCollator

SMOKE = os.environ.get("VIDEOBERT_BENCH_SMOKE") == "1"
GPU = torch.cuda.is_available()
DEVICE = torch.device("cuda" if GPU else "cpu")


def config_of(size: str, stage: int = 1) -> tuple[VideoPrismConfig, int]:
    """The config and batch size of a case."""
    if size == "tiny" or SMOKE:
        return VideoPrismConfig.tiny(stage=stage, text={"vocab_size": 2000}), 4 if SMOKE else 32
    if GPU:
        return VideoPrismConfig.gpu(stage=stage), 8
    return VideoPrismConfig.base(stage=stage), 2


def make_batch(config: VideoPrismConfig, batch: int, seed: int = 0) -> dict[str, torch.Tensor]:
    rng = np.random.default_rng(seed)
    shape = (config.num_frames, config.image_size, config.image_size, 3)
    examples = [{"frames": rng.integers(0, 256, shape, dtype=np.uint8), "seed": int(rng.integers(2**62)),
                 "text_ids": rng.integers(1000, config.text.vocab_size, 12).tolist()} for _ in range(batch)]
    return {k: v.to(DEVICE) for k, v in VideoPrismCollator(config)(examples).items()}


def make_encoder(size: str) -> tuple[Callable[[], None], int]:
    config, batch_size = config_of(size)
    torch.manual_seed(0)
    model = VideoPrismForPretraining(config).to(DEVICE).eval()
    frames = make_batch(config, batch_size)["frames"]

    @torch.inference_mode()
    def encode() -> None:
        model.embed_video(frames)
        if GPU:
            torch.cuda.synchronize()
    return encode, batch_size


def make_step(size: str, stage: int) -> tuple[Callable[[], float], int]:
    config, batch_size = config_of(size, stage)
    torch.manual_seed(0)
    model = VideoPrismForPretraining(config.replace(stage=1))
    if stage == 2:  # against a frozen teacher of the same sizes
        model = VideoPrismForPretraining.for_distillation(model)
    elif stage == 3:  # the encoder frozen: its forward only, no backward through it
        model = VideoPrismForPretraining.for_text_alignment(model)
    return training_step(model.to(DEVICE).train(), make_batch(config, batch_size), lr=1e-4), batch_size


SIZES = ["tiny", "base"]


@pytest.mark.parametrize("size", SIZES)
def test_encoder_clips_per_second(benchmark, size):
    encode, clips = make_encoder(size)
    benchmark.pedantic(encode, rounds=2, iterations=1, warmup_rounds=1)
    benchmark.extra_info["clips_per_s"] = clips / benchmark.stats.stats.min


@pytest.mark.parametrize("stage", [1, 2, 3])
@pytest.mark.parametrize("size", SIZES)
def test_training_step(benchmark, size, stage):
    step, clips = make_step(size, stage)
    benchmark.pedantic(step, rounds=2, iterations=1, warmup_rounds=1)
    benchmark.extra_info["clips_per_s"] = clips / benchmark.stats.stats.min


if __name__ == "__main__":
    from videobert.ops.cli import describe_machine

    print(describe_machine())
    print(f"device {DEVICE}, torch threads {torch.get_num_threads()}")
    print("| config | what | batch | seconds | clips/s |")
    print("|---|---|---|---|---|")
    for size in SIZES:
        encode, clips = make_encoder(size)
        seconds = best_seconds(encode)
        print(f"| {size} | encoder | {clips} | {seconds:.3f} | {clips / seconds:.1f} |")
        for stage in (1, 2, 3):
            step, clips = make_step(size, stage)
            seconds = best_seconds(step)
            print(f"| {size} | stage-{stage} step | {clips} | {seconds:.3f} | {clips / seconds:.1f} |")
