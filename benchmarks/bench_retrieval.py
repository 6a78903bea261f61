"""Retrieval scoring speed: cross-encoder pairs per second (length-sorted batches against batches
in arrival order), two-tower queries per second, and what they project for YouCook II validation
(3,350 segments: 11.2 M cross-encoder pairs, or at most 2 * k * 3,350 re-ranked).

Inputs are YouCook II-shaped: sentences of 4 .. 30 WordPieces (mean ~12), segments of 2 .. 80
visual words (1.5 s clips of 3 .. 120 s segments, mean ~14), random ids, random-weight models:
``demo`` (the demo's 2 layers, hidden 128), ``base`` (BERT-base shape, full vocabularies). Runs on
CUDA when there is one (``VIDEOBERT_BENCH_DEVICE`` overrides), in the model's float32.

Run: ``pytest benchmarks/bench_retrieval.py`` (small sizes) or ``python benchmarks/bench_retrieval.py``
for a table (``VIDEOBERT_BENCH_FULL=1``: more pairs).
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from timing import best_seconds
from videobert.models.videobert import VideoBertConfig, VideoBertForPretraining
from videobert.models.videobert.pairs import PairTables
from videobert.models.videobert.scoring import VideoBertScoring
from videobert.tasks.retrieval.scorers import TwoTower

FULL = os.environ.get("VIDEOBERT_BENCH_FULL") == "1"
DEVICE = os.environ.get("VIDEOBERT_BENCH_DEVICE") or ("cuda" if torch.cuda.is_available() else "cpu")
YOUCOOK_SEGMENTS = 3350
BATCH = 256
# config -> (model config, texts, videos): the pairs are texts x videos
CASES = {
    "demo": (lambda: VideoBertConfig.tiny(hidden_size=128, num_hidden_layers=2, num_attention_heads=4,
                                          intermediate_size=256, text_vocab_size=152, num_visual_words=144),
             128 if FULL else 32, 128 if FULL else 32),
    "base": (VideoBertConfig.base, 64 if FULL else 8, 64 if FULL else 16),
}


def make_inputs(config: VideoBertConfig, n_texts: int, n_videos: int, seed: int = 0
                ) -> tuple[list[list[int]], list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    text_lengths = np.clip(rng.gamma(4.0, 3.0, n_texts).round(), 4, 30).astype(int)
    video_lengths = np.clip(rng.lognormal(np.log(11), 0.7, n_videos).round(), 2, 80).astype(int)
    texts = [rng.integers(104, config.text_vocab_size, n).tolist() for n in text_lengths]  # past the special ids
    videos = [rng.integers(0, config.num_visual_words, n) for n in video_lengths]
    return texts, videos


def make_model(size: str) -> tuple[torch.nn.Module, list[list[int]], list[np.ndarray]]:
    factory, n_texts, n_videos = CASES[size]
    torch.manual_seed(0)
    config = factory()
    model = VideoBertForPretraining(config).to(DEVICE).eval()
    return model, *make_inputs(config, n_texts, n_videos)


def _sync() -> None:
    if DEVICE.startswith("cuda"):
        torch.cuda.synchronize()


def cross_encoder_run(size: str, sort_by_length: bool):
    """A callable scoring every pair once, the pair count, and the padding share of its batches."""
    model, texts, videos = make_model(size)
    tables = PairTables.build(model, texts, videos)
    t, v = np.divmod(np.arange(len(texts) * len(videos)), len(videos))
    # arrival order is text-major; shuffled so that naive batches mix lengths as a real pair list does
    order = np.random.default_rng(1).permutation(len(t))
    t, v = t[order], v[order]
    scoring = VideoBertScoring(model, None, batch_size=BATCH)

    def run() -> None:  # the tables are built inside, as every call builds them
        scoring.pair_logits(texts, videos, t, v, sort_by_length=sort_by_length)
        _sync()

    lengths = tables.pair_lengths(torch.as_tensor(t, device=DEVICE), torch.as_tensor(v, device=DEVICE)).cpu().numpy()
    if sort_by_length:
        lengths = np.sort(lengths, kind="stable")
    padded = sum(len(chunk) * chunk.max() for chunk in np.array_split(lengths, range(BATCH, len(lengths), BATCH)))
    return run, len(t), 1 - lengths.sum() / padded


def two_tower_run(size: str):
    model, texts, videos = make_model(size)
    scorer = TwoTower(VideoBertScoring(model, None, batch_size=BATCH))

    def run() -> None:
        scorer.similarity(texts, videos)
        _sync()

    return run, len(texts)


@pytest.mark.parametrize("sort_by_length", [True, False], ids=["length-sorted", "arrival-order"])
@pytest.mark.parametrize("size", list(CASES))
def test_cross_encoder(benchmark, size, sort_by_length):
    run, pairs, padding = cross_encoder_run(size, sort_by_length)
    benchmark.pedantic(run, rounds=2, iterations=1, warmup_rounds=1)
    benchmark.extra_info.update(pairs=pairs, padding=padding)
    if benchmark.stats:  # absent under --benchmark-disable
        benchmark.extra_info["pairs_per_s"] = pairs / benchmark.stats.stats.min


@pytest.mark.parametrize("size", list(CASES))
def test_two_tower(benchmark, size):
    run, queries = two_tower_run(size)
    benchmark.pedantic(run, rounds=2, iterations=1, warmup_rounds=1)
    benchmark.extra_info["queries"] = queries
    if benchmark.stats:
        benchmark.extra_info["queries_per_s"] = queries / benchmark.stats.stats.min


if __name__ == "__main__":
    from videobert.ops.cli import describe_machine

    print(describe_machine())
    print(f"device {DEVICE}, torch threads {torch.get_num_threads()}, batch {BATCH} pairs")
    print("| config | batching | pairs | padding | pairs/s | 11.2 M pairs (exact) | re-rank k=32 (<= 214 k pairs) |")
    print("|---|---|---|---|---|---|---|")
    for size in CASES:
        for sort_by_length in (True, False):
            run, pairs, padding = cross_encoder_run(size, sort_by_length)
            rate = pairs / best_seconds(run)
            exact = YOUCOOK_SEGMENTS**2 / rate
            rerank = 2 * 32 * YOUCOOK_SEGMENTS / rate
            print(f"| {size} | {'length-sorted' if sort_by_length else 'arrival order'} | {pairs} | {padding:.1%} | "
                  f"{rate:,.0f} | {exact / 3600:.2f} h | {rerank / 60:.1f} min |")
    print()
    print("| config | texts x videos | two-tower queries/s (both sides encoded) |")
    print("|---|---|---|")
    for size in CASES:
        run, queries = two_tower_run(size)
        print(f"| {size} | {queries} x {CASES[size][2]} | {queries / best_seconds(run):,.0f} |")
