"""Pretraining throughput on CPU: tokens/s of real `videobert.train` runs (DeepSpeed ZeRO-2, fp32),
one process vs two gloo ranks, for the tiny and base models.

Each case launches a short run through the deepspeed launcher (``launch(config, num_procs)``, so
both cases start the same way) on a synthetic corpus built with ``build_corpus``; tokens/s are the
run's own figures (non-padding tokens of all ranks / step wall time), from ``metrics.jsonl``,
leaving out the first step (allocation, warm-up). Sequences are up to 128 tokens.

Sizes: tiny batch 32 (micro-batch 8), 12 steps; base batch 8 (micro-batch 4), 3 steps, or batch 32
and 5 steps with ``VIDEOBERT_BENCH_FULL=1``.

Layouts (``LAYOUTS``): 1 process on all cores, 1 process on 1 thread, 2 ranks splitting the cores
(``OMP_NUM_THREADS`` per rank).

Run: ``pytest benchmarks/bench_train.py`` or ``python benchmarks/bench_train.py`` for a table.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pytest

from videobert.corpus import CorpusConfig, build_corpus
from videobert.text import Cue
from videobert.train import launch, load_train_config, read_metrics

FULL = os.environ.get("VIDEOBERT_BENCH_FULL") == "1"
CASES = {  # size -> (batch_size, micro_batch_size, steps)
    "tiny": (32, 8, 12),
    "base": (32, 4, 5) if FULL else (8, 4, 3),
}
CORES = os.cpu_count() or 1
# (ranks, intra-op threads per rank): all cores in one process, one core in one process, the cores
# split between two ranks. OpenMP threads that wait on each other suffer on a machine shared with
# other jobs, which is why one process on one thread is measured too.
LAYOUTS = [(1, CORES), (1, 1), (2, max(1, CORES // 2))]
SPEECH = ("first we heat the oil in a large pan then add the chopped onions and garlic and stir them "
          "until they turn golden brown now season with salt and pepper").split()


def synthetic_corpus(out: Path, videos: int = 24, seed: int = 0) -> Path:
    """Videos of 80 clips (2 minutes) with a sentence of 30 words every 15 seconds."""
    rng = np.random.default_rng(seed)

    def items():
        for v in range(videos):
            times = np.stack([np.arange(80) * 1.5, np.arange(80) * 1.5 + 1.5], axis=1)
            cues = [Cue(start=15.0 * i, end=15.0 * i + 14.5, text=" ".join(rng.choice(SPEECH, 30)) + ".") for i in range(8)]
            yield f"video{v:03d}", rng.integers(0, 12**4, 80), times, cues

    build_corpus(items(), out, CorpusConfig(heldout_fraction=0.1))
    return out


def measure(corpus: Path, out: Path, size: str, ranks: int, threads: int) -> dict[str, float]:
    """Figures of one run on ``ranks`` ranks of ``threads`` intra-op threads each."""
    batch_size, micro_batch_size, steps = CASES[size]
    config = load_train_config("tiny", [
        f"data.corpus={corpus}", f"out={out}", f"model.preset={size}", f"steps={steps}", f"batch_size={batch_size}",
        f"micro_batch_size={micro_batch_size}", "data.max_length=128", "deepspeed=zero2", "eval_every=0",
        f"save_every={steps}", "export=false", "progress=false", "tensorboard=false"])
    launch(config, num_procs=ranks, timeout=1800, env={"OMP_NUM_THREADS": str(threads)})
    records = read_metrics(out)[1:]
    tokens, seconds = sum(r["tokens"] for r in records), sum(r["seconds"] for r in records)
    return {"tokens_per_s": tokens / seconds, "seconds_per_step": seconds / len(records), "steps_timed": len(records)}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return synthetic_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.mark.parametrize("ranks,threads", LAYOUTS)
@pytest.mark.parametrize("size", list(CASES))
def test_train_tokens_per_second(benchmark, corpus, tmp_path, size, ranks, threads):
    figures = {}

    def run():
        figures.update(measure(corpus, tmp_path / f"{size}-{ranks}x{threads}", size, ranks, threads))

    benchmark.pedantic(run, rounds=1, iterations=1)
    benchmark.extra_info.update({"size": size, "ranks": ranks, "threads_per_rank": threads, "zero_stage": 2, **figures})
    assert figures["tokens_per_s"] > 0


if __name__ == "__main__":
    from videobert.ops.cli import describe_machine

    print(describe_machine())
    with tempfile.TemporaryDirectory() as tmp:
        corpus_dir = synthetic_corpus(Path(tmp) / "corpus")
        print("| model | ranks x threads | batch | tokens/s | s/step |")
        print("|---|---|---|---|---|")
        for size in CASES:
            for ranks, threads in LAYOUTS:
                f = measure(corpus_dir, Path(tmp) / f"{size}-{ranks}x{threads}", size, ranks, threads)
                print(f"| {size} | {ranks} x {threads} | {CASES[size][0]} | {f['tokens_per_s']:,.0f} | {f['seconds_per_step']:.2f} |", flush=True)
