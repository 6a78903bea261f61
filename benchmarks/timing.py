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
    """One optimizer step on ``batch``: forward, backward, AdamW over the trainable parameters; returns the loss."""
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)

    def step() -> float:
        optimizer.zero_grad(set_to_none=True)
        loss = model(**batch)["loss"]
        loss.backward()
        optimizer.step()
        return float(loss.detach())

    return step


def matmul_flops_per_s(size: int = 2048, rounds: int = 10) -> float:
    """FLOP/s of a ``size``-cubed float32 ``torch.matmul`` on the CPU, best of ``rounds``: the
    practical peak that kernels and training steps are compared with (in the same run)."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    return 2.0 * size**3 / best_seconds(lambda: a @ b, rounds)
