"""Hierarchical k-means benchmarks (issue 2): assignment and fit, C++ against the plain PyTorch
reference, faiss-cpu doing the same work, and torch.matmul as the machine's practical peak.

    pytest benchmarks/bench_hkmeans.py -s                       # full sizes from the issue
    VIDEOBERT_BENCH_SMALL=1 pytest benchmarks/bench_hkmeans.py -s   # a quick reduced run

Full sizes: assignment of N=65,536 vectors, D=1024, 4 levels x 12, fp32 on CPU; fit on 200,000 x
1024 clustered data, five seeds each (the total time and the mean inertia are compared). The last
test prints a summary of every ratio measured in this run.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from videobert.ops import available_backends, hkmeans_assign
from videobert.ops.hkmeans_reference import level_offsets
from videobert.visual_words import HierarchicalKMeans

faiss = pytest.importorskip("faiss")

SMALL = os.environ.get("VIDEOBERT_BENCH_SMALL") == "1"
N_ASSIGN, DIM, LEVELS, BRANCHING = (8192, 256, 4, 12) if SMALL else (65536, 1024, 4, 12)
N_FIT = 20_000 if SMALL else 200_000
RESULTS: dict[str, float] = {}


def clustered(n: int, dim: int, seed: int) -> np.ndarray:
    """Gaussian blobs around 500 random centres (features with cluster structure, like S3D's)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(500, dim)).astype(np.float32) * 2
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, 50_000):
        stop = min(n, start + 50_000)
        out[start:stop] = centres[rng.integers(500, size=stop - start)] + rng.normal(size=(stop - start, dim)).astype(np.float32)
    return out


@pytest.fixture(scope="module")
def assign_tree():
    x = torch.from_numpy(clustered(N_ASSIGN, DIM, seed=0))
    return x, HierarchicalKMeans(LEVELS, BRANCHING, seed=0).fit(x[:20_000], progress=False)


@pytest.fixture(scope="module")
def assign_case(assign_tree):
    x, tree = assign_tree
    centroids = tree.centroids
    return x, centroids, centroids.pow(2).sum(dim=1)


def flops_assign() -> float:
    return 2.0 * N_ASSIGN * LEVELS * BRANCHING * DIM


def timed(benchmark, fn, rounds: int, name: str):
    result = benchmark.pedantic(fn, rounds=rounds, iterations=1, warmup_rounds=1 if rounds > 1 else 0)
    RESULTS[name] = benchmark.stats.stats.min
    return result


def test_matmul_peak(benchmark):
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    timed(benchmark, lambda: a @ b, rounds=10, name="matmul_2048")
    RESULTS["matmul_gflops"] = 2 * 2048**3 / RESULTS["matmul_2048"] / 1e9


@pytest.mark.skipif(not available_backends()["cpu"], reason="videobert._C not built")
def test_assign_cpp(benchmark, assign_case):
    x, c, norms = assign_case
    path = timed(benchmark, lambda: hkmeans_assign(x, c, LEVELS, BRANCHING, norms, backend="cpu"), rounds=5, name="assign_cpp")
    RESULTS["assign_cpp_gflops"] = flops_assign() / RESULTS["assign_cpp"] / 1e9
    assign_case_paths["cpu"] = path


assign_case_paths: dict[str, torch.Tensor] = {}


def test_assign_public(benchmark, assign_tree):
    """``HierarchicalKMeans.assign``, the call users make: the kernel plus its input checks."""
    x, tree = assign_tree
    timed(benchmark, lambda: tree.assign(x), rounds=5, name="assign_public")


def test_assign_reference(benchmark, assign_case):
    x, c, norms = assign_case
    path = timed(benchmark, lambda: hkmeans_assign(x, c, LEVELS, BRANCHING, norms, backend="reference"), rounds=1, name="assign_reference")
    if "cpu" in assign_case_paths:
        RESULTS["cpp_vs_reference_id_agreement"] = float((assign_case_paths["cpu"] == path).all(dim=1).float().mean())


def faiss_descent(x: np.ndarray, c: np.ndarray) -> np.ndarray:
    """The same descent with faiss: per level, the vectors of each node searched against its
    children in an IndexFlatL2 (faiss's exact L2 search, BLAS + its own argmin)."""
    offsets = level_offsets(LEVELS, BRANCHING)
    node = np.zeros(len(x), dtype=np.int64)
    for level in range(LEVELS):
        order = np.argsort(node, kind="stable")
        bounds = np.concatenate([[0], np.cumsum(np.bincount(node, minlength=BRANCHING**level))])
        new = np.empty_like(node)
        for parent in range(BRANCHING**level):
            rows = order[bounds[parent] : bounds[parent + 1]]
            if rows.size == 0:
                continue
            first = offsets[level] + parent * BRANCHING
            index = faiss.IndexFlatL2(x.shape[1])
            index.add(c[first : first + BRANCHING])
            _, nearest = index.search(x[rows], 1)
            new[rows] = parent * BRANCHING + nearest[:, 0]
        node = new
    return node


def test_assign_faiss(benchmark, assign_case):
    x, c, _ = assign_case
    xn, cn = x.numpy(), c.numpy()
    leaves = timed(benchmark, lambda: faiss_descent(xn, cn), rounds=2, name="assign_faiss")
    if "cpu" in assign_case_paths:
        RESULTS["cpp_vs_faiss_id_agreement"] = float((assign_case_paths["cpu"][:, -1].numpy() == leaves).mean())


# ---------------------------------------------------------------------------- fit


@pytest.fixture(scope="module")
def fit_data() -> np.ndarray:
    return clustered(N_FIT, DIM, seed=1)


