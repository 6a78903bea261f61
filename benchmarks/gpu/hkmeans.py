"""GPU piece `hkmeans`: ``hkmeans_assign`` on the GPU, Triton and CUDA, against a tree descent by
``torch.cdist`` + argmin over each vector's children and against the GPU's measured matmul peak.

N = 65,536 vectors, D = 1024, 4 levels x 12 (20,736 words), fp32 (TF32 off) and bf16 features
(fp32 centroids and accumulation). Work counted: 2·N·levels·branching·D FLOPs, the dot products of
the descent (the cdist baseline does as many). Each backend's paths are
checked against the fp32 reference (fraction of rows whose whole path agrees).
"""

from __future__ import annotations

import torch

from gpu_common import device, matmul_peak_flops, piece_main, time_call
from videobert.ops import available_backends, hkmeans_assign
from videobert.ops.hkmeans_reference import hkmeans_assign_reference, level_offsets

LEVELS, BRANCHING = 4, 12


def random_tree(dim: int, dev: torch.device, seed: int = 0) -> torch.Tensor:
    """Children near their parent at every level, like a fitted tree; rows stacked level by level."""
    g = torch.Generator(device="cpu").manual_seed(seed)
    parents, rows = torch.zeros(1, dim), []
    for level in range(LEVELS):
        parents = parents.repeat_interleave(BRANCHING, 0) + torch.randn(parents.shape[0] * BRANCHING, dim, generator=g) / (level + 1)
        rows.append(parents)
    return torch.cat(rows).to(dev)


def cdist_descent(x: torch.Tensor, tree: torch.Tensor) -> torch.Tensor:
    """The baseline: at each level ``torch.cdist`` from each vector to its gathered children, argmin."""
    offsets = level_offsets(LEVELS, BRANCHING)
    node = torch.zeros(x.shape[0], dtype=torch.int64, device=x.device)
    children = torch.arange(BRANCHING, device=x.device)
    path = []
    xf = x.float()[:, None, :]
    for level in range(LEVELS):
        rows = offsets[level] + node[:, None] * BRANCHING + children  # [N, B]
        best = torch.cdist(xf, tree[rows]).squeeze(1).argmin(dim=1)
        node = node * BRANCHING + best
        path.append(node)
    return torch.stack(path, dim=1)


def measure(args) -> dict:
    dev = device()
    n, dim = (64, 32) if args.smoke else (65536, 1024)
    tree = random_tree(dim, dev)
    norms = tree.pow(2).sum(1)
    g = torch.Generator(device="cpu").manual_seed(1)
    x32 = (tree[torch.randint(tree.shape[0], (n,), generator=g).to(dev)] + 0.5 * torch.randn(n, dim, generator=g).to(dev)).contiguous()
    expected = hkmeans_assign_reference(x32, tree, norms, LEVELS, BRANCHING)
    flops = 2.0 * n * LEVELS * BRANCHING * dim
    torch.backends.cuda.matmul.allow_tf32 = False
    result = {"n": n, "dim": dim, "levels": LEVELS, "branching": BRANCHING, "device": str(dev), "by_dtype": {}}
    backends = [b for b in ("cuda", "triton") if available_backends()[b] and (dev.type == "cuda" or b == "triton")]
    result["backends"] = backends
    for dtype in (torch.float32, torch.bfloat16):
        if dev.type == "cpu" and dtype == torch.bfloat16:
            continue  # the Triton interpreter gets bf16 wrong; the smoke run needs no bf16
        x = x32.to(dtype)
        peak = matmul_peak_flops(dtype, dev, 256 if args.smoke else 8192)
        rows = {"matmul_peak_tflops": peak / 1e12}
        baseline = time_call(lambda: cdist_descent(x, tree), dev)
        rows["cdist_argmin"] = {"seconds": baseline, "tflops": flops / baseline / 1e12,
                                "agree": _agreement(cdist_descent(x, tree), expected)}
        for backend in backends:
            seconds = time_call(lambda: hkmeans_assign(x, tree, LEVELS, BRANCHING, norms, backend=backend), dev, repeats=20)
            got = hkmeans_assign(x, tree, LEVELS, BRANCHING, norms, backend=backend)
            rows[backend] = {"seconds": seconds, "tflops": flops / seconds / 1e12, "of_matmul_peak": flops / seconds / peak,
                             "speedup_vs_cdist": baseline / seconds, "agree": _agreement(got, expected)}
        result["by_dtype"][str(dtype).removeprefix("torch.")] = rows
    return result


def _agreement(got: torch.Tensor, expected: torch.Tensor) -> float:
    """Fraction of rows whose whole path equals the fp32 reference's."""
    return float((got == expected).all(dim=1).float().mean()) if len(got) else 1.0


if __name__ == "__main__":
    piece_main(measure)
