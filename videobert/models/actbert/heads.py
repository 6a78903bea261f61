"""ActBERT's own head: masked object classification over the detector's classes.

The masked-word and masked-action heads are ``videobert.models.videobert.heads.MaskedTokenHead``
(the fused ``masked_token_loss``, no full logits in training) and the matching head is its
``AlignmentHead`` on ``[CLS]``.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from videobert.models.actbert.config import ActBertConfig


class ObjectHead(nn.Module):
    """BERT's head transform (dense, GELU, LayerNorm) and a linear map to ``num_object_classes``
    log-probabilities; the targets are soft (the detector's distributions), and the class count is
    small, so this head computes its logits in full."""

    def __init__(self, config: ActBertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.decoder = nn.Linear(config.hidden_size, config.num_object_classes)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        """``[..., H] -> [..., num_object_classes]`` float32 log-probabilities."""
        # normalised in float32, as the MLM / action heads' losses are: in bf16 the log-probabilities
        # of unlikely classes (and so the KL) lose most of their digits
        return F.log_softmax(self.decoder(self.norm(F.gelu(self.dense(hidden)))).float(), dim=-1)
