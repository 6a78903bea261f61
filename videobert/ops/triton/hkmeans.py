"""Triton kernel for hierarchical k-means assignment (tree layout: videobert.ops.hkmeans_reference).

Each program takes BLOCK_N vectors down every level: it gathers each vector's ``branching``
children (padded to a power of two), accumulates the dot products over the feature dimension in
float32 tiles of BLOCK_D, and takes the argmin of ||c||^2 - 2 x.c (ties to the lower index).
Import this module only after TRITON_INTERPRET is decided (tests set it for CPU runs).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl


@triton.jit
def _hkmeans_assign_kernel(
    x_ptr, centroids_ptr, norms_ptr, path_ptr, n, d, stride_x,
    LEVELS: tl.constexpr, BRANCHING: tl.constexpr, B_PAD: tl.constexpr,
    BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr,
):
    rows = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    row_ok = rows < n
    child = tl.arange(0, B_PAD)
    pair_ok = row_ok[:, None] & (child < BRANCHING)[None, :]
    node = tl.zeros([BLOCK_N], dtype=tl.int64)
    level_offset = tl.zeros([1], dtype=tl.int64)
    level_size = BRANCHING
    for level in tl.static_range(LEVELS):
        centroid_row = level_offset + node[:, None] * BRANCHING + child[None, :]  # [BLOCK_N, B_PAD]
        acc = tl.zeros([BLOCK_N, B_PAD], dtype=tl.float32)
        for d0 in range(0, d, BLOCK_D):
            cols = d0 + tl.arange(0, BLOCK_D)
            col_ok = cols < d
            x = tl.load(x_ptr + rows[:, None].to(tl.int64) * stride_x + cols[None, :],
                        mask=row_ok[:, None] & col_ok[None, :], other=0.0).to(tl.float32)
            c = tl.load(centroids_ptr + centroid_row[:, :, None] * d + cols[None, None, :],
                        mask=pair_ok[:, :, None] & col_ok[None, None, :], other=0.0)
            acc += tl.sum(x[:, None, :] * c, axis=2)
        norms = tl.load(norms_ptr + centroid_row, mask=pair_ok, other=0.0)
        scores = tl.where(pair_ok, norms - 2.0 * acc, float("inf"))
        best = tl.argmin(scores, axis=1, tie_break_left=True)
        node = node * BRANCHING + best.to(tl.int64)
        tl.store(path_ptr + rows.to(tl.int64) * LEVELS + level, node, mask=row_ok)
        level_offset += level_size
        level_size *= BRANCHING


def hkmeans_assign_triton(
    features: torch.Tensor, centroids: torch.Tensor, centroid_norms: torch.Tensor, levels: int, branching: int
) -> torch.Tensor:
    """features [N, D] fp32/fp16/bf16 with unit column stride; centroids [R, D] and norms [R] fp32
    contiguous. Returns path [N, levels] int64 (see hkmeans_assign_reference)."""
    n, d = features.shape
    path = torch.empty(n, levels, dtype=torch.int64, device=features.device)
    if n == 0:
        return path
    b_pad = triton.next_power_of_2(branching)
    block_n = 16
    block_d = max(16, min(64, triton.next_power_of_2(d)))
    _hkmeans_assign_kernel[(triton.cdiv(n, block_n),)](
        features, centroids, centroid_norms, path, n, d, features.stride(0),
        LEVELS=levels, BRANCHING=branching, B_PAD=b_pad, BLOCK_N=block_n, BLOCK_D=block_d,
    )
    return path
