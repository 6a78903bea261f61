"""Step metrics averaged over micro-batches and ranks, and where they go: tqdm, TensorBoard and
``metrics.jsonl`` (one JSON object per logged step, read by tests, the demo and plots)."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import torch

from videobert.train.distributed import all_reduce_sum


class MetricSums:
    """Sums and counts of each metric over the micro-batches of a step, then over ranks.

    ``keys``: every scalar the model may return (its family's ``metric_keys``, the same on every
    rank: they are reduced as one vector); one absent from a micro-batch is simply not counted.
    ``loss`` is the mean of the micro-batch losses: the quantity whose gradient the step applies.
    """

    def __init__(self, keys: tuple[str, ...]) -> None:
        self.keys = keys
        self.values = torch.zeros(len(keys), dtype=torch.float64)
        self.counts = torch.zeros(len(keys), dtype=torch.float64)
        self.tokens = 0
        self.examples = 0

    def add(self, outputs: dict[str, Any], tokens: int, examples: int) -> None:
        for index, key in enumerate(self.keys):
            if key in outputs:
                self.values[index] += float(outputs[key].detach() if torch.is_tensor(outputs[key]) else outputs[key])
                self.counts[index] += 1
        self.tokens += tokens
        self.examples += examples

    def reduce(self) -> dict[str, float]:
        """Means over every rank's micro-batches, plus the step's total ``tokens`` and ``examples``."""
        packed = torch.cat([self.values, self.counts, torch.tensor([self.tokens, self.examples], dtype=torch.float64)])
        packed = all_reduce_sum(packed)
        n = len(self.keys)
        values, counts = packed[:n], packed[n:2 * n]
        result = {key: (values[i] / counts[i]).item() for i, key in enumerate(self.keys) if counts[i] > 0}
        result["tokens"], result["examples"] = packed[2 * n].item(), packed[2 * n + 1].item()
        return result


class TrainLogger:
    """Rank 0's outputs: the progress bar, TensorBoard scalars and ``metrics.jsonl``."""

    def __init__(self, out_dir: Path, total_steps: int, start_step: int, progress: bool, tensorboard: bool):
        self.metrics_path = out_dir / "metrics.jsonl"
        self._truncate_after(start_step)
        self.bar = None
        if progress:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total_steps, initial=start_step, desc="pretrain", unit="step", dynamic_ncols=True)
        self.writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(out_dir / "tensorboard"), purge_step=start_step + 1)

    def _truncate_after(self, step: int) -> None:
        """A resumed run rewrites the steps after its checkpoint: drop their stale records."""
        if not self.metrics_path.exists():
            return
        kept = [line for line in self.metrics_path.read_text(encoding="utf-8").splitlines()
                if line.strip() and _record_step(line) <= step]
        from videobert.utils.io import write_text_atomic

        write_text_atomic(self.metrics_path, "".join(line + "\n" for line in kept))

    def log(self, step: int, scalars: dict[str, float], kind: str = "train") -> None:
        record = {"step": step, "kind": kind, **scalars}
        with open(self.metrics_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record, sort_keys=True) + "\n")
        if self.writer is not None:
            for key, value in scalars.items():
                if math.isfinite(value):
                    self.writer.add_scalar(f"{kind}/{key}", value, step)

    def progress(self, step: int, loss: float, tokens_per_s: float) -> None:
        if self.bar is not None:
            self.bar.update(step - self.bar.n)
            self.bar.set_postfix(loss=f"{loss:.4f}", tok_s=f"{tokens_per_s:,.0f}", refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        if self.writer is not None:
            self.writer.close()


def _record_step(line: str) -> int:
    try:
        return int(json.loads(line)["step"])
    except (ValueError, KeyError, TypeError):
        return 1 << 62  # a line cut short by a kill: drop it


def read_metrics(out_dir: str | os.PathLike, kind: str = "train") -> list[dict[str, float]]:
    """The records of ``kind`` ("train" or "eval") in ``out_dir/metrics.jsonl``, in step order."""
    path = Path(out_dir) / "metrics.jsonl"
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return sorted((r for r in records if r.get("kind") == kind), key=lambda r: r["step"])
