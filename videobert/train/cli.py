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
    pretrain.add_argument("--overwrite", action="store_true",
                          help="delete a run in --out made with other settings and start over (sets overwrite=true)")
    pretrain.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. steps=1000 optimizer.lr=1e-4")
    pretrain.set_defaults(func=run_pretrain)

    export = subparsers.add_parser(
        "export", help="write a from_pretrained model directory from a pretraining checkpoint",
        description="Consolidate a checkpoint of any ZeRO stage (0-3) into a from_pretrained directory, in one process.")
    export.add_argument("checkpoints", help="a run's checkpoints/ directory (or the run directory holding it)")
    export.add_argument("out", help="output model directory")
    export.add_argument("--tag", help="checkpoint tag, e.g. step_00001000 (default: the newest)")
    export.add_argument("--pipeline", action="store_true",
                        help="write a VideoBertPipeline bundle (model, tokenizer, tree, clip spec, S3D digest), from the "
                             "run's corpus and features records")
    export.add_argument("--s3d-weights", help="with --pipeline: the S3D weights the features were extracted with")
    export.add_argument("--captioner", help="with --pipeline: a captioner directory written by `videobert eval caption` "
                                            "(OUT/captioners/<variant>) on this run's model, for caption(path)")
    export.set_defaults(func=run_export)


def run_pretrain(args: argparse.Namespace) -> int:
    import contextlib
    import signal

    import torch.distributed as dist

    from videobert.train.config import load_train_config
    from videobert.train.loop import pretrain
    from videobert.utils.dirlock import lock_directory
    from videobert.utils.dist import rank_and_world_size
    from videobert.utils.stopping import Stopped

    overrides = list(args.overrides)
    for key, value in (("data.corpus", args.corpus), ("out", args.out), ("seed", args.seed), ("overwrite", args.overwrite or None)):
        if value is not None:
            overrides.append(f"{key}={value}")
    config = load_train_config(args.config, overrides)
    # One run per directory: rank 0 holds the lock (the other ranks are its partners, not rivals).
    with lock_directory(config.out) if rank_and_world_size()[0] == 0 else contextlib.nullcontext():
        result = pretrain(config)
    if dist.get_rank() == 0:  # the ranks return the same result
        print(f"{result.stopped} at step {result.step}: loss {result.loss:.4f}, {result.tokens_per_s:,.0f} tokens/s; "
              f"checkpoint {result.checkpoint}" + (f"; model {result.model_dir}" if result.model_dir else ""))
    if result.stopped in ("sigterm", "sigint"):  # checkpointed: exit 143 / 130, a rerun resumes
        raise Stopped(signal.SIGTERM if result.stopped == "sigterm" else signal.SIGINT)
    return 0


def run_export(args: argparse.Namespace) -> int:
    from pathlib import Path

    from videobert.train.checkpoint import export_checkpoint

    checkpoints = Path(args.checkpoints)
    if not (checkpoints / "latest").exists() and (checkpoints / "checkpoints" / "latest").exists():
        checkpoints = checkpoints / "checkpoints"
    if args.captioner and not args.pipeline:
        raise ValueError("--captioner goes with --pipeline: a plain model directory holds no captioner")
    if args.pipeline:
        from videobert.pipeline.export import export_pipeline

        out = export_pipeline(checkpoints.parent, args.out, args.s3d_weights, args.tag, args.captioner)
        print(f"exported {checkpoints} to the VideoBertPipeline bundle {out}")
        return 0
    out = export_checkpoint(checkpoints, args.out, args.tag)
    print(f"exported {checkpoints} to {out}")
    return 0
