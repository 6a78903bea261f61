"""Plain PyTorch references for the hierarchical k-means ops: the specification the fast
backends are tested against.

Tree layout (shared by every backend): one float32 matrix ``centroids [sum_l B**(l+1), D]`` holds
the levels one after another; level ``l`` has ``B**(l+1)`` rows and the children of node ``n`` of
level ``l-1`` are its rows ``n*B ... n*B+B-1`` (the root's children are level 0).
"""

from __future__ import annotations

import torch


def level_offsets(levels: int, branching: int) -> list[int]:
    """First row of each level in the stacked centroid matrix, plus the total row count at the end."""
    offsets = [0]
    for level in range(levels):
        offsets.append(offsets[-1] + branching ** (level + 1))
    return offsets


def hkmeans_assign_reference(
    features: torch.Tensor,
    centroids: torch.Tensor,
    centroid_norms: torch.Tensor,
    levels: int,
    branching: int,
    chunk_rows: int = 1024,
) -> torch.Tensor:
    """Descend the tree: at each level pick the nearest of the current node's ``branching`` children.

    features [N, D] (any float dtype; computed in float32), centroids [R, D] float32 (layout above),
    centroid_norms [R] float32 = ||c||^2. Returns path [N, levels] int64: path[:, l] is the node
    index within level l, so path[:, -1] is the leaf id in [0, branching**levels).
    "Nearest" minimises ||c||^2 - 2 x.c (= ||x - c||^2 - ||x||^2); ties go to the lower index
    (torch.argmin returns the first minimum). A row holding NaN or inf gets -1 at every level.
    """
    offsets = level_offsets(levels, branching)
    path = torch.empty(features.shape[0], levels, dtype=torch.int64, device=features.device)
    children = torch.arange(branching, device=features.device)
    for start in range(0, features.shape[0], chunk_rows):  # bounds the [rows, B, D] gather
        x = features[start : start + chunk_rows].float()
        node = torch.zeros(x.shape[0], dtype=torch.int64, device=x.device)
        for level in range(levels):
            rows = offsets[level] + node[:, None] * branching + children  # [n, B]
            dots = torch.bmm(centroids[rows], x[:, :, None]).squeeze(2)  # [n, B]
            scores = centroid_norms[rows] - 2.0 * dots
            node = node * branching + scores.argmin(dim=1)
            path[start : start + chunk_rows, level] = node
    return mark_bad_rows(features, path)


def mark_bad_rows(features: torch.Tensor, path: torch.Tensor) -> torch.Tensor:
    """``path`` with -1 at every level of the rows of ``features`` that hold NaN or inf."""
    path[~torch.isfinite(features).all(dim=1)] = -1
    return path


def centroid_update_reference(
    features: torch.Tensor, labels: torch.Tensor, num_clusters: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-cluster sums and counts: features [N, D] float, labels [N] int64 in [0, num_clusters).

    Returns sums [num_clusters, D] float64 and counts [num_clusters] int64.
    """
    sums = torch.zeros(num_clusters, features.shape[1], dtype=torch.float64, device=features.device)
    sums.index_add_(0, labels, features.double())
    counts = torch.bincount(labels, minlength=num_clusters)
    return sums, counts
