"""Flat k-means for one node of the tree: k-means++ seeding, then Lloyd iterations to a tolerance.

Both steps run on the fast ops: assignment is ``hkmeans_assign`` on a one-level tree and the
update is ``centroid_update`` (float64 sums), so a node is fitted with the same distance and
tie rule that later routes points down the tree. On CPU with ``videobert._C`` built, a Lloyd step
calls those kernels through ``LloydStepCPU`` (no per-call checks or allocations): a tree has
thousands of nodes of a few hundred points, where per-op overhead would dominate.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from videobert.ops import available_backends, centroid_update, hkmeans_assign
from videobert.ops.hkmeans import LloydStepCPU

# (centres [k, D] float32, their squared norms [k] float32) -> (sums [k, D] float64, counts [k] int64)
LloydStep = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


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
        cumulative = torch.cumsum(nearest, 0)
        total = float(cumulative[-1])
        if total <= 0.0:
            centres[i:] = centres[0]
            break
        # inverse-CDF draw: deterministic for the rng, no renormalisation drift
        chosen = min(int(torch.searchsorted(cumulative, rng.random() * total, right=True)), m - 1)
        centres[i] = points[chosen]
        torch.minimum(nearest, (points - centres[i]).pow(2).sum(dim=1).double(), out=nearest)
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
    step = _lloyd_step(points, k, backend)
    point_sq = float(torch.linalg.vector_norm(points, dtype=torch.float64) ** 2)
    centres = centres.contiguous()
    previous = inertia = float("inf")
    iterations = 0
    for iterations in range(1, max_iter + 1):
        c64 = centres.double()  # exact: the float32 centres the assignment uses
        centre_sq = c64.pow(2).sum(dim=1)
        sums, counts = step(centres, centre_sq.float())
        # ||x - c||^2 summed per cluster = sum ||x||^2 - 2 c.sum_x + n ||c||^2
        inertia = point_sq - 2.0 * float(torch.vdot(c64.view(-1), sums.view(-1))) + float(counts.double() @ centre_sq)
        means = sums / counts.clamp(min=1).unsqueeze(1)
        centres = torch.where((counts > 0).unsqueeze(1), means, c64).float()
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


def _lloyd_step(points: torch.Tensor, k: int, backend: str) -> LloydStep:
    """The C++ kernels called directly where they apply, else the checked ops on any backend."""
    if backend in ("auto", "cpu") and points.device.type == "cpu" and available_backends()["cpu"]:
        direct = LloydStepCPU(points.contiguous(), k)
        return lambda centres, norms: direct(centres, norms)[1:]

    def through_ops(centres: torch.Tensor, norms: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        labels = hkmeans_assign(points, centres, levels=1, branching=k, centroid_norms=norms, backend=backend)[:, 0]
        return centroid_update(points, labels, k, backend="auto" if backend in ("triton", "cuda") else backend)

    return through_ops
