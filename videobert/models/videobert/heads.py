"""Prediction heads: masked-token heads (text MLM, visual-word MVM) and the alignment head on ``[CLS]``."""

from __future__ import annotations

import torch
from torch import nn

from videobert.models.videobert.config import VideoBertConfig
from videobert.ops.masked_token_loss import MaskedTokenLoss, masked_token_loss
from videobert.ops.masked_token_loss_reference import head_transform


class HeadTransform(nn.Module):
    """BERT's ``dense -> GELU -> LayerNorm`` before a decoder (parameters only; the op applies them)."""

    def __init__(self, hidden_size: int, eps: float) -> None:
        super().__init__()
        self.dense = nn.Linear(hidden_size, hidden_size)
        self.norm = nn.LayerNorm(hidden_size, eps=eps)


class MaskedTokenHead(nn.Module):
    """Predicts a token among ``vocab_size`` from a hidden state.

    When ``tied``, the decoder matrix ``[vocab_size, H]`` is the input embedding table, which the
    model passes in (visual embeddings may be computed from centroids); else the head owns it.
    """

    def __init__(self, config: VideoBertConfig, vocab_size: int, tied: bool) -> None:
        super().__init__()
        self.transform = HeadTransform(config.hidden_size, config.layer_norm_eps)
        self.decoder = None if tied else nn.Parameter(torch.empty(vocab_size, config.hidden_size))
        self.bias = nn.Parameter(torch.zeros(vocab_size))
        self.backend = config.head_backend

    def _weights(self, tied_weight: torch.Tensor | None) -> tuple[torch.Tensor, ...]:
        decoder = self.decoder if self.decoder is not None else tied_weight
        if decoder is None:
            raise ValueError("this head's decoder is tied to the input embeddings: pass tied_weight")
        t = self.transform
        return t.dense.weight, t.dense.bias, t.norm.weight, t.norm.bias, decoder, self.bias

    def logits(self, hidden: torch.Tensor, tied_weight: torch.Tensor | None = None) -> torch.Tensor:
        """``[..., H] -> [..., vocab_size]`` (full logits: for inference and tasks)."""
        dense_w, dense_b, norm_w, norm_b, decoder_w, decoder_b = self._weights(tied_weight)
        transformed = head_transform(hidden, dense_w, dense_b, norm_w, norm_b, self.transform.norm.eps)
        return nn.functional.linear(transformed, decoder_w.to(transformed.dtype), decoder_b.to(transformed.dtype))

    def loss(self, hidden: torch.Tensor, labels: torch.Tensor, tied_weight: torch.Tensor | None = None) -> MaskedTokenLoss:
        """Mean cross-entropy over positions with ``labels != -100``: hidden ``[B, L, H]``, labels ``[B, L]``."""
        weights = self._weights(tied_weight)
        return masked_token_loss(hidden, labels, *weights, eps=self.transform.norm.eps, backend=self.backend)


class AlignmentHead(nn.Module):
    """BERT's pooler (dense + tanh on ``[CLS]``) and one logit: are this text and this video aligned?"""

    def __init__(self, config: VideoBertConfig) -> None:
        super().__init__()
        self.pooler = nn.Linear(config.hidden_size, config.hidden_size)
        self.classifier = nn.Linear(config.hidden_size, 1)

    def forward(self, cls_hidden: torch.Tensor) -> torch.Tensor:
        """``cls_hidden [B, H]`` (each sequence's ``[CLS]`` state) -> ``[B]`` logit."""
        return self.classifier(torch.tanh(self.pooler(cls_hidden))).squeeze(-1)
