"""The captioner: Zhou et al. 2018's transformer encoder-decoder with its input features replaced.

The encoder reads a segment's per-clip feature vectors ``[S, D]`` (standardised per dimension
with the training set's mean and standard deviation, so that S3D features and VideoBERT outputs
of very different scales can be concatenated), projected to the hidden size, with sinusoidal
positions; the decoder predicts the caption's words one at a time (causal self-attention,
cross-attention to the encoder, output layer tied to the word embeddings). The paper's reported
settings are the defaults: 2 layers, hidden 128, dropout 0.4. Checkpoints: ``model.safetensors``
+ ``config.json`` + ``vocab.txt`` in one directory (:meth:`Captioner.save_pretrained` /
:meth:`Captioner.from_pretrained`).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from videobert.tasks.captioning.decoding import beam_search, greedy_decode
from videobert.tasks.captioning.vocabulary import CaptionVocabulary
from videobert.utils.io import write_bytes_atomic, write_json_atomic


@dataclass
class CaptionerConfig:
    input_dim: int                # width of a clip's feature vector
    vocab_size: int               # caption words, specials included
    hidden_size: int = 128
    num_layers: int = 2           # in the encoder and in the decoder
    num_heads: int = 4
    intermediate_size: int = 256   # 2 x hidden, the ratio of Zhou et al. (1024 -> 2048)
    dropout: float = 0.4
    max_caption_words: int = 30   # longest caption generated (and trained on)


def sinusoidal_positions(length: int, dim: int) -> torch.Tensor:
    """The original transformer's position encodings ``[length, dim]``."""
    position = torch.arange(length, dtype=torch.float32)[:, None]
    rate = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(length, dim)
    table[:, 0::2] = torch.sin(position * rate)
    table[:, 1::2] = torch.cos(position * rate[: dim // 2])
    return table


class Captioner(nn.Module):
    def __init__(self, config: CaptionerConfig, vocabulary: CaptionVocabulary):
        super().__init__()
        if config.vocab_size != len(vocabulary):
            raise ValueError(f"config says {config.vocab_size} caption words, the vocabulary has {len(vocabulary)}")
        self.config = config
        self.vocabulary = vocabulary
        h = config.hidden_size
        self.register_buffer("feature_mean", torch.zeros(config.input_dim))
        self.register_buffer("feature_std", torch.ones(config.input_dim))
        self.input_projection = nn.Linear(config.input_dim, h)
        self.word_embeddings = nn.Embedding(config.vocab_size, h, padding_idx=vocabulary.pad_id)
        nn.init.normal_(self.word_embeddings.weight, std=h**-0.5)  # scaled by sqrt(h) on input: unit size
        self.output_bias = nn.Parameter(torch.zeros(config.vocab_size))
        self.dropout = nn.Dropout(config.dropout)

        def layer(kind):
            return kind(h, config.num_heads, config.intermediate_size, config.dropout, batch_first=True)

        self.encoder = nn.TransformerEncoder(layer(nn.TransformerEncoderLayer), config.num_layers, enable_nested_tensor=False)
        self.decoder = nn.TransformerDecoder(layer(nn.TransformerDecoderLayer), config.num_layers)

    def set_feature_statistics(self, features: np.ndarray) -> None:
        """Standardise inputs with the mean and standard deviation of ``features [N, D]`` (all training clips)."""
        features = torch.as_tensor(np.asarray(features, dtype=np.float32))
        self.feature_mean.copy_(features.mean(dim=0))
        std = features.std(dim=0, unbiased=False)
        self.feature_std.copy_(std.masked_fill(std == 0, 1.0))  # a constant dimension stays 0 after centring

    def _positions(self, length: int, device: torch.device) -> torch.Tensor:
        return sinusoidal_positions(length, self.config.hidden_size).to(device)

    def encode(self, inputs: torch.Tensor, input_mask: torch.Tensor) -> torch.Tensor:
        """``inputs [B, S, D]``, ``input_mask [B, S]`` (True: a real clip) -> memory ``[B, S, H]``."""
        x = self.input_projection((inputs - self.feature_mean) / self.feature_std)
        x = self.dropout(x + self._positions(inputs.shape[1], inputs.device))
        return self.encoder(x, src_key_padding_mask=~input_mask)

    def logits(self, tokens: torch.Tensor, memory: torch.Tensor, input_mask: torch.Tensor) -> torch.Tensor:
        """Next-word logits ``[B, T, V]`` after each prefix of ``tokens [B, T]`` (starting with ``<bos>``)."""
        t = tokens.shape[1]
        x = self.word_embeddings(tokens) * math.sqrt(self.config.hidden_size)
        x = self.dropout(x + self._positions(t, tokens.device))
        causal = torch.ones(t, t, dtype=torch.bool, device=tokens.device).triu(diagonal=1)  # True: may not attend
        hidden = self.decoder(x, memory, tgt_mask=causal, tgt_key_padding_mask=tokens == self.vocabulary.pad_id,
                              memory_key_padding_mask=~input_mask)
        return hidden @ self.word_embeddings.weight.T + self.output_bias

    def forward(self, inputs: torch.Tensor, input_mask: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        return self.logits(tokens, self.encode(inputs, input_mask), input_mask)

    @torch.inference_mode()
    def generate(self, inputs: Sequence[np.ndarray], beam_size: int = 1, batch_size: int = 64,
                 length_penalty: float = 0.0) -> list[str]:
        """A caption for each segment's features ``[n_i, D]``: greedy for ``beam_size`` 1, else beam search
        (hypotheses ranked by log-probability / length ** ``length_penalty``)."""
        if beam_size < 1:
            raise ValueError(f"beam_size must be at least 1, got {beam_size}")
        self.eval()
        device = next(self.parameters()).device
        captions = []
        for b in range(0, len(inputs), batch_size):
            padded, mask = pad_inputs(inputs[b : b + batch_size], device)
            memory = self.encode(padded, mask)
            if beam_size == 1:
                ids = greedy_decode(self, memory, mask, self.config.max_caption_words)
            else:
                ids = beam_search(self, memory, mask, beam_size, self.config.max_caption_words, length_penalty)
            captions += [self.vocabulary.decode(row) for row in ids]
        return captions

    def save_pretrained(self, directory: str | os.PathLike) -> None:
        from safetensors.torch import save

        directory = Path(directory)
        state = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        write_bytes_atomic(directory / "model.safetensors", save(state))
        self.vocabulary.save(directory / "vocab.txt")
        write_json_atomic(directory / "config.json", {"model_type": "videobert-captioner", **dataclasses.asdict(self.config)})

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike) -> "Captioner":
        from safetensors.torch import load_file

        directory = Path(directory)
        config = json.loads((directory / "config.json").read_text(encoding="utf-8"))
        if config.pop("model_type", None) != "videobert-captioner":
            raise ValueError(f"{directory}/config.json is not a captioner's config")
        model = cls(CaptionerConfig(**config), CaptionVocabulary.load(directory / "vocab.txt"))
        model.load_state_dict(load_file(str(directory / "model.safetensors")))
        return model.eval()


def pad_inputs(inputs: Sequence[np.ndarray], device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Segments' features ``[n_i, D]`` -> zero-padded ``[B, S, D]`` float32 and mask ``[B, S]`` (True: real)."""
    if any(len(x) == 0 for x in inputs):
        raise ValueError("every segment needs at least one clip")
    length = max(len(x) for x in inputs)
    padded = torch.zeros(len(inputs), length, inputs[0].shape[1])
    mask = torch.zeros(len(inputs), length, dtype=torch.bool)
    for i, x in enumerate(inputs):
        padded[i, : len(x)] = torch.as_tensor(np.asarray(x, dtype=np.float32))
        mask[i, : len(x)] = True
    return padded.to(device), mask.to(device)
