"""Timing helpers the benchmark scripts share."""

from __future__ import annotations

import time
from typing import Callable

import torch


def best_seconds(run: Callable[[], object], rounds: int = 2) -> float:
    """The fastest of ``rounds`` calls of ``run`` after one warm-up call, in seconds."""
    run()
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def training_step(model: torch.nn.Module, batch: dict[str, torch.Tensor], lr: float = 1e-5) -> Callable[[], float]:
    """One optimizer step on ``batch``: forward, backward, AdamW; returns the loss."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)

    def step() -> float:
        optimizer.zero_grad(set_to_none=True)
        loss = model(**batch)["loss"]
        loss.backward()
        optimizer.step()
        return float(loss.detach())

    return step
