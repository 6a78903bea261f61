"""``masked_token_loss``: BERT's masked-token prediction head and its cross-entropy, computed only
for the masked positions and never with the full ``[n_masked, V]`` logits in memory.

Backends (see ``videobert.ops.backends``):
- ``reference``: plain PyTorch with full logits, the specification (``masked_token_loss_reference``);
- ``cpu``: PyTorch, vocabulary in chunks with an online log-sum-exp and its own backward
  (``masked_token_loss_fused``); needs no compiled module, so it runs on any device;
- ``triton``: the same autograd function with the vocabulary part in Triton kernels (GPU;
  fp16/bf16 inputs, fp32 accumulation; CPU under ``TRITON_INTERPRET=1`` for tests).
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from videobert.ops.backends import check_backend
from videobert.ops.masked_token_loss_fused import masked_token_loss_fused
from videobert.ops.masked_token_loss_reference import masked_token_loss_reference

BACKENDS = ("reference", "cpu", "triton")


class MaskedTokenLoss(NamedTuple):
    loss: torch.Tensor         # fp32 scalar: mean (or sum) cross-entropy over the masked rows
    predictions: torch.Tensor  # [n_masked] int64 argmax of the logits of each masked row
    rows: torch.Tensor         # [n_masked] int64 index of each masked row in hidden.reshape(-1, H)


def resolve_backend(backend: str, tensor: torch.Tensor) -> str:
    """``auto``: triton on CUDA tensors where available, else the chunked PyTorch path ("cpu")."""
    if backend not in ("auto", *BACKENDS):
        raise ValueError(f"unknown backend {backend!r} for masked_token_loss; choose from {('auto', *BACKENDS)}")
    if backend == "cpu":  # pure PyTorch: available everywhere, unlike backends.py's compiled "cpu"
        return "cpu"
    resolved = check_backend(backend, tensor, ("reference", "triton"))
    return "cpu" if backend == "auto" and resolved == "reference" else resolved


def _check_shapes(hidden, labels, dense_weight, dense_bias, norm_weight, norm_bias, decoder_weight, decoder_bias) -> None:
    width = hidden.shape[-1]
    if labels.shape != hidden.shape[:-1]:
        raise ValueError(f"labels shape {tuple(labels.shape)} must equal hidden shape without its last dim {tuple(hidden.shape[:-1])}")
    if labels.dtype != torch.int64:
        raise TypeError(f"labels must be int64, got {labels.dtype}")
    if labels.device != hidden.device:
        raise ValueError(f"labels are on {labels.device}, hidden on {hidden.device}")
    expected = {"dense_weight": (dense_weight, (width, width)), "dense_bias": (dense_bias, (width,)),
                "norm_weight": (norm_weight, (width,)), "norm_bias": (norm_bias, (width,)),
                "decoder_weight": (decoder_weight, (decoder_weight.shape[0], width)),
                "decoder_bias": (decoder_bias, (decoder_weight.shape[0],))}
    for name, (tensor, shape) in expected.items():
        if tuple(tensor.shape) != shape:
            raise ValueError(f"{name} has shape {tuple(tensor.shape)}, expected {shape} (hidden size {width})")
        if tensor.device != hidden.device:
            raise ValueError(f"{name} is on {tensor.device}, hidden on {hidden.device}")


def masked_token_loss(
    hidden: torch.Tensor, labels: torch.Tensor,
    dense_weight: torch.Tensor, dense_bias: torch.Tensor, norm_weight: torch.Tensor, norm_bias: torch.Tensor,
    decoder_weight: torch.Tensor, decoder_bias: torch.Tensor,
    *, eps: float = 1e-12, ignore_index: int = -100, reduction: str = "mean", backend: str = "auto",
) -> MaskedTokenLoss:
    """Cross-entropy of ``decoder(LayerNorm(gelu(dense(hidden))))`` at the positions whose label is not ``ignore_index``.

    hidden ``[..., H]``; labels ``[...]`` int64 in ``[0, V)`` or ``ignore_index``; dense ``[H, H]``, ``[H]``;
    norm (LayerNorm) ``[H]``, ``[H]``; decoder ``[V, H]``, ``[V]``. Weights are cast to ``hidden.dtype``.
    ``reduction``: "mean" over masked rows or "sum". With no masked row the loss is 0.0, still
    connected to every input so that all parameters get a (zero) gradient.
    """
    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
    _check_shapes(hidden, labels, dense_weight, dense_bias, norm_weight, norm_bias, decoder_weight, decoder_bias)
    name = resolve_backend(backend, hidden)
    flat_labels = labels.reshape(-1)
    rows = (flat_labels != ignore_index).nonzero().squeeze(1)
    targets = flat_labels[rows]
    vocab = decoder_weight.shape[0]
    if targets.numel() and (int(targets.min()) < 0 or int(targets.max()) >= vocab):
        raise ValueError(f"labels must lie in [0, {vocab}) or equal ignore_index {ignore_index}; got [{int(targets.min())}, {int(targets.max())}]")
    x = hidden.reshape(-1, hidden.shape[-1]).index_select(0, rows)
    weights = [w.to(hidden.dtype) for w in (dense_weight, dense_bias, norm_weight, norm_bias, decoder_weight, decoder_bias)]
    if name == "reference":
        loss_sum, predictions = masked_token_loss_reference(x, targets, *weights, eps=eps)
    else:
        vocab_ops = None
        if name == "triton":
            from videobert.ops.triton.masked_token_loss import TRITON_VOCAB
            vocab_ops = TRITON_VOCAB
        x = x.contiguous()
        weights = [w.contiguous() for w in weights]
        loss_sum, predictions = masked_token_loss_fused(x, targets, *weights, eps=eps, **({"vocab_ops": vocab_ops} if vocab_ops else {}))
    loss = loss_sum / max(rows.numel(), 1) if reduction == "mean" else loss_sum
    return MaskedTokenLoss(loss, predictions, rows)