def inertia(tree: HierarchicalKMeans, x: np.ndarray) -> float:
    total = 0.0
    leaves = tree.leaf_centroids
    for start in range(0, len(x), 65536):
        chunk = torch.from_numpy(x[start : start + 65536])
        ids = torch.from_numpy(tree.assign(x[start : start + 65536]))
        total += float((chunk - leaves[ids]).double().pow(2).sum())
    return total


def fit_with_faiss(x: np.ndarray, seed: int) -> HierarchicalKMeans:
    """The same tree built with faiss.Kmeans per node (25 iterations, at most 256 points per
    centroid: faiss's defaults), same routing and small-node policy as HierarchicalKMeans."""
    offsets = level_offsets(LEVELS, BRANCHING)
    centroids = np.zeros((offsets[-1], x.shape[1]), dtype=np.float32)
    node = np.zeros(len(x), dtype=np.int64)
    for level in range(LEVELS):
        order = np.argsort(node, kind="stable")
        bounds = np.concatenate([[0], np.cumsum(np.bincount(node, minlength=BRANCHING**level))])
        for parent in range(BRANCHING**level):
            rows = order[bounds[parent] : bounds[parent + 1]]
            first = offsets[level] + parent * BRANCHING
            if rows.size < BRANCHING:  # faiss needs >= k points: same small-node policy as ours
                parent_centre = centroids[offsets[level - 1] + parent] if level else x.mean(axis=0)
                distinct = np.unique(x[rows], axis=0) if rows.size else parent_centre[None]
                centroids[first : first + BRANCHING] = distinct[0]
                centroids[first : first + len(distinct)] = distinct
                continue
            if rows.size > 256 * BRANCHING:  # sample before gathering (faiss would subsample to this anyway)
                rows = np.sort(np.random.default_rng([seed, level, parent]).choice(rows, 256 * BRANCHING, replace=False))
            km = faiss.Kmeans(x.shape[1], BRANCHING, niter=25, seed=seed + parent, max_points_per_centroid=256, min_points_per_centroid=1)
            km.train(np.ascontiguousarray(x[rows]))
            centroids[first : first + BRANCHING] = km.centroids
        if level + 1 < LEVELS:
            tree = HierarchicalKMeans(level + 1, BRANCHING)
            tree.set_centroids(torch.from_numpy(centroids[: offsets[level + 1]]))
            node = tree.assign(x)
    tree = HierarchicalKMeans(LEVELS, BRANCHING)
    tree.set_centroids(torch.from_numpy(centroids))
    return tree


FIT_SEEDS = (0, 1) if SMALL else (0, 1, 2, 3, 4)  # tree quality swings by ~5% with the seed: compare means


def test_fit_videobert(benchmark, fit_data):
    trees = timed(benchmark, lambda: [HierarchicalKMeans(LEVELS, BRANCHING, seed=s).fit(fit_data, progress=False) for s in FIT_SEEDS],
                  rounds=1, name="fit_videobert")
    RESULTS["fit_videobert_inertia"] = float(np.mean([inertia(tree, fit_data) for tree in trees]))


def test_fit_faiss(benchmark, fit_data):
    trees = timed(benchmark, lambda: [fit_with_faiss(fit_data, seed=s) for s in FIT_SEEDS], rounds=1, name="fit_faiss")
    RESULTS["fit_faiss_inertia"] = float(np.mean([inertia(tree, fit_data) for tree in trees]))


def test_summary():
    r = RESULTS
    lines = [f"threads={torch.get_num_threads()} N_assign={N_ASSIGN} D={DIM} {LEVELS}x{BRANCHING} N_fit={N_FIT}"]
    if "matmul_gflops" in r:
        lines.append(f"torch.matmul 2048^3 fp32: {r['matmul_gflops']:.1f} GFLOP/s")
    if "assign_cpp" in r:
        lines.append(f"assign C++: {r['assign_cpp'] * 1e3:.1f} ms = {r['assign_cpp_gflops']:.1f} GFLOP/s "
                     f"({100 * r['assign_cpp_gflops'] / r.get('matmul_gflops', float('nan')):.0f}% of matmul)")
        if "assign_public" in r:
            lines.append(f"HierarchicalKMeans.assign: {r['assign_public'] * 1e3:.1f} ms = {r['assign_cpp'] / r['assign_public']:.2f}x "
                         f"the kernel's speed ({100 * flops_assign() / r['assign_public'] / 1e9 / r.get('matmul_gflops', float('nan')):.0f}% of matmul)")
        if "assign_reference" in r:
            lines.append(f"assign reference: {r['assign_reference'] * 1e3:.0f} ms -> C++ is {r['assign_reference'] / r['assign_cpp']:.1f}x "
                         f"(identical paths on {100 * r.get('cpp_vs_reference_id_agreement', float('nan')):.3f}% of rows)")
        if "assign_faiss" in r:
            lines.append(f"assign faiss descent: {r['assign_faiss'] * 1e3:.0f} ms -> C++ is {r['assign_faiss'] / r['assign_cpp']:.1f}x "
                         f"(same leaf on {100 * r.get('cpp_vs_faiss_id_agreement', float('nan')):.3f}% of rows)")
    if "fit_videobert" in r and "fit_faiss" in r:
        lines.append(f"fit, seeds {FIT_SEEDS}: videobert {r['fit_videobert']:.1f} s, faiss per node {r['fit_faiss']:.1f} s "
                     f"(videobert is {r['fit_faiss'] / r['fit_videobert']:.2f}x faster); mean inertia ratio videobert/faiss "
                     f"{r['fit_videobert_inertia'] / r['fit_faiss_inertia']:.4f}")
    print("\n" + "\n".join(lines))
