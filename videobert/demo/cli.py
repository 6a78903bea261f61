"""``videobert demo``: the whole pipeline on built-in synthetic data."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    demo = subparsers.add_parser(
        "demo", help="run the whole pipeline on built-in synthetic data and show what the model learned",
        description="Generate narrated synthetic videos, extract S3D features, fit visual words, build the "
                    "corpus, pretrain on DeepSpeed and evaluate zero-shot classification on held-out videos. "
                    "Rerunning with the same --out resumes finished stages.")
    demo.add_argument("--out", default="videobert-demo", help="output directory (default: %(default)s)")
    demo.add_argument("--fresh", action="store_true", help="delete the earlier demo outputs in --out and start over")
    demo.add_argument("--s3d-weights", default="", help="torchvision S3D Kinetics state dict (default: random weights)")
    demo.add_argument("--seed", type=int, default=0, help="seed of every random choice (default: %(default)s)")
    demo.add_argument("--size", choices=("full", "small"), default="full",
                      help="full: the real demo (~15 min on 2 cores); small: a quick smoke run (default: %(default)s)")
    demo.add_argument("--steps", type=int, help="pretraining steps (default: the size's own, 7000 full, 30 small)")
    demo.add_argument("--family", default="videobert",
                      help="model family to train and score: videobert, actbert or videoprism (default: %(default)s)")
    demo.set_defaults(func=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    import logging

    from videobert.demo.config import demo_config
    from videobert.demo.pipeline import DemoPipeline
    from videobert.demo.report import format_report
    from videobert.demo.stages import StageFailed
    from videobert.utils.dirlock import lock_directory

    from videobert.models import FAMILIES

    if args.family not in FAMILIES:
        raise SystemExit(f"videobert demo: unknown --family {args.family!r}; choose from {', '.join(FAMILIES)}")
    config = demo_config(args.size, args.seed, args.s3d_weights, args.family)
    if args.steps is not None:
        config.steps = args.steps
    pipeline = DemoPipeline(args.out, config)
    try:
        with lock_directory(args.out):  # one demo per --out (a second one is refused at once)
            report = pipeline.run(fresh=args.fresh)
    except StageFailed as exc:
        logging.getLogger("videobert.demo").error("%s\n(details in %s/stages.jsonl; rerun to resume from this stage)", exc, args.out)
        return 1
    print(format_report(report, args.out))
    return 0
