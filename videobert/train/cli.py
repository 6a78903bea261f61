"""``videobert pretrain`` and ``videobert export``."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    pretrain = subparsers.add_parser(
        "pretrain", help="pretrain VideoBERT on a corpus with DeepSpeed",
        description="Pretrain (or resume) a VideoBERT run. Runs as one process, or on every rank under the "
                    "deepspeed launcher (scripts/pretrain.sh). Re-running with the same --out resumes.")
    pretrain.add_argument("--corpus", help="corpus directory (sets data.corpus)")
    pretrain.add_argument("--out", help="run directory (sets out)")
    pretrain.add_argument("--config", help="TrainConfig YAML/JSON file, or a shipped name: tiny, paper")
    pretrain.add_argument("--seed", type=int, help="sets seed")
    pretrain.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. steps=1000 optimizer.lr=1e-4")
    pretrain.set_defaults(func=run_pretrain)

    export = subparsers.add_parser(
        "export", help="write a from_pretrained model directory from a pretraining checkpoint",
        description="Consolidate a checkpoint of any ZeRO stage (0-3) into a from_pretrained directory, in one process.")
    export.add_argument("checkpoints", help="a run's checkpoints/ directory (or the run directory holding it)")
    export.add_argument("out", help="output model directory")
    export.add_argument("--tag", help="checkpoint tag, e.g. step_00001000 (default: the newest)")
    export.set_defaults(func=run_export)


def run_pretrain(args: argparse.Namespace) -> int:
    import torch.distributed as dist

    from videobert.train.config import load_train_config
    from videobert.train.loop import pretrain

    overrides = list(args.overrides)
    for key, value in (("data.corpus", args.corpus), ("out", args.out), ("seed", args.seed)):
        if value is not None:
            overrides.append(f"{key}={value}")
    result = pretrain(load_train_config(args.config, overrides))
    if dist.get_rank() == 0:  # the ranks return the same result
        print(f"{result.stopped} at step {result.step}: loss {result.loss:.4f}, {result.tokens_per_s:,.0f} tokens/s; "
              f"checkpoint {result.checkpoint}" + (f"; model {result.model_dir}" if result.model_dir else ""))
    return 0


def run_export(args: argparse.Namespace) -> int:
    from pathlib import Path

    from videobert.train.checkpoint import export_checkpoint

    checkpoints = Path(args.checkpoints)
    if not (checkpoints / "latest").exists() and (checkpoints / "checkpoints" / "latest").exists():
        checkpoints = checkpoints / "checkpoints"
    out = export_checkpoint(checkpoints, args.out, args.tag)
    print(f"exported {checkpoints} to {out}")
    return 0
