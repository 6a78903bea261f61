"""``videobert extract``: S3D features for a directory (or list) of videos."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser("extract", help="extract S3D clip features from videos",
                              description="Decode videos into 1.5 s clips and write their S3D features, one "
                                          "safetensors file per video plus a manifest; reruns resume.")
    p.add_argument("--videos", required=True, help="a directory of videos, or a text file with one path a line")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--weights", help="torchvision's S3D Kinetics-400 state dict, s3d-d76dad2f.pth "
                                     "(S3D_Weights.KINETICS400_V1); its name's digest prefix is checked")
    p.add_argument("--random-weights", action="store_true",
                   help="run S3D with random weights drawn from --seed (tests and demos only: the features mean nothing)")
    p.add_argument("--overwrite", action="store_true",
                   help="delete features in --out made with other weights or clip settings and start over")
    p.add_argument("--rank", type=int, help="this process's shard (default: $RANK, else 0)")
    p.add_argument("--world-size", type=int, help="number of shards (default: $WORLD_SIZE, else 1)")
    p.add_argument("--batch-size", type=int, default=16, help="clips per model call (default 16)")
    p.add_argument("--workers", type=int, default=2, help="decoding worker processes (default 2)")
    p.add_argument("--size", type=int, default=224, help="clip side in pixels (default 224; 112 is ~4x faster)")
    p.add_argument("--fps", type=float, default=20.0, help="frames per second after resampling (default 20)")
    p.add_argument("--clip-frames", type=int, default=30, help="frames per clip (default 30 = 1.5 s)")
    p.add_argument("--partial", choices=("pad", "drop"), default="pad", help="last partial clip (default pad)")
    p.add_argument("--backend", default="pyav", choices=("pyav", "dali", "dali-cpu", "auto"), help="video decoder")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    p.add_argument("--seed", type=int, default=0, help="seed (random weights when --weights is absent)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--clips", type=int, metavar="FRAMES",
                   help="write a clip store instead (videobert.video.clip_store): FRAMES uint8 frames per clip "
                        "at --size px, on the same clip grid (--clip-frames / --fps s); no S3D, no weights")
    p.add_argument("--regions", choices=("faster-rcnn",),
                   help="also detect regions on each clip's middle frame into OUT/regions/ (ActBERT's region stream): "
                        "torchvision's Faster R-CNN with --detector-weights (or --random-weights)")
    p.add_argument("--detector-weights", help="torchvision's fasterrcnn_resnet50_fpn COCO state dict (--regions faster-rcnn)")
    p.add_argument("--max-regions", type=int, default=10, help="regions per clip besides the whole frame (default 10)")
    p.set_defaults(func=_extract)


def _extract(args: argparse.Namespace) -> int:
    from videobert.utils.dirlock import lock_directory, shard_lock_name
    from videobert.utils.dist import rank_and_world_size

    from .extract import ExtractConfig, extract_features
    from .weights import TORCHVISION_FILE, TORCHVISION_URL

    if args.clips is not None:
        return _extract_clips(args)
    if bool(args.weights) == args.random_weights:
        raise SystemExit("extract: give --weights FILE (torchvision's S3D_Weights.KINETICS400_V1, "
                         f"{TORCHVISION_FILE}, from {TORCHVISION_URL}) or --random-weights (features for tests only)"
                         if not args.weights else "extract: --weights and --random-weights exclude each other")
    config = ExtractConfig(
        videos=args.videos, out=args.out, weights=args.weights, rank=args.rank, world_size=args.world_size,
        batch_size=args.batch_size, workers=args.workers, size=args.size, fps=args.fps,
        clip_frames=args.clip_frames, partial=args.partial, backend=args.backend, device=args.device,
        seed=args.seed, progress=not args.no_progress, overwrite=args.overwrite)
    # One writer per --out (per shard when ranks share it); a second one is refused at once.
    with lock_directory(args.out, shard_lock_name(*rank_and_world_size(args.rank, args.world_size))):
        summary = extract_features(config)
        if args.regions:
            from .regions.cli import extract_regions_for
            extract_regions_for(args)
    print(f"done {len(summary.done)}, failed {len(summary.failed)}, skipped {len(summary.skipped)}, "
          f"{summary.clips} clips, {summary.clips_per_second:.2f} clips/s")
    # Failures are in the manifest; only a run where nothing succeeded is an error.
    return 1 if summary.failed and not (summary.done or summary.skipped) else 0


def _extract_clips(args: argparse.Namespace) -> int:
    from videobert.utils.dirlock import lock_directory, shard_lock_name
    from videobert.utils.dist import rank_and_world_size
    from videobert.video.clip_store import write_clip_store

    from .clip_loader import list_videos

    rank, world_size = rank_and_world_size(args.rank, args.world_size)
    with lock_directory(args.out, shard_lock_name(rank, world_size)):
        summary = write_clip_store(list_videos(args.videos), args.out, args.clips, args.size, args.clip_frames / args.fps,
                                   backend=args.backend, rank=rank, world_size=world_size, overwrite=args.overwrite)
    print(f"clip store: done {len(summary.done)}, failed {len(summary.failed)}, skipped {len(summary.skipped)}, {summary.clips} clips")
    return 1 if summary.failed and not (summary.done or summary.skipped) else 0
