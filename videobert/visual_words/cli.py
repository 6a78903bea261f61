"""``videobert visual-words fit`` and ``videobert visual-words assign``."""

from __future__ import annotations

import argparse
import json


def register(subparsers) -> None:
    parser = subparsers.add_parser("visual-words", help="fit hierarchical k-means visual words, assign features to them")
    commands = parser.add_subparsers(dest="visual_words_command", metavar="SUBCOMMAND", required=True)

    fit = commands.add_parser("fit", help="fit the tree on a feature matrix")
    fit.add_argument("--features", required=True, help=".npy [N, D] float32 file or a `videobert extract` output directory")
    fit.add_argument("--out", required=True, help="tree file to write (.safetensors)")
    fit.add_argument("--levels", type=int, default=4)
    fit.add_argument("--branching", type=int, default=12)
    fit.add_argument("--seed", type=int, default=0)
    fit.add_argument("--max-iter", type=int, default=50, help="Lloyd iterations per node at most")
    fit.add_argument("--tol", type=float, default=1e-4, help="relative inertia improvement that stops Lloyd")
    fit.add_argument("--max-points-per-centroid", type=int, default=256, help="a node trains on at most this x branching points")
    fit.add_argument("--no-progress", action="store_true")
    fit.set_defaults(func=run_fit)

    assign = commands.add_parser("assign", help="map features to visual-word ids")
    assign.add_argument("--model", required=True, help="tree file written by `visual-words fit`")
    assign.add_argument("--features", required=True, help=".npy [N, D] float32 file or a `videobert extract` output directory")
    assign.add_argument("--out", required=True, help=".npy file for the int64 ids [N] (or [N, levels] with --path)")
    assign.add_argument("--backend", default="auto", choices=("auto", "reference", "cpu", "triton", "cuda"))
    assign.add_argument("--path", action="store_true", help="write the node index at every level, not only the leaf id")
    assign.set_defaults(func=run_assign)


def run_fit(args: argparse.Namespace) -> int:
    import time

    from videobert.visual_words import HierarchicalKMeans
    from videobert.visual_words.features_input import open_features

    features = open_features(args.features)
    tree = HierarchicalKMeans(levels=args.levels, branching=args.branching, seed=args.seed, max_iter=args.max_iter,
                              tol=args.tol, max_points_per_centroid=args.max_points_per_centroid)
    started = time.perf_counter()
    tree.fit(features, progress=not args.no_progress)
    seconds = time.perf_counter() - started
    tree.save(args.out)
    print(json.dumps({"features": str(args.features), "rows": int(features.shape[0]), "dim": int(features.shape[1]),
                      "levels": tree.levels, "branching": tree.branching, "words": tree.num_words,
                      "seconds": round(seconds, 2), "out": str(args.out)}))
    return 0


def run_assign(args: argparse.Namespace) -> int:
    import numpy as np

    from videobert.utils.io import atomic_path
    from videobert.visual_words import HierarchicalKMeans
    from videobert.visual_words.features_input import open_features

    tree = HierarchicalKMeans.load(args.model)
    features = open_features(args.features)
    ids = tree.assign(features, backend=args.backend, return_path=args.path)
    with atomic_path(args.out) as tmp, open(tmp, "wb") as f:
        np.save(f, ids)
    leaves = ids[:, -1] if args.path else ids
    print(json.dumps({"rows": int(ids.shape[0]), "distinct_words": int(np.unique(leaves).size), "out": str(args.out)}))
    return 0
