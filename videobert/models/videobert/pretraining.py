"""``VideoBertForPretraining``: the joint video-text BERT with its three pretraining objectives.

    input_ids ──embeddings──▶ encoder ──▶ hidden [B, L, H] ──┬─ mlm_head   (masked text tokens, fused loss)
                                                             ├─ mvm_head   (masked visual words, fused loss)
                                                             └─ alignment_head ([CLS]: text and video aligned?)
"""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from videobert.models.videobert.config import VideoBertConfig
from videobert.models.videobert.embeddings import VideoBertEmbeddings, VisualWordEmbeddings
from videobert.models.transformer import Encoder, init_bert_module
from videobert.models.videobert.heads import AlignmentHead, MaskedTokenHead
from videobert.ops.masked_token_loss import MaskedTokenLoss
from videobert.vocab import STREAM_NAMES


class VideoBertForPretraining(nn.Module):
    def __init__(self, config: VideoBertConfig) -> None:
        super().__init__()
        self.config = config
        self.embeddings = VideoBertEmbeddings(config)
        self.encoder = Encoder(config)
        tied = config.tie_word_embeddings
        self.mlm_head = MaskedTokenHead(config, config.text_vocab_size, tied)
        self.mvm_head = MaskedTokenHead(config, config.num_visual_words, tied)
        self.alignment_head = AlignmentHead(config)
        self.apply(self._init_weights)

    def _init_weights(self, module: nn.Module) -> None:
        """BERT's initialisation: normal(0, initializer_range) weights, zero biases, unit LayerNorms."""
        std = self.config.initializer_range
        if init_bert_module(module, std):
            return
        if isinstance(module, VisualWordEmbeddings) and not module.from_centroids:
            nn.init.normal_(module.table, std=std)
        elif isinstance(module, MaskedTokenHead) and module.decoder is not None:
            nn.init.normal_(module.decoder, std=std)

    # ----- encoder -----
    def encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
               token_type_ids: torch.Tensor | None = None, position_ids: torch.Tensor | None = None,
               example_index: torch.Tensor | None = None) -> torch.Tensor:
        """Last hidden states ``[B, L, H]`` of ``input_ids [B, L]`` (unified ids), ``attention_mask [B, L]``
        (1 real, 0 padding; default all real), ``token_type_ids [B, L]`` (0 text, 1 video; default 0).
        Rows packed with several sequences (``videobert.corpus.packing``) also give ``position_ids``
        and ``example_index``."""
        if (position_ids is None) != (example_index is None):
            raise ValueError("packed rows need both position_ids and example_index (videobert.corpus.packing); padded rows neither")
        return self.encoder(self.embeddings(input_ids, token_type_ids, position_ids), attention_mask, example_index)

    # ----- heads -----
    def _tied(self, head: MaskedTokenHead) -> torch.Tensor | None:
        if not self.config.tie_word_embeddings:
            return None
        if head is self.mlm_head:
            return self.embeddings.text_embeddings.weight[: self.config.text_vocab_size]
        return self.embeddings.visual_embeddings.weight

    def text_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """``[..., H] -> [..., text_vocab_size]``: masked-language-model logits over WordPiece ids."""
        return self.mlm_head.logits(hidden, self._tied(self.mlm_head))

    def visual_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """``[..., H] -> [..., num_visual_words]``: logits over visual words (0-based, not unified ids)."""
        return self.mvm_head.logits(hidden, self._tied(self.mvm_head))

    def alignment_logits(self, hidden: torch.Tensor, starts: torch.Tensor | None = None) -> torch.Tensor:
        """``[B, L, H] -> [B]``: logit that the text and the video of each sequence are aligned (from
        its ``[CLS]``, position 0 of each row; in packed rows the flat positions ``starts``, see
        ``sequence_starts``)."""
        return self.alignment_head(hidden[:, 0] if starts is None else hidden.reshape(-1, hidden.shape[-1])[starts])

    # ----- pretraining objectives -----
    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, token_type_ids: torch.Tensor | None = None,
        mlm_labels: torch.Tensor | None = None, mvm_labels: torch.Tensor | None = None,
        alignment_labels: torch.Tensor | None = None, stream: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None, example_index: torch.Tensor | None = None, **_other: Any,
    ) -> dict[str, torch.Tensor]:
        """Losses and accuracies of a collated batch (keys as in docs/ARCHITECTURE.md; other keys are
        ignored), padded or packed (``position_ids`` and ``example_index`` given).

        Returns ``loss`` (``loss_weights``-weighted sum), ``mlm_loss`` / ``mvm_loss`` / ``alignment_loss``
        (means over the masked / labelled rows) and ``mlm_accuracy/<stream>``, ``mvm_accuracy/<stream>``,
        ``alignment_accuracy`` (stream names from ``vocab.STREAM_NAMES``; ``/all`` without ``stream``).
        An objective without labels in the batch is omitted from the dict; its head still adds a 0 to
        ``loss`` so that every parameter gets a gradient on every rank (ZeRO needs that).
        """
        hidden = self.encode(input_ids, attention_mask, token_type_ids, position_ids, example_index)
        starts = None if example_index is None else sequence_starts(example_index, position_ids)
        if example_index is None:  # the example each flat position belongs to
            example_index = torch.arange(input_ids.shape[0], device=input_ids.device)[:, None].expand_as(input_ids)
        weights = self.config.loss_weights
        out: dict[str, torch.Tensor] = {}
        total = hidden.new_zeros((), dtype=torch.float32)
        for name, head, labels, weight in (("mlm", self.mlm_head, mlm_labels, weights.mlm),
                                           ("mvm", self.mvm_head, mvm_labels, weights.mvm)):
            if labels is None:
                continue
            result = head.loss(hidden, labels, self._tied(head))
            total = total + weight * result.loss
            if result.rows.numel():
                out[f"{name}_loss"] = result.loss
                out.update(self._accuracies(name, result, labels, stream, example_index))
        if alignment_labels is not None:
            logits = self.alignment_logits(hidden, starts).float()
            labelled = alignment_labels != -100
            targets = alignment_labels[labelled].float()
            count = int(labelled.sum())
            loss = F.binary_cross_entropy_with_logits(logits[labelled], targets, reduction="sum") / max(count, 1)
            total = total + weights.alignment * loss
            if count:
                out["alignment_loss"] = loss
                out["alignment_accuracy"] = ((logits[labelled] > 0).float() == targets).float().mean().detach()
        out["loss"] = total
        return out

    @staticmethod
    def _accuracies(name: str, result: MaskedTokenLoss, labels: torch.Tensor, stream: torch.Tensor | None,
                    example_index: torch.Tensor) -> dict[str, torch.Tensor]:
        correct = (result.predictions == labels.reshape(-1)[result.rows]).float().detach()
        if stream is None:
            return {f"{name}_accuracy/all": correct.mean()}
        row_stream = stream[example_index.reshape(-1)[result.rows]]
        out = {}
        for index, stream_name in enumerate(STREAM_NAMES):
            selected = row_stream == index
            if bool(selected.any()):
                out[f"{name}_accuracy/{stream_name}"] = correct[selected].mean()
        return out

    # ----- visual-word embeddings -----
    @torch.no_grad()
    def init_visual_embeddings(self, leaf_centroids: torch.Tensor, freeze: bool = False, seed: int = 0) -> None:
        """Visual-word embeddings from the visual words' leaf centroids ``[num_visual_words, D]`` (S3D space).

        ``config.visual_projection == "learned"``: the model keeps the (standardised) centroids and learns
        a ``Linear(D, H)`` on them; ``"fixed"``: a seeded random orthonormal projection is applied once and
        the result becomes the embedding table. Either way the initial embeddings have the spread of the
        text embeddings. ``freeze`` stops their training (and the tied MVM decoder's). Call before building
        the optimizer: the visual embedding parameters are replaced.
        """
        centroids = torch.as_tensor(leaf_centroids, dtype=torch.float32)
        if centroids.dim() != 2 or centroids.shape[0] != self.config.num_visual_words:
            raise ValueError(f"leaf_centroids must be [num_visual_words={self.config.num_visual_words}, D], got {tuple(centroids.shape)}")
        device = self.embeddings.text_embeddings.weight.device
        target_std = float(self.embeddings.text_embeddings.weight.float().std())
        standardised = (centroids - centroids.mean(0)) / centroids.std().clamp_min(1e-12)
        config = self.config
        config.visual_feature_dim = centroids.shape[1]
        config.freeze_visual_embeddings = freeze
        config.visual_embeddings_from_centroids = config.visual_projection == "learned"
        module = VisualWordEmbeddings(config).to(device)
        generator = torch.Generator().manual_seed(seed)
        if module.from_centroids:
            module.centroids.copy_(standardised)
            nn.init.normal_(module.projection.weight, std=target_std / centroids.shape[1] ** 0.5, generator=generator)
            nn.init.zeros_(module.projection.bias)
        else:
            dim, hidden = centroids.shape[1], config.hidden_size
            basis, _ = torch.linalg.qr(torch.randn(max(dim, hidden), min(dim, hidden), generator=generator))
            projection = basis if dim >= hidden else basis.t()  # [D, H], orthonormal columns or rows
            table = standardised @ projection
            module.table.copy_(table * (target_std / table.std().clamp_min(1e-12)))
        module.requires_grad_(not freeze)
        self.embeddings.visual_embeddings = module

    # ----- files -----
    def save_pretrained(self, directory: str | os.PathLike) -> None:
        """Write ``config.json`` and ``model.safetensors`` into ``directory`` (atomically, file by file)."""
        from videobert.models.videobert.io import save_pretrained
        save_pretrained(self, directory)

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike, **overrides: Any) -> "VideoBertForPretraining":
        """A model saved by ``save_pretrained``, or (delegating to ``from_bert``) a Hugging Face BERT directory."""
        from videobert.models.videobert.io import load_pretrained
        return load_pretrained(cls, directory, **overrides)

    @classmethod
    def from_bert(cls, directory: str | os.PathLike, **overrides: Any) -> "VideoBertForPretraining":
        """Initialise from a Hugging Face BERT checkpoint (``config.json`` + ``model.safetensors`` or
        ``pytorch_model.bin``). ``overrides`` set other config fields (e.g. ``num_visual_words=144``)."""
        from videobert.models.videobert.io import load_bert
        return load_bert(cls, directory, **overrides)


def sequence_starts(example_index: torch.Tensor, position_ids: torch.Tensor) -> torch.Tensor:
    """Flat positions of each sequence's first token (its ``[CLS]``) in packed rows, in sequence order."""
    flat = example_index.reshape(-1)
    starts = torch.nonzero((position_ids.reshape(-1) == 0) & (flat >= 0)).squeeze(1)
    return starts[torch.argsort(flat[starts])]
