"""Hierarchical k-means ops: ``hkmeans_assign`` (tree descent) and ``centroid_update``
(per-cluster sums and counts, the Lloyd step used by ``HierarchicalKMeans.fit``).

Backends: ``reference`` (plain PyTorch, videobert/ops/hkmeans_reference.py, any device),
``cpu`` (C++/OpenMP, ``videobert._C``), ``triton`` and ``cuda`` (``videobert._C_cuda``) for
assignment on GPU. ``backend="auto"`` picks cuda > triton on CUDA tensors and cpu on CPU tensors.
Both ops are ``torch.library`` custom ops with fake (meta) functions, so they trace under
``torch.compile`` without running.
"""

from __future__ import annotations

import torch

from videobert.ops.backends import check_backend, check_same_device, compiled_module
from videobert.ops.hkmeans_reference import (
    centroid_update_reference,
    hkmeans_assign_reference,
    level_offsets,
    mark_bad_rows,
)

ASSIGN_BACKENDS = ("reference", "cpu", "triton", "cuda")
UPDATE_BACKENDS = ("reference", "cpu")
FEATURE_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


def hkmeans_assign(
    features: torch.Tensor,
    centroids: torch.Tensor,
    levels: int,
    branching: int,
    centroid_norms: torch.Tensor | None = None,
    backend: str = "auto",
) -> torch.Tensor:
    """Descend a hierarchical k-means tree for every row of ``features``.

    features [N, D] float32/float16/bfloat16 (accumulation is float32); centroids
    [sum_l branching**(l+1), D] float32 stacked level by level (children of node n of level l-1 are
    rows n*branching ... n*branching+branching-1 of level l); centroid_norms [R] float32 = ||c||^2
    (computed when None; pass them to avoid recomputing). Returns path [N, levels] int64: the node
    index within each level; path[:, -1] is the leaf id in [0, branching**levels). At each level
    the nearest child (squared Euclidean distance) wins; ties go to the lower index. A row holding
    NaN or inf gets -1 at every level (the C++ kernel finds them without a pass of its own over
    the matrix; callers that must refuse such rows look at ``path[:, 0] < 0``).
    """
    _check_tree(features, centroids, levels, branching)
    if centroid_norms is None:
        centroid_norms = centroids.pow(2).sum(dim=1)
    if centroid_norms.shape != (centroids.shape[0],) or centroid_norms.dtype != torch.float32:
        raise ValueError(f"centroid_norms must be float32 [{centroids.shape[0]}], got {tuple(centroid_norms.shape)} {centroid_norms.dtype}")
    check_same_device("hkmeans_assign", features, centroid_norms=centroid_norms)
    name = check_backend(backend, features, ASSIGN_BACKENDS)
    if features.shape[0] > 0 and features.stride(1) != 1:
        features = features.contiguous()  # kernels take a row stride, not a column stride
    return torch.ops.videobert.hkmeans_assign(
        features, centroids.contiguous(), centroid_norms.contiguous(), levels, branching, name
    )


