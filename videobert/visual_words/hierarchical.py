"""Hierarchical k-means: the tree of visual words (VideoBERT: 4 levels x 12 = 20,736 words).

Fitting works level by level. Every node is a flat k-means (k-means++ then Lloyd to a tolerance,
videobert/visual_words/kmeans.py) on the points its parent routed to it; a node with more than
``max_points_per_centroid * branching`` points trains on that many of them drawn at random (as
faiss does), so memory stays at one node sample plus a few int64 arrays of length N whatever N
is: a memory-mapped matrix is read in row chunks and never copied whole. After each level every
point is routed down the tree fitted so far with ``hkmeans_assign``, the same descent ``assign``
uses later (multi-threaded); a node's k-means runs on one thread (see kmeans.py). The big sampled
nodes at the top run k-means ``restarts`` times and keep the lowest inertia: their split decides
which points every subtree below them sees.

Small nodes. A node that receives fewer than ``branching`` distinct points still gets
``branching`` children, so ids stay in ``[0, branching**levels)``: its distinct points become
children and the remaining children are copies of child 0; a node that receives no point at all
gets ``branching`` copies of its own centroid. Copies tie with a lower-index sibling and ties go to
the lower index, so a copied child never receives an assignment: those leaves are unused ids.

Determinism: node (level, n) draws from ``np.random.default_rng([seed, level, n])`` and every op
on CPU is deterministic, so the same seed and data give the same tree.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from tqdm.auto import tqdm

from videobert.ops import hkmeans_assign
from videobert.ops.hkmeans_reference import level_offsets
from videobert.visual_words.features_input import (
    ASSIGN_DTYPES,
    check_matrix,
    gather_rows,
    iter_chunks,
)
from videobert.visual_words.kmeans import fit_node

log = logging.getLogger(__name__)


class HierarchicalKMeans:
    """A ``levels``-deep tree with ``branching`` children per node; leaves are visual-word ids.

    Args:
        levels, branching: tree shape (``branching**levels`` leaves).
        seed: randomness of k-means++ seeding and node sampling.
        max_iter, tol: Lloyd stops after ``max_iter`` iterations or when the inertia improves by
            less than ``tol`` (relative).
        max_points_per_centroid: a node trains on at most ``max_points_per_centroid * branching``
            of its points.
        restarts: k-means runs (k-means++ + Lloyd, the lowest inertia kept) for a node that has
            more points than that sample: the few big nodes at the top, whose split every leaf
            below inherits. Other nodes run once.
        chunk_rows: rows read and assigned at a time (bounds memory for huge inputs).
    """

    def __init__(
        self,
        levels: int = 4,
        branching: int = 12,
        seed: int = 0,
        max_iter: int = 50,
        tol: float = 1e-6,
        max_points_per_centroid: int = 256,
        restarts: int = 2,
        chunk_rows: int = 65536,
    ) -> None:
        if levels < 1 or branching < 2:
            raise ValueError(f"need levels >= 1 and branching >= 2, got levels={levels}, branching={branching}")
        self.levels, self.branching, self.seed = levels, branching, seed
        self.max_iter, self.tol = max_iter, tol
        self.max_points_per_centroid, self.chunk_rows = max_points_per_centroid, chunk_rows
        self.restarts = restarts
        self.centroids: torch.Tensor | None = None  # [sum_l B**(l+1), D] float32, levels stacked
        self._device_cache: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}

    # ------------------------------------------------------------------ structure

    @property
    def num_words(self) -> int:
        return self.branching**self.levels

    @property
    def dim(self) -> int:
        return int(self._fitted().shape[1])

    @property
    def level_centroids(self) -> list[torch.Tensor]:
        """Entry l is ``[branching**(l+1), D]``; children of node n of level l are rows
        ``n*branching ... n*branching+branching-1`` of entry l+1 (views into one matrix)."""
        offsets = level_offsets(self.levels, self.branching)
        centroids = self._fitted()
        return [centroids[offsets[level] : offsets[level + 1]] for level in range(self.levels)]

    @property
    def leaf_centroids(self) -> torch.Tensor:
        """``[branching**levels, D]`` float32: the centroid of every visual word."""
        return self.level_centroids[-1]

    def set_centroids(self, centroids: torch.Tensor) -> None:
        """Install a stacked centroid matrix (used by load); checks its shape and values."""
        rows = level_offsets(self.levels, self.branching)[-1]
        if centroids.dim() != 2 or centroids.shape[0] != rows or centroids.dtype != torch.float32:
            raise ValueError(f"centroids must be float32 [{rows}, D] for {self.levels} levels x {self.branching}, "
                             f"got {centroids.dtype} {tuple(centroids.shape)}")
        if not bool(torch.isfinite(centroids).all()):
            raise ValueError("centroids contain NaN or inf")
        self.centroids = centroids.detach().cpu().contiguous()
        self._device_cache.clear()

    # ------------------------------------------------------------------ fit

    def fit(self, features, progress: bool = True) -> HierarchicalKMeans:
        """Fit the tree on ``features`` [N, D] float32 (numpy array, memmap or CPU tensor; N >= 1).

        Rows with NaN or inf are an error naming the row (checked in a first pass over the data).
        Returns self.
        """
        check_matrix(features, None, (torch.float32,))
        n, dim = features.shape
        if n == 0:
            raise ValueError("cannot fit visual words on an empty feature matrix (0 rows)")
        if isinstance(features, torch.Tensor):
            features = features.detach().cpu()
        B = self.branching
        offsets = level_offsets(self.levels, B)
        centroids = torch.zeros(offsets[-1], dim, dtype=torch.float32)
        for _ in iter_chunks(features, self.chunk_rows):  # NaN/inf check before any work
            pass
        node_of_point = np.zeros(n, dtype=np.int64)  # node each point reached at the previous level
        started = time.perf_counter()
        bar = tqdm(total=sum(B**level for level in range(self.levels)), desc="visual words: nodes",
                   unit="node", disable=not progress)
        for level in range(self.levels):
            order = np.argsort(node_of_point, kind="stable")
            bounds = np.concatenate([[0], np.cumsum(np.bincount(node_of_point, minlength=B**level))])
            # A node's k-means is single-threaded (kmeans.py), so the nodes of a level run on
            # torch's thread count at once (the C++ kernels and numpy release the GIL). Each node
            # draws from its own rng: the tree does not depend on the schedule.
            fit_children = functools.partial(self._fit_children, features, centroids, order, bounds, level)
            with ThreadPoolExecutor(max_workers=torch.get_num_threads()) as pool:
                for node, children in enumerate(pool.map(fit_children, range(B**level))):
                    centroids[offsets[level] + node * B : offsets[level] + (node + 1) * B] = children
                    bar.update(1)
            if level + 1 < self.levels:
                self.centroids = centroids
                self._device_cache.clear()
                node_of_point = self._descend(features, levels=level + 1)[:, -1].numpy()
        bar.close()
        self.set_centroids(centroids)
        elapsed = time.perf_counter() - started
        log.info("fitted %d x %d tree on %d x %d features in %.1f s (%.0f points/s)", self.levels, B, n, dim, elapsed, n / max(elapsed, 1e-9))
        return self

    def _fit_children(self, features, centroids: torch.Tensor, order: np.ndarray, bounds: np.ndarray, level: int,
                      node: int) -> torch.Tensor:
        """Children [B, D] of ``node`` of ``level`` - 1 (the root for level 0) from the points
        ``order[bounds[node]:bounds[node + 1]]``; ``centroids`` holds the levels fitted so far."""
        rows = order[bounds[node] : bounds[node + 1]]
        if rows.size == 0:  # never at level 0: the root has every point
            parent = centroids[level_offsets(self.levels, self.branching)[level - 1] + node]
            return parent.expand(self.branching, -1).clone()
        rng = np.random.default_rng([self.seed, level, node])
        cap = self.max_points_per_centroid * self.branching
        restarts = self.restarts if rows.size > cap else 1
        if rows.size > cap:
            rows = np.sort(rng.choice(rows, size=cap, replace=False))
        points = gather_rows(features, rows).numpy()
        return torch.from_numpy(fit_node(points, self.branching, rng, self.max_iter, self.tol, restarts))

    # ------------------------------------------------------------------ assign

    def assign(self, features, backend: str = "auto", return_path: bool = False):
        """Visual-word ids of ``features`` [N, D].

        features: numpy array / memmap (float32) or torch tensor (float32, float16 or bfloat16) on
        CPU or CUDA. Returns int64 ids [N] in ``[0, branching**levels)`` (numpy in -> numpy out,
        tensor in -> tensor on the same device), or with ``return_path=True`` the node index per
        level [N, levels] (the last column is the id). NaN/inf rows, a wrong dimension or dtype
        raise ValueError/TypeError naming the problem; N = 0 gives an empty result.
        """
        self._fitted()
        is_numpy = isinstance(features, np.ndarray)
        check_matrix(features, self.dim, (torch.float32,) if is_numpy else ASSIGN_DTYPES)
        path = self._descend(features, self.levels, backend)
        result = path if return_path else path[:, -1]
        return result.numpy() if is_numpy else result

    def _descend(self, features, levels: int, backend: str = "auto") -> torch.Tensor:
        """path [N, levels] int64 through the first ``levels`` levels, chunk by chunk; a row
        holding NaN or inf is a ValueError naming it (the op marks such rows -1)."""
        device = features.device if isinstance(features, torch.Tensor) else torch.device("cpu")
        centroids, norms = self._on_device(device)
        rows = level_offsets(self.levels, self.branching)[levels]
        path = torch.empty(features.shape[0], levels, dtype=torch.int64, device=device)
        for start, chunk in iter_chunks(features, self.chunk_rows, check=False):
            chunk_path = hkmeans_assign(chunk, centroids[:rows], levels, self.branching, norms[:rows], backend=backend)
            bad = (chunk_path[:, 0] < 0).nonzero()
            if bad.numel():
                raise ValueError(f"features row {start + int(bad[0])} contains NaN or inf")
            path[start : start + chunk.shape[0]] = chunk_path
        return path

    def _on_device(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        if device not in self._device_cache:
            centroids = self._fitted().to(device)
            self._device_cache[device] = (centroids, centroids.pow(2).sum(dim=1))
        return self._device_cache[device]

    def _fitted(self) -> torch.Tensor:
        if self.centroids is None:
            raise RuntimeError("this HierarchicalKMeans is not fitted: call fit() or HierarchicalKMeans.load()")
        return self.centroids

    # ------------------------------------------------------------------ persistence

    def save(self, path: str | os.PathLike) -> None:
        """Write the tree to a safetensors file (atomically); see videobert/visual_words/storage.py."""
        from videobert.visual_words.storage import save_tree

        save_tree(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> HierarchicalKMeans:
        """Read a tree written by ``save``; a corrupt or mismatched file raises ValueError naming it."""
        from videobert.visual_words.storage import load_tree

        return load_tree(cls, path)
