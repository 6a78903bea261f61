"""The tangled transformer (TNT) block: three streams that attend across each other.

Per stream (text, action, regions) one BERT layer's query / key / value projections, output
projection and feed-forward part (``videobert.models.transformer.EncoderLayer``, so the text
stream's tangled layers are BERT layers and load from a BERT checkpoint). In each block:

1. the action stream is the query into the other two: ``c_text = h_action + Attn(q_action, k_text,
   v_text)`` and ``c_region = h_action + Attn(q_action, k_region, v_region)`` (``[B, La, H]`` each,
   per action position);
2. those contexts enter the *other* streams' keys and values: the text attends to its own keys and
   values followed by ``W_k c_region`` / ``W_v c_region`` (the action-grounded view of the
   objects), the regions to theirs followed by ``W_k c_text`` / ``W_v c_text`` (the
   action-grounded view of the words); the action stream attends to itself;
3. each stream's context goes through its layer's output projection, residual LayerNorm and
   feed-forward.

This is the paper's formulation (the contexts are appended to the keys and values); PaddleVideo's
reference instead adds them to the keys and values after resizing the action axis to the other
stream's length, which ties a text position to whichever clip happens to share its relative index.
Appending needs no such alignment and lets padding be masked exactly. The contexts keep the
action state as a residual (as a cross-attention sub-layer's output is added to its query's
stream); the reference has none, and then no action feature would ever reach the text or region
streams (attention weights only choose among their values): masked words could not be cued by
the action, which is what the objective asks.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from videobert.models.transformer import EncoderLayer, EncoderSizes


def key_mask(mask: torch.Tensor | None, batch: int, length: int, device: torch.device) -> torch.Tensor:
    """``[B, L]`` (1 real, 0 padding; ``None``: all real) -> ``[B, 1, 1, L]`` bool for SDPA."""
    if mask is None:
        return torch.ones(batch, 1, 1, length, dtype=torch.bool, device=device)
    return mask.bool()[:, None, None, :]


def feed_forward(layer: EncoderLayer, hidden: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
    """The rest of a BERT layer after attention: output projection, residual LayerNorm, feed-forward."""
    hidden = layer.attention_norm(hidden + layer.dropout(layer.attention.output(context)))
    return layer.output_norm(hidden + layer.dropout(layer.output(F.gelu(layer.intermediate(hidden)))))


class TangledLayer(nn.Module):
    def __init__(self, config: EncoderSizes) -> None:
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.dropout_p = config.attention_probs_dropout_prob
        self.text, self.action, self.region = EncoderLayer(config), EncoderLayer(config), EncoderLayer(config)
        hidden = config.hidden_size
        # the action-grounded contexts as keys / values of the other streams
        self.region_context_key, self.region_context_value = nn.Linear(hidden, hidden), nn.Linear(hidden, hidden)
        self.text_context_key, self.text_context_value = nn.Linear(hidden, hidden), nn.Linear(hidden, hidden)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:  # [B, L, H] -> [B, heads, L, H/heads]
        batch, length, width = x.shape
        return x.view(batch, length, self.num_heads, width // self.num_heads).transpose(1, 2)

    def _attend(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Heads in, merged ``[B, Lq, H]`` out; ``mask [B, 1, 1, Lk]`` bool."""
        context = F.scaled_dot_product_attention(query, key, value, attn_mask=mask,
                                                 dropout_p=self.dropout_p if self.training else 0.0)
        batch, _, length, _ = context.shape
        return context.transpose(1, 2).reshape(batch, length, -1)

    def forward(self, text: torch.Tensor, action: torch.Tensor, region: torch.Tensor,
                text_mask: torch.Tensor, action_mask: torch.Tensor, region_mask: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Hidden states ``[B, Lt|La|Lr, H]`` and key masks ``[B, 1, 1, L]`` (bool, True = real) of the
        three streams -> their new hidden states (same shapes).

        Every row needs at least one real action (the action stream is the query of step 1)."""
        projections = {}
        for name, hidden in (("text", text), ("action", action), ("region", region)):
            attention = getattr(self, name).attention
            projections[name] = tuple(self._heads(p(hidden)) for p in (attention.query, attention.key, attention.value))
        (q_t, k_t, v_t), (q_a, k_a, v_a), (q_r, k_r, v_r) = projections["text"], projections["action"], projections["region"]

        text_seen_by_action = action + self._attend(q_a, k_t, v_t, text_mask)      # [B, La, H]
        region_seen_by_action = action + self._attend(q_a, k_r, v_r, region_mask)  # [B, La, H]

        text_keys = torch.cat([k_t, self._heads(self.region_context_key(region_seen_by_action))], dim=2)
        text_values = torch.cat([v_t, self._heads(self.region_context_value(region_seen_by_action))], dim=2)
        region_keys = torch.cat([k_r, self._heads(self.text_context_key(text_seen_by_action))], dim=2)
        region_values = torch.cat([v_r, self._heads(self.text_context_value(text_seen_by_action))], dim=2)

        text_context = self._attend(q_t, text_keys, text_values, torch.cat([text_mask, action_mask], dim=-1))
        region_context = self._attend(q_r, region_keys, region_values, torch.cat([region_mask, action_mask], dim=-1))
        action_context = self._attend(q_a, k_a, v_a, action_mask)
        return (feed_forward(self.text, text, text_context), feed_forward(self.action, action, action_context),
                feed_forward(self.region, region, region_context))
