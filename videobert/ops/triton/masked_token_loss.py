"""Triton kernels for the vocabulary part of ``masked_token_loss`` (``VocabOps`` of the fused op).

forward: one program per block of rows walks the whole vocabulary, block by block: logits of the
block by ``tl.dot`` (fp32 accumulation; fp16 / bf16 / fp32 inputs), online max / sum-exp / argmax and
the label's logit. No logits are written to memory.

backward: per vocabulary chunk, one kernel recomputes the chunk's logits and writes
``grad * (softmax - onehot)`` in the input dtype (``[n, chunk]``, the only chunk-sized buffer) and
each program's fp32 column sums into its own row of a partial-sums buffer, which one reduction turns
into the bias gradient: no atomics, so the bias gradient is the same bits on every run. The two
products with the chunk (gradients of the transformed hidden states and of the decoder weight) are
plain matmuls (cuBLAS on a GPU).

Tiles: on a GPU both kernels are autotuned (``triton.autotune`` over ``TILE_CONFIGS``, keyed by the
hidden size, the vocabulary size and the dtypes, so a training run tunes once per head);
``VIDEOBERT_TRITON_AUTOTUNE=0`` and the interpreter use ``FIXED_TILES``.
"""

from __future__ import annotations

import os

import torch
import triton
import triton.language as tl

from videobert.ops.backends import triton_interpreted
from videobert.ops.masked_token_loss_fused import VocabForward, chunk_size

# Rows x vocabulary x hidden tiles; warps and pipeline stages. Shared memory is about
# (BLOCK_N + BLOCK_V) * BLOCK_H * 2 bytes per stage in 16-bit: at most 96 KiB here (twice in fp32); the
# autotuner drops a config a GPU cannot hold (OutOfResources), and the fixed tiles fit every GPU.
TILE_CONFIGS = [
    triton.Config({"BLOCK_N": 32, "BLOCK_V": 64, "BLOCK_H": 32}, num_warps=4, num_stages=2),
    triton.Config({"BLOCK_N": 64, "BLOCK_V": 64, "BLOCK_H": 64}, num_warps=4, num_stages=3),
    triton.Config({"BLOCK_N": 64, "BLOCK_V": 128, "BLOCK_H": 64}, num_warps=8, num_stages=3),
    triton.Config({"BLOCK_N": 128, "BLOCK_V": 128, "BLOCK_H": 64}, num_warps=8, num_stages=3),
    triton.Config({"BLOCK_N": 128, "BLOCK_V": 64, "BLOCK_H": 64}, num_warps=4, num_stages=4),
]
FIXED_TILES = TILE_CONFIGS[0]
SMALLEST_BLOCK_N = min(config.kwargs["BLOCK_N"] for config in TILE_CONFIGS)
# Gradient-of-logits chunk held at once: rows x chunk <= this many elements.
GRAD_CHUNK_ELEMENTS = 1 << 24


def autotune_enabled() -> bool:
    """Autotune on a GPU unless ``VIDEOBERT_TRITON_AUTOTUNE=0``; never in the interpreter (it cannot time)."""
    return not triton_interpreted() and os.environ.get("VIDEOBERT_TRITON_AUTOTUNE", "1") != "0"


def _prune_tiles(configs, named_args, **kwargs):
    """Drop tiles far larger than the problem (small heads in tests compile fewer variants)."""
    limits = {"BLOCK_N": max(32, triton.next_power_of_2(named_args["n"])),
              "BLOCK_V": max(64, triton.next_power_of_2(named_args["vocab"])),
              "BLOCK_H": max(32, triton.next_power_of_2(named_args["hidden"]))}
    kept = [c for c in configs if all(c.kwargs[name] <= limit for name, limit in limits.items())]
    return kept or [FIXED_TILES]


def _autotuned(kernel):
    return triton.autotune(configs=TILE_CONFIGS, key=["hidden", "vocab"],
                           prune_configs_by={"early_config_prune": _prune_tiles})(kernel)


