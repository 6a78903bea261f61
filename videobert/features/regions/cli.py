"""``videobert extract --regions``: the region detector's part of the extract command."""

from __future__ import annotations

import argparse


def extract_regions_for(args: argparse.Namespace) -> dict[str, object]:
    """Regions of the videos just extracted into ``args.out`` (into ``args.out/regions``)."""
    from videobert.features.regions.detector import extract_regions
    from videobert.features.regions.faster_rcnn import FasterRCNNDetector

    if bool(args.detector_weights) == args.random_weights:
        raise SystemExit("extract --regions faster-rcnn: give --detector-weights FILE (torchvision's "
                         "fasterrcnn_resnet50_fpn COCO state dict) or --random-weights (plumbing tests only)")
    detector = FasterRCNNDetector(args.detector_weights, max_regions=args.max_regions, seed=args.seed,
                                  device="cpu" if args.device == "auto" else args.device)
    # this rank's share of the videos, as the S3D extraction before it took (the same --rank / --world-size)
    summary = extract_regions(args.videos, args.out, detector, overwrite=args.overwrite,
                              rank=args.rank, world_size=args.world_size)
    print(f"regions: done {summary['done']}, failed {len(summary['failed'])}, skipped {summary['skipped']}")
    return summary
