"""The data pipeline must not be the bottleneck: collated examples/s against the tiny model's training examples/s.

Setup (issue 4): one core (``torch.set_num_threads(1)``), batch 128, ``max_length`` 128 (the tiny
model's positions), full vocabularies (30,522 text ids, 20,736 visual words). The examples are real
ones: a synthetic corpus (48 videos of 120 clips, a sentence every 4 s, 16-word video segments) is
built with ``build_corpus`` and read through ``PretrainingDataset`` with the default augmentation.

- ``collator``: ``MaskingCollator`` on 128 examples (the figure the issue asks for), padded and
  packed (``pack_sequences``: the examples laid end to end in fewer rows);
- ``dataset``: ``PretrainingDataset`` producing 128 examples (memory-mapped corpus, augmentation);
- ``tiny_model_step``: ``VideoBertForPretraining(VideoBertConfig.tiny())`` forward + backward +
  AdamW step on one collated batch, padded and packed: the examples/s training consumes.

Run: ``pytest benchmarks/bench_collator.py`` (the ratio is printed at the end), or
``python benchmarks/bench_collator.py`` for a plain table.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from videobert.corpus import CorpusConfig, MaskingCollator, PretrainingDataset, build_corpus
from videobert.text import Cue, WordPieceTokenizer
from videobert.vocab import UnifiedVocab

BATCH, MAX_LENGTH, VIDEOS, CLIPS = 128, 128, 48, 120
WORDS = "now let me show you how to cut slice fry stir whisk the onion tomato egg dough pan slowly".split()
RESULTS: dict[str, float] = {}


def build_bench_corpus(out_dir) -> None:
    rng = np.random.default_rng(0)
    videos = []
    for v in range(VIDEOS):
        times = np.stack([np.arange(CLIPS) * 1.5, np.arange(CLIPS) * 1.5 + 1.5], axis=1)
        cues = [Cue(4.0 * i, 4.0 * i + 3.2, " ".join(rng.choice(WORDS, rng.integers(5, 15))) + ".") for i in range(int(CLIPS * 1.5 / 4))]
        videos.append((f"video{v:03d}", rng.integers(0, 12**4, CLIPS), times, cues if v % 8 else None))
    build_corpus(videos, out_dir, CorpusConfig(heldout_fraction=0.0), WordPieceTokenizer())


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("bench_corpus")
    build_bench_corpus(out)
    return PretrainingDataset(out, seed=0)


@pytest.fixture(scope="module")
def batches(dataset):
    examples = [dataset.example(p) for p in range(8 * BATCH)]
    return [examples[i : i + BATCH] for i in range(0, len(examples), BATCH)]


def examples_per_second(benchmark, name: str) -> float:
    rate = BATCH / benchmark.stats.stats.median  # the median: the machine is shared, means catch other jobs
    RESULTS[name] = rate
    benchmark.extra_info["examples_per_second"] = rate
    return rate


LAYOUTS = pytest.mark.parametrize("packed", [False, True], ids=["padded", "packed"])


def case(name: str, packed: bool) -> str:
    return f"{name}_packed" if packed else name


@LAYOUTS
def test_collator(benchmark, batches, packed):
    collate = MaskingCollator(UnifiedVocab(), max_length=MAX_LENGTH, pack_sequences=packed)
    it = iter(range(10**9))
    benchmark.pedantic(lambda: collate(batches[next(it) % len(batches)]), rounds=60, warmup_rounds=3)
    examples_per_second(benchmark, case("collator", packed))


def test_dataset(benchmark, dataset):
    start = iter(range(0, 10**9, BATCH))

    def produce():
        first = next(start) % (len(dataset) - BATCH)
        return [dataset.example(p) for p in range(first, first + BATCH)]

    benchmark.pedantic(produce, rounds=20, warmup_rounds=1)
    examples_per_second(benchmark, "dataset")


@LAYOUTS
def test_tiny_model_step(benchmark, batches, packed):
    model_module = pytest.importorskip("videobert.models.videobert")
    torch.manual_seed(0)
    model = model_module.VideoBertForPretraining(model_module.VideoBertConfig.tiny(max_position_embeddings=MAX_LENGTH))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    collate = MaskingCollator(UnifiedVocab(), max_length=MAX_LENGTH, pack_sequences=packed)
    collated = [collate(b) for b in batches]
    benchmark.extra_info["positions_per_batch"] = float(np.mean([c["input_ids"].numel() for c in collated]))
    it = iter(range(10**9))

    def step():
        out = model(**collated[next(it) % len(collated)])
        optimizer.zero_grad(set_to_none=True)
        out["loss"].backward()
        optimizer.step()

    benchmark.pedantic(step, rounds=10, warmup_rounds=2)
    examples_per_second(benchmark, case("tiny_model_step", packed))


def test_report_ratio():
    if not {"collator", "tiny_model_step"} <= RESULTS.keys():
        pytest.skip("needs the collator and model benchmarks of the same run")
    ratio = min(RESULTS[k] for k in RESULTS if k.startswith("collator")) / max(RESULTS[k] for k in RESULTS if k.startswith("tiny"))
    print("\n" + ", ".join(f"{k}: {v:,.0f} examples/s" for k, v in RESULTS.items()) + f"; slowest collator / fastest tiny model step = {ratio:.1f}x")


if __name__ == "__main__":
    from videobert.ops.cli import describe_machine

    print(describe_machine())
    import tempfile

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        build_bench_corpus(tmp)
        ds = PretrainingDataset(tmp, seed=0)
        t = time.perf_counter()
        examples = [ds.example(p) for p in range(8 * BATCH)]
        print(f"dataset: {len(examples) / (time.perf_counter() - t):,.0f} examples/s")
        for packed in (False, True):
            collate = MaskingCollator(UnifiedVocab(), max_length=MAX_LENGTH, pack_sequences=packed)
            t = time.perf_counter()
            for i in range(0, len(examples), BATCH):
                collate(examples[i : i + BATCH])
            print(f"collator ({'packed' if packed else 'padded'}): {len(examples) / (time.perf_counter() - t):,.0f} examples/s")
