"""Optimizer and learning-rate schedule: Adam(W) without decay on 1-D parameters, linear warm-up,
then linear decay (or constant)."""

from __future__ import annotations

from typing import Any, Callable

import torch

from videobert.train.config import OptimizerConfig, ScheduleConfig


def parameter_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Weight decay on matrices only: biases and norm scales (1-D) are not decayed, as in BERT."""
    decay, no_decay = [], []
    for param in model.parameters():
        if param.requires_grad:
            (decay if param.ndim >= 2 else no_decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def build_optimizer(groups: list[dict[str, Any]], config: OptimizerConfig) -> torch.optim.Optimizer:
    cls = torch.optim.AdamW if config.name == "adamw" else torch.optim.Adam
    return cls(groups, lr=config.lr, betas=tuple(config.betas), eps=config.eps)


def deepspeed_optimizer_section(config: OptimizerConfig) -> dict[str, Any]:
    """The same optimizer as a DeepSpeed config section: with optimizer offload DeepSpeed must build
    its own CPU Adam, it cannot step a torch optimizer on offloaded state."""
    return {"type": "AdamW" if config.name == "adamw" else "Adam",
            "params": {"lr": config.lr, "betas": list(config.betas), "eps": config.eps, "weight_decay": config.weight_decay}}


def lr_multiplier(step: int, total_steps: int, config: ScheduleConfig) -> float:
    """Factor on the base learning rate for optimizer step ``step`` (0-based)."""
    if step < config.warmup_steps:
        return (step + 1) / config.warmup_steps
    if config.decay == "constant":
        return 1.0
    decay_steps = max(1, total_steps - config.warmup_steps)
    progress = min(1.0, (step - config.warmup_steps) / decay_steps)
    return 1.0 - (1.0 - config.min_lr_ratio) * progress


def scheduler_factory(total_steps: int, config: ScheduleConfig) -> Callable[[torch.optim.Optimizer], torch.optim.lr_scheduler.LambdaLR]:
    """What ``deepspeed.initialize(lr_scheduler=...)`` takes: DeepSpeed steps it once per optimizer
    step and saves its state in checkpoints."""
    def make(optimizer: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LambdaLR:
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_multiplier(step, total_steps, config))
    return make