@triton.jit
def _chunk_logits(t_ptr, w_ptr, b_ptr, rows, row_ok, cols, col_ok, hidden, stride_t, stride_w,
                  BLOCK_N: tl.constexpr, BLOCK_V: tl.constexpr, BLOCK_H: tl.constexpr, PRECISION: tl.constexpr):
    """fp32 logits ``[BLOCK_N, BLOCK_V]`` of rows x cols; -inf in columns past the vocabulary."""
    acc = tl.zeros([BLOCK_N, BLOCK_V], dtype=tl.float32)
    for h0 in range(0, hidden, BLOCK_H):
        hs = h0 + tl.arange(0, BLOCK_H)
        h_ok = hs < hidden
        a = tl.load(t_ptr + rows[:, None] * stride_t + hs[None, :], mask=row_ok[:, None] & h_ok[None, :], other=0.0)
        w = tl.load(w_ptr + cols[None, :] * stride_w + hs[:, None], mask=col_ok[None, :] & h_ok[:, None], other=0.0)
        acc = tl.dot(a, w, acc, input_precision=PRECISION)
    bias = tl.load(b_ptr + cols, mask=col_ok, other=0.0).to(tl.float32)
    return tl.where(col_ok[None, :], acc + bias[None, :], float("-inf"))


@triton.jit
def _forward_kernel(t_ptr, w_ptr, b_ptr, labels_ptr, lse_ptr, target_ptr, argmax_ptr, n, vocab, hidden, stride_t, stride_w,
                    BLOCK_N: tl.constexpr, BLOCK_V: tl.constexpr, BLOCK_H: tl.constexpr, PRECISION: tl.constexpr):
    rows = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    row_ok = rows < n
    labels = tl.load(labels_ptr + rows, mask=row_ok, other=-1)
    running_max = tl.full([BLOCK_N], float("-inf"), dtype=tl.float32)
    running_sum = tl.zeros([BLOCK_N], dtype=tl.float32)
    target = tl.zeros([BLOCK_N], dtype=tl.float32)
    best = tl.zeros([BLOCK_N], dtype=tl.int64)
    for v0 in range(0, vocab, BLOCK_V):
        cols = v0 + tl.arange(0, BLOCK_V)
        col_ok = cols < vocab
        logits = _chunk_logits(t_ptr, w_ptr, b_ptr, rows, row_ok, cols, col_ok, hidden, stride_t, stride_w,
                               BLOCK_N, BLOCK_V, BLOCK_H, PRECISION)
        chunk_max = tl.max(logits, axis=1)
        chunk_arg = tl.argmax(logits, axis=1).to(tl.int64) + v0
        best = tl.where(chunk_max > running_max, chunk_arg, best)
        new_max = tl.maximum(running_max, chunk_max)
        running_sum = running_sum * tl.exp(running_max - new_max) + tl.sum(tl.exp(logits - new_max[:, None]), axis=1)
        running_max = new_max
        target += tl.sum(tl.where(cols[None, :] == labels[:, None], logits, 0.0), axis=1)
    tl.store(lse_ptr + rows, running_max + tl.log(running_sum), mask=row_ok)
    tl.store(target_ptr + rows, target, mask=row_ok)
    tl.store(argmax_ptr + rows, best, mask=row_ok)


@triton.jit
def _grad_logits_kernel(t_ptr, w_ptr, b_ptr, labels_ptr, lse_ptr, grad_rows_ptr, out_ptr, partial_ptr,
                        n, vocab, v_start, v_end, hidden, stride_t, stride_w, stride_out, stride_partial,
                        BLOCK_N: tl.constexpr, BLOCK_V: tl.constexpr, BLOCK_H: tl.constexpr, PRECISION: tl.constexpr):
    # (vocab is not read here: it is the autotuning key, as for the forward kernel)
    rows = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    row_ok = rows < n
    cols = v_start + tl.program_id(1) * BLOCK_V + tl.arange(0, BLOCK_V)
    col_ok = cols < v_end
    logits = _chunk_logits(t_ptr, w_ptr, b_ptr, rows, row_ok, cols, col_ok, hidden, stride_t, stride_w,
                           BLOCK_N, BLOCK_V, BLOCK_H, PRECISION)
    labels = tl.load(labels_ptr + rows, mask=row_ok, other=-1)
    lse = tl.load(lse_ptr + rows, mask=row_ok, other=0.0)
    grad_rows = tl.load(grad_rows_ptr + rows, mask=row_ok, other=0.0)
    probs = tl.exp(logits - lse[:, None]) - tl.where(cols[None, :] == labels[:, None], 1.0, 0.0)
    grad = tl.where(row_ok[:, None] & col_ok[None, :], probs * grad_rows[:, None], 0.0)
    tl.store(out_ptr + rows[:, None] * stride_out + (cols - v_start)[None, :], grad.to(out_ptr.dtype.element_ty),
             mask=row_ok[:, None] & col_ok[None, :])
    # this program's column sums go to its own row: summed later in a fixed order (deterministic)
    tl.store(partial_ptr + tl.program_id(0) * stride_partial + (cols - v_start), tl.sum(grad, axis=0), mask=col_ok)


