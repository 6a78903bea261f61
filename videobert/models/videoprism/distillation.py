"""Stage 2's pieces: tube masks, token shuffling, the decoder and the two distillation losses.

    frames ─▶ student encoder (visible tubes only) ─▶ tokens [B, T, V, D] ─┬─ pooler ─▶ global [B, D] ≈ teacher's pooled embedding
                                                                           └─ shuffle ─▶ decoder (+ its own positions, mask tokens)
                                                                                          ─▶ [B, T, N, D] ≈ teacher's tokens
    frames ─▶ frozen stage-1 teacher (all tokens, no gradient) ─▶ targets

Shuffling (the paper's fix for the copy shortcut): the student's output tokens are put in a random
order before the decoder places them in the visible slots and adds its position embeddings. The
token in slot p is then, almost always, another position's token, so the decoder cannot predict
the teacher's token at p by copying what sits at p: it has to find, by content, which token
belongs where. Masks and orders come from each example's seed (the collator draws them), so a
batch's loss is the same on any number of ranks.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from videobert.models.transformer import Encoder
from videobert.models.videoprism.config import VideoPrismConfig


def draw_tube_mask(rng: np.random.Generator, spatial_tokens: int, masked: int) -> np.ndarray:
    """The visible spatial positions ``[spatial_tokens - masked]`` int64, ascending (masked ones
    are hidden in every frame)."""
    if not 0 <= masked < spatial_tokens:
        raise ValueError(f"cannot mask {masked} of {spatial_tokens} spatial positions (at least one stays visible)")
    return np.sort(rng.permutation(spatial_tokens)[: spatial_tokens - masked]).astype(np.int64)


def draw_shuffle(rng: np.random.Generator, count: int) -> np.ndarray:
    """A random order ``[count]`` int64 of the student's ``count`` output tokens."""
    return rng.permutation(count).astype(np.int64)


def cosine_distance(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean of ``1 - cos`` over the rows of ``[..., D]`` tensors (in [0, 2])."""
    return (1 - F.cosine_similarity(prediction.float(), target.float(), dim=-1)).mean()


class DistillationDecoder(nn.Module):
    """Shuffled visible tokens + mask tokens, each slot with the decoder's own position
    embedding, through ``decoder_layers`` transformer layers, then a linear prediction of the
    teacher's token at every slot."""

    def __init__(self, config: VideoPrismConfig) -> None:
        super().__init__()
        self.num_frames, self.spatial_tokens = config.num_frames, config.spatial_tokens
        self.mask_token = nn.Parameter(torch.zeros(config.hidden_size))
        self.positions = nn.Parameter(torch.zeros(config.num_frames * config.spatial_tokens, config.hidden_size))
        self.layers = Encoder(config.stack(config.decoder_layers))
        self.prediction = nn.Linear(config.hidden_size, config.hidden_size)

    @staticmethod
    def shuffle(tokens: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
        """``tokens [B, T, V, D]`` flattened frame-major and reordered by ``order [B, T·V]``
        (a permutation per example) -> ``[B, T·V, D]``."""
        flat = tokens.flatten(1, 2)
        if order.shape != flat.shape[:2]:
            raise ValueError(f"shuffle order {tuple(order.shape)} must be [batch, frames x visible] = {tuple(flat.shape[:2])}")
        return flat.gather(1, order.unsqueeze(-1).expand(-1, -1, flat.shape[-1]))

    def slots(self, tokens: torch.Tensor, visible: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
        """The decoder's input ``[B, T·N, D]`` before its position embeddings: the shuffled
        tokens in the visible slots (frame-major, positions ``visible [B, V]``), the mask token in
        the others."""
        batch, length, kept, width = tokens.shape
        slot_index = (torch.arange(length, device=visible.device)[None, :, None] * self.spatial_tokens
                      + visible[:, None, :]).flatten(1)  # [B, T·V]
        out = self.mask_token.to(tokens.dtype).expand(batch, length * self.spatial_tokens, width).clone()
        return out.scatter(1, slot_index.unsqueeze(-1).expand(-1, -1, width), self.shuffle(tokens, order))

    def forward(self, tokens: torch.Tensor, visible: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
        """``tokens [B, T, V, D]`` (the student's), ``visible [B, V]``, ``order [B, T·V]`` ->
        predicted teacher tokens ``[B, T, N, D]``."""
        batch, length = tokens.shape[:2]
        hidden = self.slots(tokens, visible, order) + self.positions[: length * self.spatial_tokens]
        return self.prediction(self.layers(hidden)).view(batch, length, self.spatial_tokens, -1)
