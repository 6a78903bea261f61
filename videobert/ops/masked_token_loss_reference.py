"""Reference masked-token head loss: the specification, with full logits (plain PyTorch)."""

from __future__ import annotations

import torch
from torch.nn import functional as F


def head_transform(
    hidden: torch.Tensor, dense_weight: torch.Tensor, dense_bias: torch.Tensor,
    norm_weight: torch.Tensor, norm_bias: torch.Tensor, eps: float,
) -> torch.Tensor:
    """BERT's prediction-head transform ``LayerNorm(gelu(hidden @ dense_weight.T + dense_bias))``: ``[n, H] -> [n, H]``."""
    transformed = F.gelu(F.linear(hidden, dense_weight, dense_bias))
    return F.layer_norm(transformed, (hidden.shape[-1],), norm_weight, norm_bias, eps)


def masked_token_loss_reference(
    hidden: torch.Tensor, labels: torch.Tensor,
    dense_weight: torch.Tensor, dense_bias: torch.Tensor, norm_weight: torch.Tensor, norm_bias: torch.Tensor,
    decoder_weight: torch.Tensor, decoder_bias: torch.Tensor, eps: float = 1e-12,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed cross-entropy of the head over already-gathered masked rows.

    hidden ``[n, H]``, labels ``[n]`` int64 in ``[0, V)``, dense ``[H, H]`` / ``[H]``, norm ``[H]``,
    decoder ``[V, H]`` / ``[V]``. Returns ``(loss_sum, predictions)``: the scalar sum (fp32, fp64 for fp64 inputs) over rows
    of ``logsumexp(logits) - logits[label]`` and the argmax ids ``[n]``. Holds ``[n, V]`` logits.
    """
    logits = F.linear(head_transform(hidden, dense_weight, dense_bias, norm_weight, norm_bias, eps), decoder_weight, decoder_bias)
    loss_sum = F.cross_entropy(logits.to(torch.promote_types(logits.dtype, torch.float32)), labels, reduction="sum")
    return loss_sum, logits.detach().argmax(-1)
