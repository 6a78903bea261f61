"""The on-disk layout of extracted features, and the readers other stages use.

An extraction directory holds, per finished video, ``<video_id>.safetensors`` with tensors
``features`` float32 ``[n_clips, 1024]`` and ``times`` float64 ``[n_clips, 2]`` (clip start/end,
seconds), written atomically: a file that exists is complete. ``manifest.jsonl`` (or one per rank)
records done / failed + reason. ``load_feature_matrix`` concatenates all videos into one raw
float32 file under ``.matrix/`` (rebuilt when the set of finished videos changes) and maps it.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Iterator, NamedTuple

import numpy as np
from safetensors import safe_open
from safetensors.numpy import save_file

from videobert.utils.io import atomic_path

SUFFIX = ".safetensors"
MATRIX_DIR = ".matrix"


def feature_path(out_dir: str | os.PathLike, video_id: str) -> Path:
    return Path(out_dir) / f"{video_id}{SUFFIX}"


def write_video_features(out_dir: str | os.PathLike, video_id: str, features: np.ndarray, times: np.ndarray,
                         metadata: dict[str, str] | None = None) -> Path:
    """Atomically write one video's ``features`` ``[n, D]`` and clip ``times`` ``[n, 2]`` (s)."""
    features = np.ascontiguousarray(features, dtype=np.float32)
    times = np.ascontiguousarray(times, dtype=np.float64).reshape(-1, 2)
    if features.ndim != 2 or features.shape[0] != times.shape[0]:
        raise ValueError(f"{video_id}: features {features.shape} and times {times.shape} disagree")
    path = feature_path(out_dir, video_id)
    with atomic_path(path) as tmp:
        save_file({"features": features, "times": times}, str(tmp), metadata=metadata or {})
    return path


def finished_video_ids(out_dir: str | os.PathLike) -> list[str]:
    """Ids of the videos with a feature file, sorted (temporary files start with a dot)."""
    return sorted(p.name[: -len(SUFFIX)] for p in Path(out_dir).glob(f"*{SUFFIX}") if not p.name.startswith("."))


def read_video_features(out_dir: str | os.PathLike, video_id: str) -> tuple[np.ndarray, np.ndarray]:
    """``(features float32 [n, D], times float64 [n, 2])`` of one finished video."""
    with safe_open(str(feature_path(out_dir, video_id)), framework="numpy") as f:
        return f.get_tensor("features"), f.get_tensor("times")


def iter_video_features(out_dir: str | os.PathLike) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """Yield ``(video_id, features float32 [n, 1024], times float64 [n, 2] start/end s)`` for
    every finished video, in video-id order."""
    for video_id in finished_video_ids(out_dir):
        features, times = read_video_features(out_dir, video_id)
        yield video_id, features, times


class FeatureIndex(NamedTuple):
    """Maps rows of :func:`load_feature_matrix` back to videos: video ``video_ids[i]`` owns rows
    ``offsets[i]:offsets[i + 1]``; ``times[r]`` is row ``r``'s clip start/end (s)."""

    video_ids: list[str]
    offsets: np.ndarray  # int64 [V + 1]
    times: np.ndarray    # float64 [N, 2]

    def video_of_row(self, row: int) -> str:
        return self.video_ids[int(np.searchsorted(self.offsets, row, side="right")) - 1]


def load_feature_matrix(out_dir: str | os.PathLike) -> np.memmap:
    """All finished videos' features as one read-only memory-mapped float32 ``[N, 1024]`` matrix,
    rows in :func:`iter_video_features` order (see :func:`load_feature_index`)."""
    matrix_path, _ = _ensure_matrix(out_dir)
    index = load_feature_index(out_dir)
    rows, dim = int(index.offsets[-1]), _feature_dim(out_dir, index.video_ids)
    if rows == 0:
        return np.zeros((0, dim), dtype=np.float32)
    return np.memmap(matrix_path, dtype=np.float32, mode="r", shape=(rows, dim))


def load_feature_index(out_dir: str | os.PathLike) -> FeatureIndex:
    """The row -> video map for :func:`load_feature_matrix` (built with it)."""
    _, index_path = _ensure_matrix(out_dir)
    with safe_open(str(index_path), framework="numpy") as f:
        video_ids = json.loads(f.metadata()["video_ids"])
        return FeatureIndex(video_ids, f.get_tensor("offsets"), f.get_tensor("times"))


def _feature_dim(out_dir, video_ids: list[str]) -> int:
    if not video_ids:
        return 1024
    with safe_open(str(feature_path(out_dir, video_ids[0])), framework="numpy") as f:
        return int(f.get_slice("features").get_shape()[1])


def _ensure_matrix(out_dir: str | os.PathLike) -> tuple[Path, Path]:
    """The matrix and index files for the current set of finished videos, built if missing.

    Their names carry a hash of (id, size, mtime) of every feature file, so a stale cache is never
    read and concurrent readers of one state agree on the same files.
    """
    out_dir = Path(out_dir)
    video_ids = finished_video_ids(out_dir)
    stamp = [(v, (s := feature_path(out_dir, v).stat()).st_size, s.st_mtime_ns) for v in video_ids]
    key = hashlib.sha1(json.dumps(stamp).encode()).hexdigest()[:16]
    cache = out_dir / MATRIX_DIR
    matrix_path, index_path = cache / f"features-{key}.f32", cache / f"index-{key}{SUFFIX}"
    if matrix_path.exists() and index_path.exists():
        return matrix_path, index_path
    counts, dim = [], _feature_dim(out_dir, video_ids)
    for video_id in video_ids:
        with safe_open(str(feature_path(out_dir, video_id)), framework="numpy") as f:
            counts.append(int(f.get_slice("features").get_shape()[0]))
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    times = np.zeros((int(offsets[-1]), 2), dtype=np.float64)
    with atomic_path(matrix_path) as tmp:
        if offsets[-1]:
            matrix = np.memmap(tmp, dtype=np.float32, mode="w+", shape=(int(offsets[-1]), dim))
            for i, video_id in enumerate(video_ids):
                features, video_times = read_video_features(out_dir, video_id)
                matrix[offsets[i]:offsets[i + 1]] = features
                times[offsets[i]:offsets[i + 1]] = video_times
            matrix.flush()
            del matrix
    with atomic_path(index_path) as tmp:
        save_file({"offsets": offsets, "times": times}, str(tmp), metadata={"video_ids": json.dumps(video_ids)})
    for old in cache.iterdir():  # earlier states' caches
        if old.name not in (matrix_path.name, index_path.name) and not old.name.startswith("."):
            old.unlink(missing_ok=True)
    return matrix_path, index_path
