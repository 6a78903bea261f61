"""BERT's post-LayerNorm transformer encoder, attention through
``torch.nn.functional.scaled_dot_product_attention`` (fused / flash kernels where available).

Shared by the model families: any config with the fields of :class:`EncoderSizes` builds it."""

from __future__ import annotations

from typing import Protocol

import torch
from torch import nn
from torch.nn import functional as F


class EncoderSizes(Protocol):
    """The config fields the encoder reads (``VideoBertConfig`` and the other families' configs have them)."""

    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    hidden_dropout_prob: float
    attention_probs_dropout_prob: float
    layer_norm_eps: float


class SelfAttention(nn.Module):
    def __init__(self, config: EncoderSizes) -> None:
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.dropout_p = config.attention_probs_dropout_prob
        hidden = config.hidden_size
        self.query = nn.Linear(hidden, hidden)
        self.key = nn.Linear(hidden, hidden)
        self.value = nn.Linear(hidden, hidden)
        self.output = nn.Linear(hidden, hidden)

    def forward(self, hidden: torch.Tensor, key_mask: torch.Tensor | None) -> torch.Tensor:
        """``hidden [B, L, H]``, ``key_mask [B, 1, 1 or L, L]`` bool (True = attend) -> ``[B, L, H]``."""
        batch, length, width = hidden.shape

        def heads(x: torch.Tensor) -> torch.Tensor:  # [B, L, H] -> [B, heads, L, H/heads]
            return x.view(batch, length, self.num_heads, width // self.num_heads).transpose(1, 2)

        context = F.scaled_dot_product_attention(
            heads(self.query(hidden)), heads(self.key(hidden)), heads(self.value(hidden)),
            attn_mask=key_mask, dropout_p=self.dropout_p if self.training else 0.0,
        )
        return self.output(context.transpose(1, 2).reshape(batch, length, width))


class EncoderLayer(nn.Module):
    def __init__(self, config: EncoderSizes) -> None:
        super().__init__()
        self.attention = SelfAttention(config)
        self.attention_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.intermediate = nn.Linear(config.hidden_size, config.intermediate_size)
        self.output = nn.Linear(config.intermediate_size, config.hidden_size)
        self.output_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, hidden: torch.Tensor, key_mask: torch.Tensor | None) -> torch.Tensor:
        hidden = self.attention_norm(hidden + self.dropout(self.attention(hidden, key_mask)))
        feed_forward = self.output(F.gelu(self.intermediate(hidden)))
        return self.output_norm(hidden + self.dropout(feed_forward))


class Encoder(nn.Module):
    def __init__(self, config: EncoderSizes) -> None:
        super().__init__()
        self.layers = nn.ModuleList(EncoderLayer(config) for _ in range(config.num_hidden_layers))

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor | None = None,
                example_index: torch.Tensor | None = None) -> torch.Tensor:
        """``hidden [B, L, H]``, ``attention_mask [B, L]`` (1 real token, 0 padding) -> ``[B, L, H]``;
        rows packed with several sequences give ``example_index [B, L]`` instead (which sequence
        each position belongs to, -1 on padding): a position then attends to its own sequence only.

        A mask without padding is dropped: attending to every key is what it says, and SDPA's
        flash kernel takes no mask at all (the memory-efficient one takes it, the math one any), so
        an all-ones mask would rule out the fastest GPU kernel. Deciding costs one ``all()`` per
        forward (a device sync on a GPU), not one per layer.
        """
        key_mask = None
        if example_index is not None:  # padding attends to padding: no row of the mask is empty
            key_mask = (example_index[:, :, None] == example_index[:, None, :])[:, None]
        elif attention_mask is not None and not bool(attention_mask.all()):
            key_mask = attention_mask.bool()[:, None, None, :]
        for layer in self.layers:
            hidden = layer(hidden, key_mask)
        return hidden


def init_bert_module(module: nn.Module, std: float) -> bool:
    """BERT's initialisation of one module (for ``model.apply``): normal(0, ``std``) weights of
    linear, embedding and convolution layers with zero biases, unit LayerNorms. Returns False for
    any other module, whose own parameters the model initialises."""
    if isinstance(module, (nn.Linear, nn.Embedding, nn.Conv2d)):
        nn.init.normal_(module.weight, std=std)
        if getattr(module, "bias", None) is not None:
            nn.init.zeros_(module.bias)
        return True
    if isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
        return True
    return False