def centroid_update(
    features: torch.Tensor, labels: torch.Tensor, num_clusters: int, backend: str = "auto"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-cluster sums and counts of ``features`` [N, D] float grouped by ``labels`` [N] int64.

    Returns sums [num_clusters, D] float64 (accumulated in float64, deterministic) and counts
    [num_clusters] int64. Labels outside [0, num_clusters) are an error. On CUDA tensors the
    reference (one index_add_ kernel) is used.
    """
    if features.dim() != 2 or not features.is_floating_point():
        raise ValueError(f"features must be a float [N, D] tensor, got {features.dtype} {tuple(features.shape)}")
    if labels.shape != (features.shape[0],) or labels.dtype != torch.int64:
        raise ValueError(f"labels must be int64 [{features.shape[0]}], got {labels.dtype} {tuple(labels.shape)}")
    check_same_device("centroid_update", features, labels=labels)
    if num_clusters < 1:
        raise ValueError(f"num_clusters must be >= 1, got {num_clusters}")
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= num_clusters):
        raise ValueError(f"labels must lie in [0, {num_clusters}); got [{int(labels.min())}, {int(labels.max())}]")
    name = check_backend(backend, features, UPDATE_BACKENDS)
    if name == "cpu" and features.dtype != torch.float32:
        features = features.float()
    if features.shape[0] > 0 and features.stride(1) != 1:
        features = features.contiguous()
    return torch.ops.videobert.centroid_update(features, labels.contiguous(), num_clusters, name)


def _check_tree(features: torch.Tensor, centroids: torch.Tensor, levels: int, branching: int) -> None:
    if features.dim() != 2 or features.dtype not in FEATURE_DTYPES:
        raise ValueError(f"features must be a [N, D] float32/float16/bfloat16 tensor, got {features.dtype} {tuple(features.shape)}")
    if levels < 1 or branching < 1:
        raise ValueError(f"levels and branching must be >= 1, got levels={levels}, branching={branching}")
    rows = level_offsets(levels, branching)[-1]
    if centroids.dtype != torch.float32 or centroids.shape != (rows, features.shape[1]):
        raise ValueError(
            f"centroids must be float32 [{rows}, {features.shape[1]}] for {levels} levels x {branching} "
            f"children and D={features.shape[1]}, got {centroids.dtype} {tuple(centroids.shape)}"
        )
    check_same_device("hkmeans_assign", features, centroids=centroids)


class LloydStepCPU:
    """One Lloyd step (flat assignment + per-cluster sums) of a fixed point set, straight on ``videobert._C``.

    ``HierarchicalKMeans.fit`` runs thousands of small k-means (a few hundred points, 12 centres)
    where the per-call checks, dispatch and allocations of ``hkmeans_assign`` + ``centroid_update``
    would cost more than the arithmetic; this checks the points once, owns the output buffers and
    calls the same C++ kernels (so it gives exactly what the two ops give).

    points [m, D] float32 contiguous CPU tensor (m >= 1), k centres; threads for the kernels (None:
    torch's setting, or 1 for small work). Calling it with centres [k, D] float32 contiguous and
    their squared norms [k] float32 returns (labels [m] int64, sums [k, D] float64, counts [k]
    int64): views of buffers the next call overwrites.
    """

    def __init__(self, points: torch.Tensor, k: int, threads: int | None = None) -> None:
        if points.dim() != 2 or points.dtype != torch.float32 or points.device.type != "cpu" or not points.is_contiguous():
            raise ValueError(f"points must be a contiguous float32 CPU [m, D] tensor, got {points.dtype} {tuple(points.shape)} on {points.device}")
        if points.shape[0] < 1 or k < 1:
            raise ValueError(f"need at least one point and one centre, got {points.shape[0]} points and k={k}")
        if not bool(torch.isfinite(points).all()):  # the kernel would label such points -1
            raise ValueError(f"points row {int((~torch.isfinite(points)).any(dim=1).nonzero()[0])} contains NaN or inf")
        self._module = compiled_module("_C")
        if self._module is None:
            raise RuntimeError("LloydStepCPU needs the compiled module videobert._C, which is not built")
        self.points, self.k = points, k
        m, d = points.shape
        self.labels = torch.empty(m, 1, dtype=torch.int64)
        self.sums = torch.empty(k, d, dtype=torch.float64)
        self.counts = torch.empty(k, dtype=torch.int64)
        self._threads = _threads_for(m * d * k) if threads is None else threads

    def __call__(self, centres: torch.Tensor, centre_norms: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        m, d = self.points.shape
        if centres.shape != (self.k, d) or centres.dtype != torch.float32 or not centres.is_contiguous():
            raise ValueError(f"centres must be contiguous float32 [{self.k}, {d}], got {centres.dtype} {tuple(centres.shape)}")
        if centre_norms.shape != (self.k,) or centre_norms.dtype != torch.float32 or not centre_norms.is_contiguous():
            raise ValueError(f"centre_norms must be contiguous float32 [{self.k}], got {centre_norms.dtype} {tuple(centre_norms.shape)}")
        check_same_device("LloydStepCPU", self.points, centres=centres, centre_norms=centre_norms)
        x = self.points.data_ptr()
        self._module.hkmeans_assign(x, m, d, d, centres.data_ptr(), centre_norms.data_ptr(), 1, self.k,
                                    self.labels.data_ptr(), self._threads)
        self._module.centroid_update(x, m, d, d, self.labels.data_ptr(), self.k, self.sums.data_ptr(),
                                     self.counts.data_ptr(), self._threads)
        return self.labels[:, 0], self.sums, self.counts


# ---------------------------------------------------------------- custom ops (torch.library)

_PARALLEL_GRAIN = 1 << 21  # multiply-adds below which waking other threads costs more than it saves


def _threads_for(work: int) -> int:
    """Threads for a C++ call with ``work`` multiply-adds: torch's setting, or 1 for small calls."""
    return 1 if work < _PARALLEL_GRAIN else torch.get_num_threads()



@torch.library.custom_op("videobert::hkmeans_assign", mutates_args=())
def _hkmeans_assign_op(
    features: torch.Tensor, centroids: torch.Tensor, centroid_norms: torch.Tensor, levels: int, branching: int, backend: str
) -> torch.Tensor:
    if backend == "reference":
        return hkmeans_assign_reference(features, centroids, centroid_norms, levels, branching)
    # the op can be called directly (torch.ops.videobert.hkmeans_assign): check before raw pointers go out
    check_same_device("hkmeans_assign", features, centroids=centroids, centroid_norms=centroid_norms)
    if centroids.dtype != torch.float32 or centroid_norms.dtype != torch.float32 or features.dtype not in FEATURE_DTYPES:
        raise ValueError(f"hkmeans_assign: centroids and norms must be float32 and features fp32/fp16/bf16, got "
                         f"{centroids.dtype}, {centroid_norms.dtype}, {features.dtype}")
    if backend in ("cpu", "cuda") and features.is_cuda != (backend == "cuda"):
        raise ValueError(f"hkmeans_assign: backend {backend!r} cannot read tensors on {features.device}")
    if backend == "triton":
        from videobert.ops.triton.hkmeans import hkmeans_assign_triton

        # on the GPU an element-wise check is a small cost beside the descent
        return mark_bad_rows(features, hkmeans_assign_triton(features, centroids, centroid_norms, levels, branching))
    n, d = features.shape
    path = torch.empty(n, levels, dtype=torch.int64, device=features.device)
    if n == 0:
        return path
    if backend == "cpu":
        x = features.float()  # the C++ kernel reads float32
        compiled_module("_C").hkmeans_assign(
            x.data_ptr(), n, d, x.stride(0), centroids.data_ptr(), centroid_norms.data_ptr(),
            levels, branching, path.data_ptr(), _threads_for(n * d * levels * branching),
        )
        return path
    if backend == "cuda":
        cuda = compiled_module("_C_cuda")
        dtype = {torch.float32: cuda.FLOAT32, torch.float16: cuda.FLOAT16, torch.bfloat16: cuda.BFLOAT16}[features.dtype]
        with torch.cuda.device(features.device):
            cuda.hkmeans_assign(
                features.data_ptr(), dtype, n, d, features.stride(0), centroids.data_ptr(),
                centroid_norms.data_ptr(), levels, branching, path.data_ptr(),
                torch.cuda.current_stream(features.device).cuda_stream,
            )
        return mark_bad_rows(features, path)
    raise ValueError(f"unknown backend {backend!r}")


@_hkmeans_assign_op.register_fake
def _(features, centroids, centroid_norms, levels, branching, backend):
    return features.new_empty((features.shape[0], levels), dtype=torch.int64)


@torch.library.custom_op("videobert::centroid_update", mutates_args=())
def _centroid_update_op(
    features: torch.Tensor, labels: torch.Tensor, num_clusters: int, backend: str
) -> tuple[torch.Tensor, torch.Tensor]:
    if backend == "reference":
        return centroid_update_reference(features, labels, num_clusters)
    n, d = features.shape
    sums = torch.empty(num_clusters, d, dtype=torch.float64)
    counts = torch.empty(num_clusters, dtype=torch.int64)
    compiled_module("_C").centroid_update(
        features.data_ptr(), n, d, features.stride(0) if n else d, labels.data_ptr(), num_clusters,
        sums.data_ptr(), counts.data_ptr(), _threads_for(n * d),
    )
    return sums, counts


@_centroid_update_op.register_fake
def _(features, labels, num_clusters, backend):
    return (
        features.new_empty((num_clusters, features.shape[1]), dtype=torch.float64),
        features.new_empty((num_clusters,), dtype=torch.int64),
    )
