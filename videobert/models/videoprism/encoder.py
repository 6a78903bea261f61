"""VideoPrism's video encoder: a factorised video ViT (ViViT's factorised encoder) and the
attention pooler.

    frames [B, T, S, S, 3] uint8 ──patches──▶ [B·T, N, D] + spatial positions
        ──spatial transformer (per frame)──▶ [B·N, T, D] + temporal positions
        ──temporal transformer (per spatial position)──▶ tokens [B, T, N, D]  (all space-time tokens kept)
    tokens ──attention pooler (one learned query)──▶ [B, D]

Both transformers are the shared ``videobert.models.transformer.Encoder`` (BERT's post-LN layer,
attention through ``F.scaled_dot_product_attention``); the published model is pre-LN with a final
LayerNorm, which at these depths trains alike. ``visible`` (stage 2) keeps only some spatial
positions, the same in every frame (tube masking), so both stacks stay rectangular.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from videobert.models.transformer import Encoder
from videobert.models.videoprism.config import VideoPrismConfig


def check_frames(frames: torch.Tensor, config: VideoPrismConfig) -> None:
    """``frames`` must be uint8 ``[B, T, S, S, 3]`` with ``S == image_size`` and ``1 <= T <= num_frames``."""
    size = config.image_size
    if frames.dim() != 5 or frames.shape[2:] != (size, size, 3):
        raise ValueError(f"frames must be [batch, frames, {size}, {size}, 3] (the model's image_size), got {tuple(frames.shape)}")
    if frames.dtype != torch.uint8:
        raise ValueError(f"frames must be uint8 RGB (a clip store's frames), got {frames.dtype}")
    if not 1 <= frames.shape[1] <= config.num_frames:
        raise ValueError(f"{frames.shape[1]} frames per video; this model takes 1 .. num_frames={config.num_frames}")


class FactorisedVideoEncoder(nn.Module):
    def __init__(self, config: VideoPrismConfig) -> None:
        super().__init__()
        self.config = config
        width = config.hidden_size
        # A patch projection is a linear map of each P x P x 3 patch: a strided convolution.
        self.patch_projection = nn.Conv2d(3, width, config.patch_size, stride=config.patch_size)
        self.spatial_positions = nn.Parameter(torch.zeros(config.spatial_tokens, width))
        self.temporal_positions = nn.Parameter(torch.zeros(config.num_frames, width))
        self.spatial = Encoder(config.stack(config.num_spatial_layers))
        self.temporal = Encoder(config.stack(config.num_temporal_layers))

    def forward(self, frames: torch.Tensor, visible: torch.Tensor | None = None) -> torch.Tensor:
        """``frames [B, T, S, S, 3]`` uint8, ``visible [B, V]`` int64 spatial positions in
        ``[0, N)`` (None: all ``N``) -> tokens ``[B, T, V, D]`` (frame-major)."""
        check_frames(frames, self.config)
        batch, length = frames.shape[:2]
        pixels = frames.flatten(0, 1).permute(0, 3, 1, 2).to(self.patch_projection.weight.dtype) / 255.0
        tokens = self.patch_projection(pixels).flatten(2).transpose(1, 2)  # [B·T, N, D]
        tokens = tokens + self.spatial_positions
        if visible is not None:
            index = visible.repeat_interleave(length, dim=0)  # [B·T, V]: the same positions in every frame
            tokens = tokens.gather(1, index.unsqueeze(-1).expand(-1, -1, tokens.shape[-1]))
        kept = tokens.shape[1]
        tokens = self.spatial(tokens)
        tokens = tokens.view(batch, length, kept, -1).transpose(1, 2).reshape(batch * kept, length, -1)
        tokens = self.temporal(tokens + self.temporal_positions[:length])
        return tokens.view(batch, kept, length, -1).transpose(1, 2)


class AttentionPooler(nn.Module):
    """Multi-head attention pooling with one learned query (VideoPrism's MAP head), then LayerNorm."""

    def __init__(self, config: VideoPrismConfig) -> None:
        super().__init__()
        width = config.hidden_size
        self.num_heads = config.num_attention_heads
        self.query = nn.Parameter(torch.zeros(1, width))
        self.key = nn.Linear(width, width)
        self.value = nn.Linear(width, width)
        self.output = nn.Linear(width, width)
        self.norm = nn.LayerNorm(width, eps=config.layer_norm_eps)

    def forward(self, tokens: torch.Tensor, key_mask: torch.Tensor | None = None) -> torch.Tensor:
        """``tokens [B, L, D]`` (any token layout flattened), ``key_mask [B, L]`` bool (True: attend;
        None: all) -> ``[B, D]``."""
        batch, length, width = tokens.shape
        heads = self.num_heads

        def split(x: torch.Tensor) -> torch.Tensor:  # [B, L, D] -> [B, heads, L, D/heads]
            return x.view(batch, -1, heads, width // heads).transpose(1, 2)

        query = split(self.query.expand(batch, 1, width))
        mask = None if key_mask is None else key_mask[:, None, None, :]
        pooled = F.scaled_dot_product_attention(query, split(self.key(tokens)), split(self.value(tokens)), attn_mask=mask)
        return self.norm(self.output(pooled.transpose(1, 2).reshape(batch, width)))
