"""``videobert visual-words fit`` and ``videobert visual-words assign``.

``fit`` keeps a fingerprint beside the tree (``<tree>.fingerprint.json``: the features' digest and
the fit settings): rerun with the same, it keeps the tree; with others, it refuses unless
``--overwrite``. ``assign`` writes ids (``.npy``) or, from a feature directory, the video-word table
(``.npz``) that ``videobert eval --video-words`` reads.
"""

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
    fit.add_argument("--overwrite", action="store_true", help="replace a tree fitted with other features or settings")
    fit.set_defaults(func=run_fit)

    assign = commands.add_parser("assign", help="map features to visual-word ids")
    assign.add_argument("--model", required=True, help="tree file written by `visual-words fit`")
    assign.add_argument("--features", required=True, help=".npy [N, D] float32 file or a `videobert extract` output directory")
    assign.add_argument("--out", required=True,
                        help=".npy file for the int64 ids [N] (or [N, levels] with --path); or, with a feature "
                             "directory, an .npz video-word table (each video's words and clip times) for "
                             "`videobert eval --video-words`")
    assign.add_argument("--backend", default="auto", choices=("auto", "reference", "cpu", "triton", "cuda"))
    assign.add_argument("--path", action="store_true", help="write the node index at every level, not only the leaf id")
    assign.set_defaults(func=run_assign)


def _features_fingerprint(path: str) -> object:
    """A feature directory's fingerprint, or a ``.npy`` matrix's digest."""
    from pathlib import Path

    from videobert.features.fingerprint import features_fingerprint
    from videobert.utils.fingerprint import sha256_file

    return features_fingerprint(path) if Path(path).is_dir() else f"sha256:{sha256_file(path)}"


def run_fit(args: argparse.Namespace) -> int:
    report = fit_tree_file(args.features, args.out, dict(levels=args.levels, branching=args.branching, seed=args.seed,
                                                          max_iter=args.max_iter, tol=args.tol,
                                                          max_points_per_centroid=args.max_points_per_centroid),
                           overwrite=args.overwrite, progress=not args.no_progress)
    print(json.dumps(report))
    return 0


def fit_tree_file(features_path, out, settings: dict, overwrite: bool = False, progress: bool = True) -> dict:
    """Fit a ``HierarchicalKMeans(**settings)`` on a ``.npy`` matrix or feature directory and save it
    at ``out``, unless the tree there was fitted on the same features with the same settings (its
    fingerprint, ``<out>.fingerprint.json``); other ones raise ``StaleOutputError`` unless
    ``overwrite``. Returns a small JSON report."""
    import time
    from pathlib import Path

    from videobert.utils.fingerprint import check_fingerprint, claim_output
    from videobert.visual_words import HierarchicalKMeans
    from videobert.visual_words.features_input import open_features

    features = open_features(features_path)
    tree = HierarchicalKMeans(**settings)
    out = Path(out)
    fingerprint_path = out.with_name(out.name + ".fingerprint.json")
    fingerprint = {"stage": "visual-words fit", "features": _features_fingerprint(features_path), **settings}
    if not overwrite and out.exists() and check_fingerprint(fingerprint_path, "visual-words fit", fingerprint):
        return {"out": str(out), "fitted": "earlier (same features and settings)"}
    claim_output(fingerprint_path, "visual-words fit", fingerprint, overwrite=overwrite,
                 clear=lambda: out.unlink(missing_ok=True))
    started = time.perf_counter()
    try:
        tree.fit(features, progress=progress)
    except ValueError as exc:
        raise _naming_the_video(exc, features_path) from exc
    seconds = time.perf_counter() - started
    tree.save(out)
    return {"features": str(features_path), "rows": int(features.shape[0]), "dim": int(features.shape[1]),
            "levels": tree.levels, "branching": tree.branching, "words": tree.num_words,
            "seconds": round(seconds, 2), "out": str(out)}


def _naming_the_video(exc: ValueError, features_path) -> ValueError:
    """``exc`` with the video and file of its bad row added, when the features are a feature directory."""
    import re
    from pathlib import Path

    from videobert.features.store import feature_path, load_feature_index

    row = re.search(r"features row (\d+)", str(exc))
    if row is None or not Path(features_path).is_dir():
        return exc
    video_id = load_feature_index(features_path).video_of_row(int(row.group(1)))
    return ValueError(f"{exc}: it is a clip of video {video_id!r} ({feature_path(features_path, video_id)}); "
                      f"delete that file (and rerun extract) or fix it")


def run_assign(args: argparse.Namespace) -> int:
    import numpy as np

    from videobert.utils.io import atomic_path
    from videobert.visual_words import HierarchicalKMeans
    from videobert.visual_words.features_input import open_features

    tree = HierarchicalKMeans.load(args.model)
    if str(args.out).endswith(".npz"):
        return _assign_table(args, tree)
    features = open_features(args.features)
    ids = tree.assign(features, backend=args.backend, return_path=args.path)
    with atomic_path(args.out) as tmp, open(tmp, "wb") as f:
        np.save(f, ids)
    leaves = ids[:, -1] if args.path else ids
    print(json.dumps({"rows": int(ids.shape[0]), "distinct_words": int(np.unique(leaves).size), "out": str(args.out)}))
    return 0


def _assign_table(args: argparse.Namespace, tree) -> int:
    """Every finished video of a feature directory -> its words and clip times, as an ``.npz``
    video-word table (``videobert.tasks.sources.save_video_words``)."""
    from pathlib import Path

    import numpy as np

    from videobert.tasks.sources import save_video_words, words_from_features

    if not Path(args.features).is_dir():
        raise SystemExit(f"visual-words assign: an .npz video-word table needs a `videobert extract` directory as "
                         f"--features (each video's clip times come from it), got {args.features}")
    if args.path:
        raise SystemExit("visual-words assign: --path writes per-level ids to an .npy file, not a video-word table")
    table = words_from_features(args.features, tree)
    save_video_words(args.out, table)
    words = [w for w, _ in table.values()]
    distinct = int(np.unique(np.concatenate(words)).size) if words else 0
    print(json.dumps({"videos": len(table), "rows": int(sum(len(w) for w in words)), "distinct_words": distinct,
                      "out": str(args.out)}))
    return 0
