"""Fused masked-token head loss: transform + decoder + cross-entropy without ``[n, V]`` logits.

The vocabulary is walked in chunks with an online log-sum-exp; the backward recomputes each chunk's
logits and turns them into ``softmax - onehot`` in place. The vocabulary part is pluggable
(``VocabOps``): ``CHUNKED_TORCH`` below (any device, BLAS per chunk: the "cpu" backend; when gradients
are needed it walks blocks of rows instead and computes them in the forward, saving the second
logits matmul) or the Triton kernels in ``videobert.ops.triton.masked_token_loss``. The small transform (dense, GELU, LayerNorm)
has a hand-written backward here, shared by both.
"""

from __future__ import annotations

import math
from typing import NamedTuple, Protocol

import torch
from torch.nn import functional as F

# Logits held at once by the chunked path: rows x chunk <= this many fp32 values (16 MiB).
CHUNK_ELEMENTS = 1 << 22


class VocabForward(NamedTuple):
    lse: torch.Tensor          # [n] fp32 log-sum-exp of the logits
    target_logit: torch.Tensor  # [n] fp32 logit of the label
    predictions: torch.Tensor  # [n] int64 argmax


class VocabOps(Protocol):
    def forward(self, t: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, labels: torch.Tensor) -> VocabForward: ...

    def backward(
        self, t: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, labels: torch.Tensor,
        lse: torch.Tensor, grad_rows: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]: ...


def accumulation_dtype(dtype: torch.dtype) -> torch.dtype:
    """fp32 for fp16 / bf16 / fp32 inputs; fp64 stays fp64 (for gradient checks)."""
    return torch.promote_types(dtype, torch.float32)


