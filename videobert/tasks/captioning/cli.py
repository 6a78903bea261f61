"""``videobert eval caption``: train a captioner per variant on one subset of YouCook II-format
annotations, caption another, score with the COCO metrics."""

from __future__ import annotations

import argparse
from pathlib import Path



def register_caption(tasks: argparse._SubParsersAction) -> None:
    from videobert.tasks.cli import _model_args

    caption = tasks.add_parser("caption", help="video captioning on VideoBERT features (s3d / videobert / videobert+s3d), "
                                               "BLEU / METEOR / ROUGE-L / CIDEr (needs Java)")
    _model_args(caption)
    caption.add_argument("--features", required=True, action="append",
                         help="videobert extract output directory (repeatable: e.g. training and validation videos)")
    caption.add_argument("--kmeans", required=True, help="fitted hierarchical k-means (safetensors)")
    caption.add_argument("--annotations", required=True, help="YouCook II-format annotation JSON")
    caption.add_argument("--train-subset", default="training", help="subset the captioner trains on (default: %(default)s)")
    caption.add_argument("--eval-subset", default="validation", help="subset it is scored on (default: %(default)s)")
    caption.add_argument("--variant", default="all",
                         help="s3d, the model family's name (e.g. videobert), FAMILY+s3d, or all (default: %(default)s)")
    caption.add_argument("--seeds", default="0", help="comma-separated captioner seeds; metrics are their median")
    caption.add_argument("--steps", type=int, default=40_000, help="training steps (paper: 40,000)")
    caption.add_argument("--caption-batch-size", type=int, default=128, help="captioner batch (paper: 128)")
    caption.add_argument("--lr", type=float, default=1e-3, help="peak learning rate, decayed linearly (paper: 1e-3)")
    caption.add_argument("--beam-size", type=int, default=5, help="1: greedy decoding")
    caption.add_argument("--videos-dir", action="append", default=[],
                         help="directory of the videos (<video id>.<ext>) for the frames in captions.png (repeatable)")
    caption.add_argument("--out", required=True, help="directory for captions.json, metrics.json, captions.png, captioners/")
    caption.set_defaults(func=run_caption)


def run_caption(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from videobert.tasks.captioning.data import load_video_clips
    from videobert.tasks.captioning.metrics import METRICS, require_java
    from videobert.tasks.captioning.task import BASELINE, CaptioningSettings, run_captioning, split_annotations
    from videobert.tasks.cli import _load_model, _load_tokenizer
    from videobert.tasks.sources import load_kmeans

    require_java()  # before hours of training, not after
    train, heldout = split_annotations(args.annotations, args.train_subset, args.eval_subset)
    model = _load_model(args)
    clips = load_video_clips(args.features, load_kmeans(args.kmeans), {s.video_id for s in train + heldout})
    settings = CaptioningSettings(variants=() if args.variant == "all" else (args.variant,),
                                  seeds=tuple(int(s) for s in args.seeds.split(",")), beam_size=args.beam_size,
                                  device=str(next(model.parameters()).device))
    settings.train = replace(settings.train, steps=args.steps, batch_size=args.caption_batch_size, lr=args.lr)
    metrics = run_captioning(model, _load_tokenizer(args, model), clips, train, heldout, args.out, settings,
                             args.videos_dir)
    print(f"{metrics['segments']['train']} training and {metrics['segments']['eval']} evaluation segments "
          f"(skipped: {metrics['skipped']}); median over seeds {list(settings.seeds)}:")
    for name in (*metrics["settings"]["variants"], BASELINE):
        print(f"  {name:<20} " + "  ".join(f"{m} {metrics[name][m]:.4f}" for m in METRICS))
    print(f"outputs in {Path(args.out)}: captions.json, metrics.json, captions.png, captioners/")
    return 0
