"""Saving and loading a HierarchicalKMeans tree as safetensors.

Layout: one float32 tensor per level, ``level_0`` ... ``level_{L-1}`` with ``branching**(l+1)``
rows each, and a metadata header: format, version, levels, branching, dim, seed.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from videobert.utils.io import atomic_path

FORMAT = "videobert.visual_words.hkmeans"
VERSION = 1


def save_tree(tree, path: str | os.PathLike) -> None:
    levels = tree.level_centroids
    metadata = {"format": FORMAT, "version": str(VERSION), "levels": str(tree.levels),
                "branching": str(tree.branching), "dim": str(tree.dim), "seed": str(tree.seed)}
    tensors = {f"level_{i}": level.contiguous() for i, level in enumerate(levels)}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)


def load_tree(cls, path: str | os.PathLike):
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such visual-word tree file")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            tensors = {key: f.get_tensor(key) for key in f.keys()}
    except Exception as exc:  # safetensors raises several types for damaged files
        raise ValueError(f"{path}: not a readable safetensors file ({exc})") from exc
    if metadata.get("format") != FORMAT:
        raise ValueError(f"{path}: not a visual-word tree (metadata format={metadata.get('format')!r}, expected {FORMAT!r})")
    try:
        version, levels, branching, dim, seed = (int(metadata[k]) for k in ("version", "levels", "branching", "dim", "seed"))
    except (KeyError, ValueError) as exc:
        raise ValueError(f"{path}: metadata is missing or has a bad value ({exc}); got {metadata}") from exc
    if version != VERSION:
        raise ValueError(f"{path}: tree format version {version}; this videobert reads version {VERSION}")
    expected = {f"level_{i}": (branching ** (i + 1), dim) for i in range(levels)}
    if set(tensors) != set(expected):
        raise ValueError(f"{path}: tensors {sorted(tensors)} do not match {levels} levels (expected {sorted(expected)})")
    for name, shape in expected.items():
        if tuple(tensors[name].shape) != shape or tensors[name].dtype != torch.float32:
            raise ValueError(f"{path}: {name} is {tensors[name].dtype} {tuple(tensors[name].shape)}, "
                             f"expected float32 {shape} (levels={levels}, branching={branching}, dim={dim})")
    tree = cls(levels=levels, branching=branching, seed=seed)
    try:
        tree.set_centroids(torch.cat([tensors[f"level_{i}"] for i in range(levels)]))
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from exc
    return tree
