"""Input embeddings of ActBERT's three streams.

- text: WordPiece + position + segment (BERT's, so ``from_bert`` fills them);
- action: one S3D feature per clip, projected, plus the clip's position;
- regions: a region feature projected, plus its 5-d location ``(x1/W, y1/H, x2/W, y2/H, box area /
  frame area)`` projected, plus its clip's position (each clip also has a whole-frame region).

A masked action or region enters as a learned ``[MASK]`` vector instead of its feature (a region
keeps its location), so a masked position's own input never reaches the model.

Features are L2-normalised (times sqrt(D)) before their projection: their scale is the
extractor's business (S3D with random weights gives norms near 1e-5, Kinetics weights norms in
the tens, a detector's box features others again) and would otherwise decide how much of a
stream's embedding is its content rather than its position.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from videobert.models.actbert.config import ActBertConfig

LOCATION_DIM = 5


class TextEmbeddings(nn.Module):
    def __init__(self, config: ActBertConfig) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(config.text_vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        """``input_ids [B, Lt]`` WordPiece ids, ``token_type_ids [B, Lt]`` -> ``[B, Lt, H]``."""
        if input_ids.shape[1] > self.position_embeddings.num_embeddings:
            raise ValueError(f"text length {input_ids.shape[1]} exceeds max_position_embeddings {self.position_embeddings.num_embeddings}")
        if input_ids.numel() and (int(input_ids.min()) < 0 or int(input_ids.max()) >= self.word_embeddings.num_embeddings):
            raise ValueError(f"input_ids must lie in [0, {self.word_embeddings.num_embeddings}) (WordPiece ids)")
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        embeddings = self.word_embeddings(input_ids) + self.position_embeddings(positions) + self.token_type_embeddings(token_type_ids)
        return self.dropout(self.norm(embeddings))


class ClipEmbeddings(nn.Module):
    """``projection(feature)`` (or ``[MASK]`` where masked) ``+ extra + position(clip)``, LayerNorm, dropout.

    Shared form of the action stream (no extra) and the region stream (extra = projected location)."""

    def __init__(self, config: ActBertConfig, feature_dim: int, with_location: bool) -> None:
        super().__init__()
        self.feature_dim = feature_dim
        self.projection = nn.Linear(feature_dim, config.hidden_size)
        self.location = nn.Linear(LOCATION_DIM, config.hidden_size) if with_location else None
        self.mask_embedding = nn.Parameter(torch.zeros(config.hidden_size))
        self.position_embeddings = nn.Embedding(config.max_clips, config.hidden_size)
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, features: torch.Tensor, clip_index: torch.Tensor, masked: torch.Tensor | None = None,
                locations: torch.Tensor | None = None) -> torch.Tensor:
        """``features [B, L, D]``, ``clip_index [B, L]`` int64 (position), ``masked [B, L]`` (nonzero: use
        ``[MASK]``), ``locations [B, L, 5]`` (region stream only) -> ``[B, L, H]``."""
        if features.dim() != 3 or features.shape[-1] != self.feature_dim:
            raise ValueError(f"features must be [batch, length, {self.feature_dim}], got {tuple(features.shape)}")
        if clip_index.numel() and int(clip_index.max()) >= self.position_embeddings.num_embeddings:
            raise ValueError(f"clip index {int(clip_index.max())} exceeds max_clips {self.position_embeddings.num_embeddings}")
        embeddings = self.projection(F.normalize(features, dim=-1) * self.feature_dim**0.5)
        if masked is None:  # still through torch.where: [MASK] gets a (zero) gradient on every batch, as ZeRO needs
            masked = torch.zeros(features.shape[:2], dtype=torch.bool, device=features.device)
        embeddings = torch.where(masked.bool().unsqueeze(-1), self.mask_embedding.to(embeddings.dtype), embeddings)
        if self.location is not None:
            if locations is None or locations.shape != (*features.shape[:2], LOCATION_DIM):
                raise ValueError(f"regions need locations [batch, length, {LOCATION_DIM}], got "
                                 f"{None if locations is None else tuple(locations.shape)}")
            embeddings = embeddings + self.location(locations)
        embeddings = embeddings + self.position_embeddings(clip_index)
        return self.dropout(self.norm(embeddings))
