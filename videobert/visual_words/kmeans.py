"""Flat k-means for one node of the tree: k-means++ seeding, then Lloyd iterations to a tolerance.

Both steps run on the fast ops: assignment is ``hkmeans_assign`` on a one-level tree and the
update is ``centroid_update`` (float64 sums), so a node is fitted with the same distance and
tie rule that later routes points down the tree.
"""

from __future__ import annotations

import numpy as np
import torch

from videobert.ops import centroid_update, hkmeans_assign


def kmeans_plus_plus(points: torch.Tensor, k: int, rng: np.random.Generator) -> torch.Tensor:
    """k-means++ seeding. points [m, D] float32 (m >= 1) -> centres [k, D] float32.

    The first centre is a uniformly random point; each next one is drawn with probability
    proportional to the squared distance to the nearest centre chosen so far. When every point
    already coincides with a centre (fewer than k distinct points), the remaining centres are
    copies of centre 0: identical rows tie and ties go to the lower index, so the copies never win
    an assignment (they are the "unused" children).
    """
    m = points.shape[0]
    centres = points.new_empty(k, points.shape[1])
    chosen = int(rng.integers(m))
    centres[0] = points[chosen]
    nearest = (points - centres[0]).pow(2).sum(dim=1).double()
    for i in range(1, k):
        total = float(nearest.sum())
        if total <= 0.0:
            centres[i:] = centres[0]
            break
        # inverse-CDF draw: deterministic for the rng, no renormalisation drift
        chosen = int(np.searchsorted(np.cumsum(nearest.numpy()), rng.random() * total, side="right"))
        chosen = min(chosen, m - 1)
        centres[i] = points[chosen]
        nearest = torch.minimum(nearest, (points - centres[i]).pow(2).sum(dim=1).double())
    return centres


def lloyd(
    points: torch.Tensor, centres: torch.Tensor, max_iter: int, tol: float, backend: str = "auto"
) -> tuple[torch.Tensor, float, int]:
    """Lloyd iterations from ``centres`` [k, D] on points [m, D] (both float32, same device).

    Stops when the inertia (sum of squared distances to the assigned centre) improves by less than
    ``tol`` relatively, or after ``max_iter`` iterations. A centre that receives no point keeps its
    position. Returns (centres [k, D] float32, inertia of the returned assignment, iterations).
    """
    k = centres.shape[0]
    point_sq = float(points.double().pow(2).sum())
    previous = float("inf")
    inertia = previous
    iterations = 0
    for iterations in range(1, max_iter + 1):
        labels = hkmeans_assign(points, centres, levels=1, branching=k, backend=backend)[:, 0]
        sums, counts = centroid_update(points, labels, k, backend=backend)
        c64 = centres.double()
        # ||x - c||^2 summed per cluster = sum ||x||^2 - 2 c.sum_x + n ||c||^2
        inertia = point_sq - 2.0 * float((c64 * sums).sum()) + float((counts * c64.pow(2).sum(dim=1)).sum())
        filled = counts > 0
        centres = centres.clone()
        centres[filled] = (sums[filled] / counts[filled, None]).float()
        if previous - inertia <= tol * max(abs(inertia), 1e-30):
            break
        previous = inertia
    return centres, max(inertia, 0.0), iterations


def fit_node(
    points: torch.Tensor, k: int, rng: np.random.Generator, max_iter: int, tol: float, backend: str = "auto"
) -> torch.Tensor:
    """The ``k`` children of one node from the points it received ([m, D] float32, m >= 1)."""
    centres = kmeans_plus_plus(points, k, rng)
    centres, _, _ = lloyd(points, centres, max_iter=max_iter, tol=tol, backend=backend)
    return centres
