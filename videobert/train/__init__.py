"""Pretraining VideoBERT on DeepSpeed ZeRO (stages 0-3, optional CPU offload), from one CPU
process to many GPU nodes, with checkpoints that resume exactly.

Python API::

    from videobert.train import TrainConfig, load_train_config, pretrain, launch, export_checkpoint

    config = load_train_config("tiny", ["data.corpus=corpus/", "out=runs/tiny", "steps=200"])
    result = pretrain(config)            # in this process (world size 1, or every rank under a launcher)
    result = launch(config, num_procs=2) # 2 ranks via the deepspeed launcher (gloo on CPU), in a subprocess
    result.model_dir                     # from_pretrained directory written at the end ("" if not)
    export_checkpoint("runs/tiny/checkpoints", "exported/")   # any ZeRO stage, offline, one process

``load_train_config(name_or_path, overrides)`` reads a YAML/JSON ``TrainConfig`` (shipped names:
``tiny``, ``paper``); ``TrainResult`` has ``step``, ``stopped`` ("completed" / "stop_at_step" /
"sigterm" / "sigint"), ``loss``, ``tokens_per_s``, ``checkpoint``, ``model_dir`` and ``metrics`` (the
``metrics.jsonl`` path; ``read_metrics(out_dir)`` parses it). Re-running with the same ``out``
resumes from its newest checkpoint. Command line: ``videobert pretrain`` and ``videobert export``;
launch scripts and the multi-node recipe: ``scripts/`` and ``docs/TRAINING.md``.

Output directory: ``checkpoints/`` (DeepSpeed tags + ``latest`` + ``model_config.json``),
``metrics.jsonl``, ``tensorboard/``, ``train_config.yaml``, ``deepspeed_config.json``,
``result.json``, ``model/`` (export).
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "TrainConfig": "videobert.train.config",
    "load_train_config": "videobert.train.config",
    "deepspeed_config": "videobert.train.config",
    "pretrain": "videobert.train.loop",
    "TrainResult": "videobert.train.loop",
    "NonFiniteLossError": "videobert.train.loop",
    "launch": "videobert.train.launcher",
    "export_checkpoint": "videobert.train.checkpoint",
    "read_metrics": "videobert.train.metrics",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    # Lazy: `videobert --help` imports this package and must not pay for torch and deepspeed.
    if name not in _EXPORTS:
        raise AttributeError(f"module 'videobert.train' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_EXPORTS[name]), name)
