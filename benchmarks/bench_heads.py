"""Masked-token heads, forward + backward: the fused op against the usual ways of computing the loss.

Setup (issue 5): hidden 768; an MLM head over 30,522 text ids and an MVM head over 20,736 visual
words (each: dense + GELU + LayerNorm transform, tied decoder, bias); a batch of 32 x 128 positions,
the first half text, the second half video, 15% of positions masked. Variants, all computing both
heads' mean cross-entropy and every gradient (hidden states and all head weights):

- ``hf_full``: logits for every position, then cross-entropy with ignore_index (the usual HF way);
- ``reference_masked``: masked rows gathered, full logits of those rows (the op's reference backend);
- ``linear_ce``: masked rows, transform, ``torch.nn.functional.linear_cross_entropy`` (plain path);
- ``linear_ce_chunked``: the same with ``LinearCrossEntropyOptions()`` (PyTorch's chunked path);
- ``fused``: ``videobert.ops.masked_token_loss`` (backend "auto": the chunked "cpu" path here).

Peak memory: the bytes of all tensors alive at once during one forward + backward, above what
existed before it (inputs and weights), from torch.profiler's allocation/free events
(``profile_memory=True``) summed in time order: exact tensor bytes, allocator caching excluded.
Gradient buffers created by the backward are included for every variant alike.

Run: ``pytest benchmarks/bench_heads.py`` (reduced: batch 8) or with ``VIDEOBERT_BENCH_FULL=1`` (batch 32);
``python benchmarks/bench_heads.py`` prints the comparison table.
"""

from __future__ import annotations

import os
import time
from typing import Callable

import pytest
import torch
from torch.nn import functional as F
from torch.profiler import ProfilerActivity, profile

from videobert.ops import masked_token_loss
from videobert.ops.masked_token_loss_reference import head_transform

HIDDEN, TEXT_VOCAB, VISUAL_WORDS, LENGTH, MASK_RATE = 768, 30522, 20736, 128, 0.15
BATCH = 32 if os.environ.get("VIDEOBERT_BENCH_FULL") == "1" else 8
EPS = 1e-12


def make_problem(batch: int = BATCH, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)

    def head(vocab: int) -> list[torch.Tensor]:
        tensors = [torch.randn(HIDDEN, HIDDEN, generator=g) * 0.02, torch.zeros(HIDDEN), torch.ones(HIDDEN),
                   torch.zeros(HIDDEN), torch.randn(vocab, HIDDEN, generator=g) * 0.02, torch.zeros(vocab)]
        return [t.requires_grad_() for t in tensors]

    masked = torch.rand(batch, LENGTH, generator=g) < MASK_RATE
    text = torch.zeros_like(masked)
    text[:, : LENGTH // 2] = True
    mlm = torch.where(masked & text, torch.randint(0, TEXT_VOCAB, masked.shape, generator=g), -100)
    mvm = torch.where(masked & ~text, torch.randint(0, VISUAL_WORDS, masked.shape, generator=g), -100)
    hidden = torch.randn(batch, LENGTH, HIDDEN, generator=g).requires_grad_()
    return {"hidden": hidden, "heads": [(head(TEXT_VOCAB), mlm), (head(VISUAL_WORDS), mvm)]}


def hf_full(hidden, weights, labels):
    logits = F.linear(head_transform(hidden, *weights[:4], EPS), weights[4], weights[5])
    return F.cross_entropy(logits.view(-1, logits.shape[-1]), labels.view(-1))


def _masked_rows(hidden, weights, labels):
    rows = (labels.view(-1) != -100).nonzero().squeeze(1)
    return head_transform(hidden.view(-1, HIDDEN)[rows], *weights[:4], EPS), labels.view(-1)[rows]


def linear_ce(hidden, weights, labels, options=None):
    transformed, targets = _masked_rows(hidden, weights, labels)
    return F.linear_cross_entropy(transformed, weights[4], targets, linear_bias=weights[5], options=options)


def linear_ce_chunked(hidden, weights, labels):
    return linear_ce(hidden, weights, labels, options=torch.nn.LinearCrossEntropyOptions())


def fused(hidden, weights, labels):
    return masked_token_loss(hidden, labels, *weights, backend="auto").loss


def reference_masked(hidden, weights, labels):
    return masked_token_loss(hidden, labels, *weights, backend="reference").loss


VARIANTS: dict[str, Callable] = {"hf_full": hf_full, "reference_masked": reference_masked, "linear_ce": linear_ce,
                                 "linear_ce_chunked": linear_ce_chunked, "fused": fused}


def clear_grads(problem: dict) -> None:
    for t in [problem["hidden"]] + [w for weights, _ in problem["heads"] for w in weights]:
        t.grad = None


def step(problem: dict, loss_fn: Callable) -> float:
    """One forward + backward of both heads (gradients start from None); returns the summed loss."""
    hidden = problem["hidden"]
    loss = sum(loss_fn(hidden, weights, labels) for weights, labels in problem["heads"])
    loss.backward()
    return float(loss.detach())


def peak_bytes(fn: Callable[[], object]) -> int:
    """Peak of live tensor bytes allocated by ``fn`` (CPU), from the profiler's memory events.

    Nothing allocated before may be freed inside ``fn``: the profiler would count its release
    (a negative event) without its allocation.
    """
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    events = sorted((e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"), key=lambda e: e.start_ns())
    live = peak = 0
    for event in events:
        live += event.nbytes()
        peak = max(peak, live)
    return peak


@pytest.fixture(scope="module")
def problem():
    return make_problem()


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_heads_forward_backward(benchmark, problem, variant):
    loss_fn = VARIANTS[variant]
    benchmark.extra_info["batch"] = BATCH
    clear_grads(problem)
    benchmark.extra_info["peak_mib"] = peak_bytes(lambda: step(problem, loss_fn)) / 2**20

    def setup():
        clear_grads(problem)
        return (problem, loss_fn), {}

    benchmark.pedantic(step, setup=setup, rounds=2, iterations=1, warmup_rounds=1)


def compare(batch: int = BATCH, repeats: int = 2) -> list[dict]:
    problem = make_problem(batch)
    results = []
    for name, loss_fn in VARIANTS.items():
        clear_grads(problem)
        loss = step(problem, loss_fn)  # warm-up
        times = []
        for _ in range(repeats):
            clear_grads(problem)
            start = time.perf_counter()
            step(problem, loss_fn)
            times.append(time.perf_counter() - start)
        clear_grads(problem)
        results.append({"variant": name, "loss": loss, "seconds": min(times),
                        "peak_mib": peak_bytes(lambda: step(problem, loss_fn)) / 2**20})
    return results


if __name__ == "__main__":
    from videobert.ops.cli import describe_machine

    print(describe_machine())
    torch.manual_seed(0)
    rows = compare()
    base = {r["variant"]: r for r in rows}
    print(f"batch {BATCH} x {LENGTH}, hidden {HIDDEN}, vocab {TEXT_VOCAB} + {VISUAL_WORDS}, torch threads {torch.get_num_threads()}")
    print("| variant | loss | time (s) | peak memory (MiB) | time / hf_full | memory / hf_full | time / fused | memory / fused |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['variant']} | {r['loss']:.4f} | {r['seconds']:.3f} | {r['peak_mib']:.1f} | "
              f"{r['seconds'] / base['hf_full']['seconds']:.3f} | {r['peak_mib'] / base['hf_full']['peak_mib']:.3f} | "
              f"{r['seconds'] / base['fused']['seconds']:.2f} | {r['peak_mib'] / base['fused']['peak_mib']:.2f} |")