def _precision(dtype: torch.dtype) -> str:
    # fp32 inputs must not be rounded to TF32: the op promises fp32 agreement with the reference.
    return "ieee" if dtype == torch.float32 else "tf32"


_forward_tuned = _autotuned(_forward_kernel)
_grad_logits_tuned = _autotuned(_grad_logits_kernel)


def _launch(kernel, tuned, grid, *args, **constants) -> dict:
    """Launch ``kernel`` with autotuned tiles (``tuned``) or the fixed ones; ``grid(tiles)`` -> grid.
    Returns the tiles it ran with."""
    if autotune_enabled():
        tuned[grid](*args, **constants)
        return tuned.best_config.kwargs
    kernel[grid(FIXED_TILES.kwargs)](*args, **constants, **FIXED_TILES.kwargs,
                                     num_warps=FIXED_TILES.num_warps, num_stages=FIXED_TILES.num_stages)
    return FIXED_TILES.kwargs


class TritonVocab:
    def forward(self, t: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, labels: torch.Tensor) -> VocabForward:
        n, hidden = t.shape
        vocab = weight.shape[0]
        lse = torch.empty(n, dtype=torch.float32, device=t.device)
        target = torch.empty_like(lse)
        predictions = torch.empty(n, dtype=torch.int64, device=t.device)
        if n:
            _launch(_forward_kernel, _forward_tuned, lambda tiles: (triton.cdiv(n, tiles["BLOCK_N"]),),
                    t, weight, bias, labels, lse, target, predictions, n, vocab, hidden, t.stride(0), weight.stride(0),
                    PRECISION=_precision(t.dtype))
        return VocabForward(lse, target, predictions)

    def backward(self, t, weight, bias, labels, lse, grad_rows):
        n, hidden = t.shape
        vocab = weight.shape[0]
        grad_t = torch.zeros(t.shape, dtype=torch.float32, device=t.device)
        grad_weight = torch.empty_like(weight)
        grad_bias = torch.empty(vocab, dtype=torch.float32, device=t.device)
        step = chunk_size(n, vocab, GRAD_CHUNK_ELEMENTS)
        grad_logits = torch.empty(n, min(step, vocab), dtype=t.dtype, device=t.device)
        # Column sums of each row-block program (room for the smallest tile's programs); only the
        # rows of the programs that ran, each written whole, are summed.
        partial = torch.empty(triton.cdiv(n, SMALLEST_BLOCK_N), grad_logits.shape[1], dtype=torch.float32, device=t.device)
        for start in range(0, vocab, step):
            end = min(start + step, vocab)
            chunk = grad_logits[:, : end - start]
            programs = 0
            if n:
                tiles = _launch(_grad_logits_kernel, _grad_logits_tuned,
                                lambda tiles: (triton.cdiv(n, tiles["BLOCK_N"]), triton.cdiv(end - start, tiles["BLOCK_V"])),
                                t, weight, bias, labels, lse, grad_rows, chunk, partial, n, vocab, start, end, hidden,
                                t.stride(0), weight.stride(0), chunk.stride(0), partial.stride(0),
                                PRECISION=_precision(t.dtype))
                programs = triton.cdiv(n, tiles["BLOCK_N"])
            grad_bias[start:end] = partial[:programs, : end - start].sum(0)
            grad_t += chunk @ weight[start:end]
            torch.mm(chunk.t(), t, out=grad_weight[start:end])
        return grad_t.to(t.dtype), grad_weight, grad_bias.to(bias.dtype)


TRITON_VOCAB = TritonVocab()
