"""Training tokens per second of the model families at the same size: ActBERT against VideoBERT.

One training step (forward, backward, AdamW step) on a synthetic collated batch of 128 tokens per
example for both: VideoBERT's ``[CLS] 62 text [>] 63 visual words [SEP]`` (``bench_model``'s
batch), ActBERT's 64 text tokens, 32 clips (S3D features, 1024-d) and 32 regions (each clip's
whole frame, 48-d features as the demo's stand-in detector gives), 15% masked in each stream,
matching labels. Sizes: ``demo`` (the demo's model: hidden 128, 2 layers) and
``base`` (BERT-base sizes, full vocabulary; ActBERT's last 2 text layers tangled). Tokens are the
batch's real positions in every stream (what ``attention_mask`` sums, as the trainer counts them).

Run: ``pytest benchmarks/bench_families.py`` or ``python benchmarks/bench_families.py`` for a table.
"""

from __future__ import annotations

import time

import pytest
import torch

from bench_model import make_batch as videobert_batch
from timing import training_step
from videobert.models.actbert import ActBertConfig, ActBertForPretraining
from videobert.models.videobert import VideoBertConfig, VideoBertForPretraining

TEXT, CLIPS, REGION_DIM, ACTION_DIM = 64, 32, 48, 1024
DEMO = dict(hidden_size=128, num_hidden_layers=2, num_attention_heads=4, intermediate_size=256)
SIZES = {"demo": (DEMO, 32), "base": ({}, 8)}


def actbert_batch(config: ActBertConfig, batch: int, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(104, config.text_vocab_size, (batch, TEXT), generator=g)
    ids[:, 0], ids[:, -1] = 101, 102
    masked = torch.rand(batch, TEXT, generator=g) < 0.15
    masked[:, [0, -1]] = False
    action_masked = torch.rand(batch, CLIPS, generator=g) < 0.15
    region_masked = torch.rand(batch, CLIPS, generator=g) < 0.15
    return {
        "input_ids": torch.where(masked, 103, ids), "attention_mask": torch.ones(batch, TEXT + 2 * CLIPS, dtype=torch.long),
        "mlm_labels": torch.where(masked, ids, -100),
        "action_features": torch.randn(batch, CLIPS, ACTION_DIM, generator=g) * ~action_masked[..., None],
        "action_masked": action_masked.long(),
        "action_labels": torch.where(action_masked, torch.randint(0, config.num_actions, (batch, CLIPS), generator=g), -100),
        "region_features": torch.rand(batch, CLIPS, REGION_DIM, generator=g), "region_locations": torch.rand(batch, CLIPS, 5, generator=g),
        "region_clips": torch.arange(CLIPS).expand(batch, CLIPS), "region_masked": region_masked.long(),
        "region_targets": torch.softmax(torch.randn(batch, CLIPS, config.num_object_classes, generator=g), -1),
        "region_labelled": region_masked, "matching_labels": torch.randint(0, 2, (batch,), generator=g),
    }


def make_model_and_batch(family: str, size: str) -> tuple[torch.nn.Module, dict[str, torch.Tensor]]:
    sizes, batch_size = SIZES[size]
    torch.manual_seed(0)
    if family == "videobert":
        config = VideoBertConfig.base(num_visual_words=144, max_position_embeddings=128, **sizes)
        return VideoBertForPretraining(config).train(), videobert_batch(config, batch_size)
    config = ActBertConfig.base(num_actions=8, num_object_classes=7, region_feature_dim=REGION_DIM,
                                action_feature_dim=ACTION_DIM, max_position_embeddings=128,
                                **({**sizes, "num_tangled_layers": 1} if size == "demo" else sizes))
    return ActBertForPretraining(config).train(), actbert_batch(config, batch_size)


def make_step(family: str, size: str):
    model, batch = make_model_and_batch(family, size)
    return training_step(model, batch), int(batch["attention_mask"].sum())


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("family", ["videobert", "actbert"])
def test_training_step(benchmark, family, size):
    step, tokens = make_step(family, size)
    benchmark.extra_info["tokens_per_step"] = tokens
    benchmark.pedantic(step, rounds=2, iterations=1, warmup_rounds=1)
    benchmark.extra_info["tokens_per_s"] = tokens / benchmark.stats.stats.min


if __name__ == "__main__":
    from videobert.ops.cli import describe_machine

    print(describe_machine())
    print(f"torch threads {torch.get_num_threads()}")
    print("| size | family | batch | tokens | step (s) | tokens/s |")
    print("|---|---|---|---|---|---|")
    for size in SIZES:
        for family in ("videobert", "actbert"):
            step, tokens = make_step(family, size)
            step()
            times = []
            for _ in range(3):
                start = time.perf_counter()
                step()
                times.append(time.perf_counter() - start)
            print(f"| {size} | {family} | {SIZES[size][1]} | {tokens} | {min(times):.3f} | {tokens / min(times):,.0f} |")
