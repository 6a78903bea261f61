"""``videobert pipeline``: a folder of videos (and transcripts) -> a pretrained VideoBertPipeline."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "pipeline", help="your own videos end to end: features, visual words, corpus, pretraining, a pipeline bundle",
        description="Run extract, visual-words fit, corpus build, pretrain and export (--pipeline) on a folder of "
                    "videos, as resumable stages: rerunning the same command resumes; other settings or files are "
                    "refused naming what changed. The bundle in OUT/pipeline is read by "
                    "videobert.VideoBertPipeline.from_pretrained.")
    p.add_argument("--videos", required=True, help="a directory of videos, or a text file with one path a line")
    p.add_argument("--transcripts", help="a directory of transcripts named <video id>.vtt / .srt / .json")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--config", help="YAML/JSON file of pipeline settings (videobert.pipeline.own_videos.OwnVideosConfig)")
    p.add_argument("--overwrite", action="store_true", help="delete the earlier outputs in --out and start over")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="settings, e.g. weights=s3d-d76dad2f.pth levels=2")
    p.set_defaults(func=run_pipeline)


def run_pipeline(args: argparse.Namespace) -> int:
    import json
    import logging

    from videobert.demo.stages import StageFailed
    from videobert.pipeline.own_videos import OwnVideosConfig, OwnVideosPipeline
    from videobert.utils.config import load_config
    from videobert.utils.dirlock import lock_directory

    pipeline = OwnVideosPipeline(args.videos, args.transcripts, args.out, load_config(OwnVideosConfig, args.config, args.overrides))
    try:
        with lock_directory(args.out):  # one pipeline per --out (a second one is refused at once)
            outcomes = pipeline.run(overwrite=args.overwrite)
    except StageFailed as exc:
        logging.getLogger("videobert.pipeline").error("%s\n(details in %s/stages.jsonl; rerun to resume from this stage)",
                                                      exc, args.out)
        return 1
    print(json.dumps({name: outcome["result"] for name, outcome in outcomes.items()}, indent=2, default=str))
    print(f"VideoBertPipeline bundle: {pipeline.bundle}")
    return 0
