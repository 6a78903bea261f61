"""Whole-model training step (forward, backward, AdamW step) of VideoBertForPretraining on CPU: tokens/s
and model FLOP utilisation (MFU: the step's model FLOPs per second over a float32 2048^3
``torch.matmul`` measured in the same run; model FLOPs from ``training_step_flops``).

A synthetic collated batch (see docs/ARCHITECTURE.md): video-text sequences of 128 tokens, half
text, half visual words, 15% masked, alignment labels. Configs: ``tiny`` (batch 32) and ``base``
(batch 8, or 32 with ``VIDEOBERT_BENCH_FULL=1``), heads fused (backend "auto") or reference.

Run: ``pytest benchmarks/bench_model.py`` or ``python benchmarks/bench_model.py`` for a table.
"""

from __future__ import annotations

import os

import pytest
import torch

from timing import best_seconds, matmul_flops_per_s, training_step
from videobert.models.videobert import VideoBertConfig, VideoBertForPretraining
from videobert.models.videobert.flops import training_step_flops

LENGTH = 128
FULL = os.environ.get("VIDEOBERT_BENCH_FULL") == "1"
CASES = {"tiny": (VideoBertConfig.tiny, 32), "base": (VideoBertConfig.base, 32 if FULL else 8)}


def make_batch(config: VideoBertConfig, batch: int, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    vocab = config.vocab
    half = LENGTH // 2
    text = torch.randint(1000, 30000, (batch, half), generator=g)
    words = torch.randint(0, config.num_visual_words, (batch, half), generator=g)
    input_ids = torch.cat([text, words + vocab.visual_offset], 1)
    input_ids[:, 0], input_ids[:, half], input_ids[:, -1] = vocab.cls_id, vocab.video_sep_id, vocab.sep_id
    token_type_ids = torch.zeros_like(input_ids)
    token_type_ids[:, half:] = 1
    masked = torch.rand(batch, LENGTH, generator=g) < 0.15
    masked[:, [0, half, LENGTH - 1]] = False
    is_text = token_type_ids == 0
    mlm = torch.where(masked & is_text, input_ids, -100)
    mvm = torch.where(masked & ~is_text, input_ids - vocab.visual_offset, -100)
    input_ids = torch.where(masked, vocab.mask_id, input_ids)
    return {"input_ids": input_ids, "token_type_ids": token_type_ids, "attention_mask": torch.ones_like(input_ids),
            "mlm_labels": mlm, "mvm_labels": mvm, "alignment_labels": torch.randint(0, 2, (batch,), generator=g),
            "stream": torch.full((batch,), 2)}


def make_step(size: str, head_backend: str = "auto"):
    """(step function, tokens per step, model FLOPs per step) for a config and heads backend."""
    factory, batch_size = CASES[size]
    torch.manual_seed(0)
    config = factory(head_backend=head_backend)
    model = VideoBertForPretraining(config).train()
    batch = make_batch(config, batch_size)
    return training_step(model, batch), batch_size * LENGTH, training_step_flops(config, batch)


@pytest.mark.parametrize("size", list(CASES))
def test_training_step(benchmark, size):
    peak = matmul_flops_per_s()
    step, tokens, flops = make_step(size)
    benchmark.extra_info.update(tokens_per_step=tokens, model_flops_per_step=flops, matmul_gflops=peak / 1e9)
    benchmark.pedantic(step, rounds=2, iterations=1, warmup_rounds=1)
    seconds = benchmark.stats.stats.min
    benchmark.extra_info.update(tokens_per_s=tokens / seconds, mfu=flops / seconds / peak)


if __name__ == "__main__":
    from videobert.ops.cli import describe_machine

    print(describe_machine())
    peak = matmul_flops_per_s()
    print(f"torch threads {torch.get_num_threads()}, sequence length {LENGTH}, matmul 2048^3 fp32 {peak / 1e9:.1f} GFLOP/s")
    print("| config | heads | batch | step (s) | tokens/s | model GFLOP/s | MFU (of matmul) |")
    print("|---|---|---|---|---|---|---|")
    for size in CASES:
        for backend in ("auto", "reference"):
            step, tokens, flops = make_step(size, backend)
            seconds = best_seconds(step)
            print(f"| {size} | {'fused' if backend == 'auto' else 'reference'} | {tokens // LENGTH} | {seconds:.3f} | "
                  f"{tokens / seconds:.0f} | {flops / seconds / 1e9:.1f} | {flops / seconds / peak:.0%} |")
