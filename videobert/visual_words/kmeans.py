"""Flat k-means for one node of the tree: k-means++ seeding, then Lloyd iterations to a tolerance.

Lloyd steps run on the fast ops: assignment is ``hkmeans_assign`` on a one-level tree and the
update is ``centroid_update`` (float64 sums), so a node is fitted with the same distance and tie
rule that later routes points down the tree. A tree has thousands of nodes of a few hundred
points, where per-op overhead and thread wake-ups would cost more than the arithmetic, so a node
is fitted on one thread: the C++ kernels are called directly (``LloydStepCPU``, threads=1) and
the small per-node math is numpy (single-threaded), not torch ops that fan out to a thread pool
(on a loaded machine each such wake-up can cost milliseconds). Parallelism in ``fit`` comes from
fitting the nodes of a level at once (hierarchical.py) and from routing the points, the part that
grows with N.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from videobert.ops import centroid_update, hkmeans_assign
from videobert.ops.backends import compiled_module
from videobert.ops.hkmeans import LloydStepCPU

# (centres [k, D] float32, their squared norms [k] float32) -> (sums [k, D] float64, counts [k] int64)
LloydStep = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def kmeans_plus_plus(points: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeding. points [m, D] float32 (m >= 1) -> centres [k, D] float32.

    The first centre is a uniformly random point; each next one is drawn with probability
    proportional to the squared distance to the nearest centre chosen so far. When every point
    already coincides with a centre (fewer than k distinct points), the remaining centres are
    copies of centre 0: identical rows tie and ties go to the lower index, so the copies never win
    an assignment (they are the "unused" children).
    """
    m = points.shape[0]
    centres = np.empty((k, points.shape[1]), dtype=np.float32)
    centres[0] = points[rng.integers(m)]
    nearest = _squared_distances(points, centres[0])
    for i in range(1, k):
        cumulative = np.cumsum(nearest)
        if cumulative[-1] <= 0.0:
            centres[i:] = centres[0]
            break
        # inverse-CDF draw: deterministic for the rng, no renormalisation drift
        chosen = min(int(np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right")), m - 1)
        centres[i] = points[chosen]
        np.minimum(nearest, _squared_distances(points, centres[i]), out=nearest)
    return centres


def lloyd(
    points: np.ndarray, centres: np.ndarray, max_iter: int, tol: float, backend: str = "auto"
) -> tuple[np.ndarray, float, int]:
    """Lloyd iterations from ``centres`` [k, D] on points [m, D] (both float32 numpy, m >= 1).

    Stops when the inertia (sum of squared distances to the assigned centre) improves by less than
    ``tol`` relatively, or after ``max_iter`` iterations. A centre that receives no point keeps its
    position. ``backend`` picks the ops ("auto"/"cpu": the C++ kernels, "reference": plain
    PyTorch). Returns (centres [k, D] float32, inertia of the returned assignment, iterations).
    """
    step = _lloyd_step(points, centres.shape[0], backend)
    point_sq = float(np.einsum("ij,ij->", points, points, dtype=np.float64))
    centres = np.ascontiguousarray(centres, dtype=np.float32)
    previous = inertia = float("inf")
    iterations = 0
    for iterations in range(1, max_iter + 1):
        c64 = centres.astype(np.float64)  # exact: the float32 centres the assignment uses
        centre_sq = np.einsum("ij,ij->i", c64, c64)
        sums, counts = step(centres, centre_sq.astype(np.float32))
        # ||x - c||^2 summed per cluster = sum ||x||^2 - 2 c.sum_x + n ||c||^2
        inertia = point_sq - 2.0 * float(np.einsum("ij,ij->", c64, sums)) + float(counts @ centre_sq)
        means = sums / np.maximum(counts, 1)[:, None]
        centres = np.where((counts > 0)[:, None], means, c64).astype(np.float32)
        if previous - inertia <= tol * max(abs(inertia), 1e-30):
            break
        previous = inertia
    return centres, max(inertia, 0.0), iterations


def fit_node(
    points: np.ndarray, k: int, rng: np.random.Generator, max_iter: int, tol: float, restarts: int = 1,
    backend: str = "auto",
) -> np.ndarray:
    """The ``k`` children [k, D] float32 of one node from the points it received ([m, D] float32, m >= 1).

    Runs k-means++ and Lloyd ``restarts`` times (draws from ``rng`` in turn) and keeps the run with
    the lowest inertia (the first on a tie): k-means is a local search, and a node high in the tree
    that lands in a poor optimum spoils every leaf below it.
    """
    points = np.ascontiguousarray(points, dtype=np.float32)
    best, best_inertia = None, float("inf")
    for _ in range(max(1, restarts)):
        centres, inertia, _ = lloyd(points, kmeans_plus_plus(points, k, rng), max_iter=max_iter, tol=tol, backend=backend)
        if inertia < best_inertia or best is None:
            best, best_inertia = centres, inertia
    return best


def _squared_distances(points: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """||x - c||^2 for every row x of points [m, D] -> [m] float64 (exactly 0 for a row equal to c)."""
    diff = points - centre
    return np.einsum("ij,ij->i", diff, diff).astype(np.float64)


def _lloyd_step(points: np.ndarray, k: int, backend: str) -> LloydStep:
    """One thread, the C++ kernels called directly where they apply; else the checked ops."""
    x = torch.from_numpy(points)
    if backend in ("auto", "cpu") and compiled_module("_C") is not None:
        direct = LloydStepCPU(x, k, threads=1)

        def step(centres: np.ndarray, norms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            _, sums, counts = direct(torch.from_numpy(centres), torch.from_numpy(norms))
            return sums.numpy(), counts.numpy()

        return step

    def through_ops(centres: np.ndarray, norms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        c = torch.from_numpy(centres)
        labels = hkmeans_assign(x, c, levels=1, branching=k, centroid_norms=torch.from_numpy(norms), backend=backend)[:, 0]
        sums, counts = centroid_update(x, labels, k, backend=backend)
        return sums.numpy(), counts.numpy()

    return through_ops
