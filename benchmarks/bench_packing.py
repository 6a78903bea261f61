"""Padded against packed micro-batches (``data.pack_sequences``) in a real pretraining run.

Takes a finished demo's directory (``videobert demo --out DIR``) and reruns its pretraining
configuration (``DIR/pretrain/train_config.yaml``: the demo's corpus, initial model and settings,
two ranks of one thread each, as the demo runs them) for ``steps`` steps, padded and packed in turn
for ``rounds`` rounds (this VM's speed drifts within minutes, so the two are interleaved). Prints
each run's tokens/s (the trainer's own figure: real tokens of all ranks over step time) and wall
time with the launch, the positions of a micro-batch in each layout, and the ratio of the medians.

    python benchmarks/bench_packing.py DEMO_DIR [steps] [rounds]     # default 1000 steps, 4 rounds
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from videobert.models import get_family
from videobert.train import launch, load_train_config
from videobert.train.data import RankData


def run_config(demo_dir: Path, out: Path, steps: int, packed: bool):
    return load_train_config(str(demo_dir / "pretrain" / "train_config.yaml"), [
        f"out={out}", "overwrite=true", f"stop_at_step={steps}", f"save_every={steps}", "export=false",
        "tensorboard=false", "progress=false", "data.group_by_length=1", f"data.pack_sequences={str(packed).lower()}"])


def positions_per_micro_batch(config, batches: int = 50) -> float:
    """Mean size of a collated micro-batch's ``input_ids`` over the run's first ``batches``."""
    family = get_family(config.model.family)
    model = family.build_model(*family.prepare(config), config.seed)
    collate = family.collator(config, model)
    data = RankData(family.dataset_factory(config, config.data.split), 0, 1, 1, config.micro_batch_size)
    return sum(collate(data.next_micro_batch(0))["input_ids"].numel() for _ in range(batches)) / batches


def main(demo_dir: Path, steps: int, rounds: int) -> None:
    from videobert.ops.cli import describe_machine

    print(describe_machine())
    rates: dict[bool, list[float]] = {False: [], True: []}
    with tempfile.TemporaryDirectory() as tmp:
        for packed in (False, True):
            config = run_config(demo_dir, Path(tmp) / "probe", steps, packed)
            print(f"{'packed' if packed else 'padded'}: {positions_per_micro_batch(config):.0f} positions per micro-batch")
        for r in range(rounds):
            for packed in (False, True):
                config = run_config(demo_dir, Path(tmp) / ("packed" if packed else "padded"), steps, packed)
                start = time.perf_counter()
                result = launch(config, num_procs=2, env={"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
                rates[packed].append(result.tokens_per_s)
                print(f"round {r} {'packed' if packed else 'padded'}: {result.tokens_per_s:,.0f} tokens/s, "
                      f"{time.perf_counter() - start:.1f} s for {result.step} steps with the launch", flush=True)
    padded, packed = statistics.median(rates[False]), statistics.median(rates[True])
    print(f"medians: padded {padded:,.0f}, packed {packed:,.0f} tokens/s: packed / padded = {packed / padded:.2f}x")


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 1000, int(sys.argv[3]) if len(sys.argv) > 3 else 4)
