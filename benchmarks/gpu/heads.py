"""GPU piece `heads`: the masked-token loss heads in bf16, forward + backward, Triton
``masked_token_loss`` against ``torch.nn.functional.linear_cross_entropy`` (plain and chunked: the
baseline of the ratios; ``hf_full`` where this torch has no linear_cross_entropy), the
full-logits ways (HF-style over every position; the op's reference over the masked rows) and the
op's chunked PyTorch path: median time (CUDA events) and peak memory above the inputs (CUDA allocator).

The problem is benchmarks/bench_heads.py's (hidden 768, an MLM head over 30,522 text ids and an MVM
head over 20,736 visual words, 15% of positions masked, half text half video) at batch 32 x 512
positions on the GPU; weights and hidden states in bf16.
"""

from __future__ import annotations

import sys

import torch

from gpu_common import REPO, device, peak_memory_bytes, piece_main, time_call
from videobert.ops import masked_token_loss

sys.path.insert(0, str(REPO / "benchmarks"))
import bench_heads  # noqa: E402  (the CPU benchmark's problem and variants, reused as they are)

VARIANTS = {
    "triton": lambda hidden, weights, labels: masked_token_loss(hidden, labels, *weights, backend="triton").loss,
    "chunked_torch": lambda hidden, weights, labels: masked_token_loss(hidden, labels, *weights, backend="cpu").loss,
    "linear_ce": bench_heads.linear_ce,
    "linear_ce_chunked": bench_heads.linear_ce_chunked,
    "reference_masked": bench_heads.reference_masked,
    "hf_full": bench_heads.hf_full,
}
# F.linear_cross_entropy is recent (documented from torch 2.13); older torch compares with hf_full instead
HAS_LINEAR_CE = hasattr(torch.nn.functional, "linear_cross_entropy") and hasattr(torch.nn, "LinearCrossEntropyOptions")


def problem_on(dev: torch.device, batch: int, dtype: torch.dtype, **sizes: int) -> dict:
    """bench_heads' problem of ``batch`` sequences with its module sizes overridden by ``sizes``
    (``LENGTH``, ``HIDDEN``, ``TEXT_VOCAB``, ``VISUAL_WORDS``), moved to ``dev`` in ``dtype`` (fresh leaves)."""
    for name, value in sizes.items():
        setattr(bench_heads, name, value)  # read by make_problem and the variants alike
    cpu = bench_heads.make_problem(batch)
    leaf = lambda t: t.detach().to(dev, dtype).requires_grad_()  # noqa: E731
    return {"hidden": leaf(cpu["hidden"]), "heads": [([leaf(w) for w in weights], labels.to(dev)) for weights, labels in cpu["heads"]]}


def measure(args) -> dict:
    dev = device()
    dtype = torch.bfloat16 if dev.type == "cuda" else torch.float32
    batch = 2 if args.smoke else 32
    sizes = dict(LENGTH=32, HIDDEN=32, TEXT_VOCAB=300, VISUAL_WORDS=200) if args.smoke else dict(LENGTH=512)
    problem = problem_on(dev, batch, dtype, **sizes)
    masked = sum(int((labels != -100).sum()) for _, labels in problem["heads"])
    result = {"batch": batch, "length": bench_heads.LENGTH, "hidden": bench_heads.HIDDEN,
              "vocabularies": [bench_heads.TEXT_VOCAB, bench_heads.VISUAL_WORDS], "masked_rows": masked,
              "dtype": str(dtype).removeprefix("torch."), "device": str(dev), "variants": {}}
    variants = {k: v for k, v in VARIANTS.items()
                if (k != "triton" or _triton_runs(dev)) and (HAS_LINEAR_CE or not k.startswith("linear_ce"))}
    baseline = "linear_ce" if HAS_LINEAR_CE else "hf_full"
    result["baseline"] = baseline
    losses = {}
    for name, loss_fn in variants.items():
        def step():
            bench_heads.clear_grads(problem)
            return bench_heads.step(problem, loss_fn)
        losses[name] = step()
        seconds = time_call(step, dev)
        peak = peak_memory_bytes(step, dev)
        result["variants"][name] = {"loss": losses[name], "seconds": seconds,
                                    "peak_mib": None if peak is None else peak / 2**20}
    base = result["variants"][baseline]
    for row in result["variants"].values():
        row["time_vs_baseline"] = row["seconds"] / base["seconds"]
        if row["peak_mib"] is not None:
            row["memory_vs_baseline"] = row["peak_mib"] / base["peak_mib"]
        row["loss_minus_baseline"] = row["loss"] - base["loss"]
    return result


def _triton_runs(dev: torch.device) -> bool:
    from videobert.ops.backends import triton_device

    return triton_device() == dev.type


if __name__ == "__main__":
    piece_main(measure)