def chunk_size(rows: int, vocab: int, elements: int = CHUNK_ELEMENTS) -> int:
    """Vocabulary entries per chunk so that ``rows x chunk`` stays near ``elements`` (at least 256)."""
    return max(256, min(vocab, elements // max(rows, 1)))


class ChunkedTorchVocab:
    """Vocabulary part in PyTorch, ``chunk_size`` decoder rows at a time.

    ``precompute_grads``: when gradients are needed, use ``forward_with_grads`` (faster; the
    backward can then run only once per forward, like PyTorch's chunked linear_cross_entropy).
    """

    def __init__(self, precompute_grads: bool = True) -> None:
        self.precompute_grads = precompute_grads

    def forward(self, t: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, labels: torch.Tensor) -> VocabForward:
        n, vocab = t.shape[0], weight.shape[0]
        acc = accumulation_dtype(t.dtype)
        running_max = torch.full((n,), -math.inf, dtype=acc, device=t.device)
        running_sum = torch.zeros(n, dtype=acc, device=t.device)
        target = torch.zeros(n, dtype=acc, device=t.device)
        best = torch.zeros(n, dtype=torch.int64, device=t.device)
        step = chunk_size(n, vocab, CHUNK_ELEMENTS)
        for start in range(0, vocab, step):
            end = min(start + step, vocab)
            logits = torch.addmm(bias[start:end], t, weight[start:end].t()).to(acc)
            chunk_max, chunk_arg = logits.max(dim=1)
            best = torch.where(chunk_max > running_max, chunk_arg + start, best)
            new_max = torch.maximum(running_max, chunk_max)
            running_sum = running_sum * torch.exp(running_max - new_max) + torch.exp(logits - new_max[:, None]).sum(1)
            running_max = new_max
            inside = (labels >= start) & (labels < end)
            local = (labels - start).clamp(0, end - start - 1)
            target = torch.where(inside, logits.gather(1, local[:, None]).squeeze(1), target)
        return VocabForward(running_max + torch.log(running_sum), target, best)

    def backward(self, t, weight, bias, labels, lse, grad_rows):
        n, vocab = t.shape[0], weight.shape[0]
        acc = accumulation_dtype(t.dtype)
        grad_t = torch.zeros(t.shape, dtype=acc, device=t.device)
        grad_weight = torch.empty_like(weight)
        grad_bias = torch.empty_like(bias)
        rows = torch.arange(n, device=t.device)
        step = chunk_size(n, vocab, CHUNK_ELEMENTS)
        for start in range(0, vocab, step):
            end = min(start + step, vocab)
            # d loss_i / d logit_ij = grad_i * (softmax_ij - [j == label_i])
            probs = torch.addmm(bias[start:end], t, weight[start:end].t()).to(acc).sub_(lse[:, None]).exp_()
            inside = (labels >= start) & (labels < end)
            probs[rows[inside], labels[inside] - start] -= 1.0
            probs.mul_(grad_rows[:, None])
            grad_logits = probs.to(t.dtype)
            grad_t += grad_logits @ weight[start:end]
            torch.mm(grad_logits.t(), t, out=grad_weight[start:end])
            grad_bias[start:end] = probs.sum(0)
        return grad_t.to(t.dtype), grad_weight, grad_bias

    def forward_with_grads(self, t, weight, bias, labels):
        """Forward and the gradients for a loss gradient of 1, in one pass over blocks of rows.

        Each block's logits ``[rows, V]`` are complete, so their log-sum-exp is exact at once and
        ``softmax - onehot`` follows without the second logits matmul that ``backward`` needs.
        """
        n, vocab = t.shape[0], weight.shape[0]
        acc = accumulation_dtype(t.dtype)
        lse = torch.empty(n, dtype=acc, device=t.device)
        target = torch.empty(n, dtype=acc, device=t.device)
        best = torch.empty(n, dtype=torch.int64, device=t.device)
        grad_t = torch.empty_like(t)
        grad_weight = torch.zeros(weight.shape, dtype=acc, device=t.device)
        grad_bias = torch.zeros(vocab, dtype=acc, device=t.device)
        step = max(1, CHUNK_ELEMENTS // vocab)
        for start in range(0, n, step):
            end = min(start + step, n)
            rows, block_labels = torch.arange(end - start, device=t.device), labels[start:end]
            probs = torch.addmm(bias, t[start:end], weight.t()).to(acc)
            block_max, best[start:end] = probs.max(dim=1)
            target[start:end] = probs[rows, block_labels]
            probs.sub_(block_max[:, None]).exp_()
            total = probs.sum(1)
            lse[start:end] = block_max + total.log()
            probs.div_(total[:, None])
            probs[rows, block_labels] -= 1.0
            grad_logits = probs.to(t.dtype)
            torch.mm(grad_logits, weight, out=grad_t[start:end])
            grad_weight.addmm_(probs.t(), t[start:end].to(acc))
            grad_bias += probs.sum(0)
        grads = (grad_t, grad_weight.to(weight.dtype), grad_bias.to(bias.dtype))
        return VocabForward(lse, target, best), grads


CHUNKED_TORCH = ChunkedTorchVocab()


def transform_forward(x, dense_weight, dense_bias, norm_weight, norm_bias, eps):
    """``x [n, H]`` -> (``z`` pre-activation, ``normed`` = (g - mean) * rstd in fp32, ``rstd [n, 1]``, output ``t``)."""
    z = F.linear(x, dense_weight, dense_bias)
    g = F.gelu(z).to(accumulation_dtype(x.dtype))
    centered = g - g.mean(-1, keepdim=True)
    rstd = torch.rsqrt((centered * centered).mean(-1, keepdim=True) + eps)
    normed = centered * rstd
    t = (normed * norm_weight.to(normed.dtype) + norm_bias.to(normed.dtype)).to(x.dtype)
    return z, normed, rstd, t


def transform_backward(grad_t, x, z, normed, rstd, dense_weight, norm_weight):
    """Gradients of ``transform_forward`` for ``x``, dense weight and bias, norm weight and bias."""
    grad_t = grad_t.to(normed.dtype)
    grad_norm_weight = (grad_t * normed).sum(0)
    grad_norm_bias = grad_t.sum(0)
    grad_normed = grad_t * norm_weight.to(normed.dtype)
    grad_g = rstd * (grad_normed - grad_normed.mean(-1, keepdim=True) - normed * (grad_normed * normed).mean(-1, keepdim=True))
    zf = z.to(normed.dtype)
    # gelu'(z) = Phi(z) + z * phi(z)
    gelu_grad = 0.5 * (1.0 + torch.erf(zf * math.sqrt(0.5))) + zf * torch.exp(-0.5 * zf * zf) / math.sqrt(2.0 * math.pi)
    grad_z = (grad_g * gelu_grad).to(x.dtype)
    grad_x = grad_z @ dense_weight
    grad_dense_weight = grad_z.t() @ x
    grad_dense_bias = grad_z.to(normed.dtype).sum(0)
    return grad_x, grad_dense_weight, grad_dense_bias, grad_norm_weight, grad_norm_bias


class FusedMaskedTokenLoss(torch.autograd.Function):
    """``(x [n, H], labels [n], head weights) -> (loss_sum fp32 scalar, predictions [n])``."""

    @staticmethod
    def forward(ctx, x, labels, dense_weight, dense_bias, norm_weight, norm_bias, decoder_weight, decoder_bias, eps, vocab_ops):
        z, normed, rstd, t = transform_forward(x, dense_weight, dense_bias, norm_weight, norm_bias, eps)
        # Where the vocabulary part can, it computes its gradients during the forward (one logits
        # matmul instead of two); backward then only scales them by the incoming loss gradient.
        ctx.vocab_grads = None
        ctx.precomputed = any(ctx.needs_input_grad) and getattr(vocab_ops, "precompute_grads", False)
        if ctx.precomputed:
            result, ctx.vocab_grads = vocab_ops.forward_with_grads(t, decoder_weight, decoder_bias, labels)
        else:
            result = vocab_ops.forward(t, decoder_weight, decoder_bias, labels)
        ctx.save_for_backward(x, labels, dense_weight, norm_weight, decoder_weight, decoder_bias, z, normed, rstd, t, result.lse)
        ctx.vocab_ops = vocab_ops
        ctx.mark_non_differentiable(result.predictions)
        return (result.lse - result.target_logit).sum(), result.predictions

    @staticmethod
    def backward(ctx, grad_loss, _grad_predictions):
        x, labels, dense_weight, norm_weight, decoder_weight, decoder_bias, z, normed, rstd, t, lse = ctx.saved_tensors
        if ctx.precomputed:
            if ctx.vocab_grads is None:
                raise RuntimeError("masked_token_loss (backend 'cpu') computes its gradients once, in the forward: "
                                   "run backward once per forward, or use backend='reference' to retain the graph")
            scale = grad_loss.to(lse.dtype)
            grad_t, grad_decoder_weight, grad_decoder_bias = (grad.mul_(scale.to(grad.dtype)) for grad in ctx.vocab_grads)
            ctx.vocab_grads = None
        else:
            grad_rows = grad_loss.to(lse.dtype).expand(x.shape[0]).contiguous()
            grad_t, grad_decoder_weight, grad_decoder_bias = ctx.vocab_ops.backward(t, decoder_weight, decoder_bias, labels, lse, grad_rows)
        grad_x, grad_dense_weight, grad_dense_bias, grad_norm_weight, grad_norm_bias = transform_backward(
            grad_t, x, z, normed, rstd, dense_weight, norm_weight)
        cast = lambda grad, like: grad.to(like.dtype)  # noqa: E731
        return (grad_x, None, cast(grad_dense_weight, dense_weight), cast(grad_dense_bias, dense_weight),
                cast(grad_norm_weight, norm_weight), cast(grad_norm_bias, norm_weight),
                grad_decoder_weight, grad_decoder_bias, None, None)


def masked_token_loss_fused(x, labels, dense_weight, dense_bias, norm_weight, norm_bias, decoder_weight, decoder_bias,
                            eps: float = 1e-12, vocab_ops: VocabOps = CHUNKED_TORCH) -> tuple[torch.Tensor, torch.Tensor]:
    """Same contract as ``masked_token_loss_reference``; never holds more than one chunk of logits."""
    return FusedMaskedTokenLoss.apply(x, labels, dense_weight, dense_bias, norm_weight, norm_bias,
                                      decoder_weight, decoder_bias, eps, vocab_ops)
