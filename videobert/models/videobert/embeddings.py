"""Input embeddings over the unified vocabulary: text WordPiece ids and ``[>]`` share one table,
visual words another (optionally computed from their k-means leaf centroids), plus BERT's
position and token-type embeddings, LayerNorm and dropout."""

from __future__ import annotations

import torch
from torch import nn

from videobert.models.videobert.config import VideoBertConfig


class VisualWordEmbeddings(nn.Module):
    """Embeddings of the visual words, ``weight [num_visual_words, H]``.

    Either a plain table, or (``config.visual_embeddings_from_centroids``) ``projection(centroids)``:
    the visual words' leaf centroids ``[num_visual_words, visual_feature_dim]`` (a buffer, stored
    standardised) through a learned ``Linear(visual_feature_dim, H)``, so that similar-looking
    visual words start, and stay, close.
    """

    def __init__(self, config: VideoBertConfig) -> None:
        super().__init__()
        self.from_centroids = config.visual_embeddings_from_centroids
        if self.from_centroids:
            self.register_buffer("centroids", torch.zeros(config.num_visual_words, config.visual_feature_dim))
            self.projection = nn.Linear(config.visual_feature_dim, config.hidden_size)
        else:
            self.table = nn.Parameter(torch.empty(config.num_visual_words, config.hidden_size))
        if config.freeze_visual_embeddings:
            self.requires_grad_(False)

    @property
    def weight(self) -> torch.Tensor:
        if self.from_centroids:
            return self.projection(self.centroids)
        return self.table

    def lookup(self, words: torch.Tensor) -> torch.Tensor:
        """The embeddings of visual words ``words [...]`` (0-based): ``weight[words]``, projecting only
        the rows looked up (the whole table is projected once per step already, for the tied decoder)."""
        if self.from_centroids:
            return self.projection(self.centroids[words])
        return nn.functional.embedding(words, self.table)


class VideoBertEmbeddings(nn.Module):
    def __init__(self, config: VideoBertConfig) -> None:
        super().__init__()
        self.vocab = config.vocab
        # Rows [0, text_vocab_size) are BERT's WordPiece embeddings; the last row is [>].
        self.text_embeddings = nn.Embedding(config.text_vocab_size + 1, config.hidden_size, padding_idx=config.pad_token_id)
        self.visual_embeddings = VisualWordEmbeddings(config)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def check_ids(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor) -> None:
        if input_ids.dim() != 2:
            raise ValueError(f"input_ids must be [batch, length], got shape {tuple(input_ids.shape)}")
        if input_ids.shape[1] > self.position_embeddings.num_embeddings:
            raise ValueError(f"sequence length {input_ids.shape[1]} exceeds max_position_embeddings {self.position_embeddings.num_embeddings}")
        if input_ids.numel():
            low, high = int(input_ids.min()), int(input_ids.max())
            if low < 0 or high >= self.vocab.size:
                raise ValueError(f"input_ids must lie in [0, {self.vocab.size}) (unified vocabulary), got [{low}, {high}]")
        if token_type_ids.shape != input_ids.shape:
            raise ValueError(f"token_type_ids shape {tuple(token_type_ids.shape)} != input_ids shape {tuple(input_ids.shape)}")

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None,
                position_ids: torch.Tensor | None = None) -> torch.Tensor:
        """``input_ids [B, L]`` unified ids, ``token_type_ids [B, L]`` (0 text, 1 video), ``position_ids
        [B, L]`` (default 0 .. L-1 in every row; packed rows restart them per example) -> ``[B, L, H]``."""
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        self.check_ids(input_ids, token_type_ids)
        offset = self.vocab.visual_offset
        is_visual = (input_ids >= offset).unsqueeze(-1)
        # Both lookups run on every position (clamped ids); torch.where keeps the right one and
        # routes zero gradient to the other table.
        text = self.text_embeddings(input_ids.clamp(max=offset - 1))
        visual = self.visual_embeddings.lookup((input_ids - offset).clamp(min=0))
        words = torch.where(is_visual, visual, text)
        positions = torch.arange(input_ids.shape[1], device=input_ids.device) if position_ids is None else position_ids
        embeddings = words + self.position_embeddings(positions) + self.token_type_embeddings(token_type_ids)
        return self.dropout(self.norm(embeddings))
