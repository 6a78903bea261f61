"""Triton kernels for the vocabulary part of ``masked_token_loss`` (``VocabOps`` of the fused op).

forward: one program per block of rows walks the whole vocabulary, block by block: logits of the
block by ``tl.dot`` (fp32 accumulation; fp16 / bf16 / fp32 inputs), online max / sum-exp / argmax and
the label's logit. No logits are written to memory.

backward: per vocabulary chunk, one kernel recomputes the chunk's logits and writes
``grad * (softmax - onehot)`` in the input dtype (``[n, chunk]``, the only chunk-sized buffer) and
adds its column sums into the fp32 bias gradient; the two products with it (gradients of the
transformed hidden states and of the decoder weight) are plain matmuls (cuBLAS on a GPU).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from videobert.ops.masked_token_loss_fused import VocabForward, chunk_size

BLOCK_N, BLOCK_V, BLOCK_H = 32, 64, 32
# Gradient-of-logits chunk held at once: rows x chunk <= this many elements.
GRAD_CHUNK_ELEMENTS = 1 << 24


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
def _grad_logits_kernel(t_ptr, w_ptr, b_ptr, labels_ptr, lse_ptr, grad_rows_ptr, out_ptr, grad_bias_ptr,
                        n, v_start, v_end, hidden, stride_t, stride_w, stride_out,
                        BLOCK_N: tl.constexpr, BLOCK_V: tl.constexpr, BLOCK_H: tl.constexpr, PRECISION: tl.constexpr):
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
    tl.atomic_add(grad_bias_ptr + cols, tl.sum(grad, axis=0), mask=col_ok)


def _precision(dtype: torch.dtype) -> str:
    # fp32 inputs must not be rounded to TF32: the op promises fp32 agreement with the reference.
    return "ieee" if dtype == torch.float32 else "tf32"


class TritonVocab:
    def forward(self, t: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, labels: torch.Tensor) -> VocabForward:
        n, hidden = t.shape
        vocab = weight.shape[0]
        lse = torch.empty(n, dtype=torch.float32, device=t.device)
        target = torch.empty_like(lse)
        predictions = torch.empty(n, dtype=torch.int64, device=t.device)
        if n:
            _forward_kernel[(triton.cdiv(n, BLOCK_N),)](
                t, weight, bias, labels, lse, target, predictions, n, vocab, hidden, t.stride(0), weight.stride(0),
                BLOCK_N=BLOCK_N, BLOCK_V=BLOCK_V, BLOCK_H=BLOCK_H, PRECISION=_precision(t.dtype))
        return VocabForward(lse, target, predictions)

    def backward(self, t, weight, bias, labels, lse, grad_rows):
        n, hidden = t.shape
        vocab = weight.shape[0]
        grad_t = torch.zeros(t.shape, dtype=torch.float32, device=t.device)
        grad_weight = torch.empty_like(weight)
        grad_bias = torch.zeros(vocab, dtype=torch.float32, device=t.device)
        step = chunk_size(n, vocab, GRAD_CHUNK_ELEMENTS)
        grad_logits = torch.empty(n, min(step, vocab), dtype=t.dtype, device=t.device)
        for start in range(0, vocab, step):
            end = min(start + step, vocab)
            chunk = grad_logits[:, : end - start]
            if n:
                _grad_logits_kernel[(triton.cdiv(n, BLOCK_N), triton.cdiv(end - start, BLOCK_V))](
                    t, weight, bias, labels, lse, grad_rows, chunk, grad_bias, n, start, end, hidden,
                    t.stride(0), weight.stride(0), chunk.stride(0),
                    BLOCK_N=BLOCK_N, BLOCK_V=BLOCK_V, BLOCK_H=BLOCK_H, PRECISION=_precision(t.dtype))
            grad_t += chunk @ weight[start:end]
            torch.mm(chunk.t(), t, out=grad_weight[start:end])
        return grad_t.to(t.dtype), grad_weight, grad_bias.to(bias.dtype)


TRITON_VOCAB = TritonVocab()
