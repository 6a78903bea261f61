"""``ActBertForPretraining``: three streams, the tangled transformer, four objectives.

    text ids ──TextEmbeddings──▶ text layers ───┐
    S3D / clip ──ClipEmbeddings──▶ action layers ─┼─▶ tangled layers ─▶ text [B, Lt, H] ─┬─ mlm_head (masked words)
    regions ──ClipEmbeddings──▶ region layers ───┘                     action [B, La, H] ├─ action_head (masked actions)
                                                                       region [B, Lr, H] ├─ object_head (masked regions, KL)
                                                                                         └─ matching_head ([CLS])

The batch (``videobert.models.actbert.data.ActBertCollator``): ``attention_mask [B, Lt + La + Lr]``
is the three streams' masks side by side (its sum is the step's token count), split by the widths
of ``input_ids``, ``action_features`` and ``region_features``.
"""

from __future__ import annotations

import os
from types import SimpleNamespace
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from videobert.models.actbert.config import ActBertConfig
from videobert.models.actbert.embeddings import ClipEmbeddings, TextEmbeddings
from videobert.models.actbert.heads import ObjectHead
from videobert.models.actbert.tangled import TangledLayer, key_mask
from videobert.models.transformer import Encoder, init_bert_module
from videobert.models.videobert.heads import AlignmentHead, MaskedTokenHead

IGNORE = -100


class StreamStates(SimpleNamespace):
    """The last hidden states of the three streams: ``text [B, Lt, H]``, ``action [B, La, H]``,
    ``region [B, Lr, H]``."""

    text: torch.Tensor
    action: torch.Tensor
    region: torch.Tensor


def _sizes(config: ActBertConfig, layers: int) -> SimpleNamespace:
    """The encoder sizes of ``config`` with another depth (each stream has its own)."""
    fields = ("hidden_size", "num_attention_heads", "intermediate_size", "hidden_dropout_prob",
              "attention_probs_dropout_prob", "layer_norm_eps")
    return SimpleNamespace(**{f: getattr(config, f) for f in fields}, num_hidden_layers=layers)


class ActBertForPretraining(nn.Module):
    def __init__(self, config: ActBertConfig) -> None:
        super().__init__()
        self.config = config
        self.text_embeddings = TextEmbeddings(config)
        self.action_embeddings = ClipEmbeddings(config, config.action_feature_dim, with_location=False)
        self.region_embeddings = ClipEmbeddings(config, config.region_feature_dim, with_location=True)
        self.text_encoder = Encoder(_sizes(config, config.num_text_layers))
        self.action_encoder = Encoder(_sizes(config, config.num_action_layers))
        self.region_encoder = Encoder(_sizes(config, config.num_region_layers))
        self.tangled = nn.ModuleList(TangledLayer(config) for _ in range(config.num_tangled_layers))
        self.mlm_head = MaskedTokenHead(config, config.text_vocab_size, tied=True)
        self.action_head = MaskedTokenHead(config, config.num_actions, tied=False)
        self.object_head = ObjectHead(config)
        self.matching_head = AlignmentHead(config)
        self.apply(self._init_weights)

    def _init_weights(self, module: nn.Module) -> None:
        """BERT's initialisation: normal(0, initializer_range) weights, zero biases, unit LayerNorms."""
        std = self.config.initializer_range
        if init_bert_module(module, std):
            return
        if isinstance(module, ClipEmbeddings):
            nn.init.normal_(module.mask_embedding, std=std)
        elif isinstance(module, MaskedTokenHead) and module.decoder is not None:
            nn.init.normal_(module.decoder, std=std)

    # ----- encoder -----
    def encode(self, input_ids: torch.Tensor, action_features: torch.Tensor, region_features: torch.Tensor,
               region_locations: torch.Tensor, region_clips: torch.Tensor, attention_mask: torch.Tensor | None = None,
               token_type_ids: torch.Tensor | None = None, action_masked: torch.Tensor | None = None,
               region_masked: torch.Tensor | None = None) -> StreamStates:
        """The three streams' last hidden states.

        ``input_ids [B, Lt]`` WordPiece ids (``[CLS] text [SEP]``), ``action_features [B, La, Da]``
        (one per clip, clip ``j`` at position ``j``), ``region_features [B, Lr, Dr]`` with
        ``region_locations [B, Lr, 5]`` and ``region_clips [B, Lr]`` (each region's clip),
        ``attention_mask [B, Lt + La + Lr]`` (1 real, 0 padding; default all real), ``action_masked``
        / ``region_masked [B, La|Lr]`` (nonzero: the position reads ``[MASK]``). Each row needs at
        least one real action and one real region."""
        batch, lt, la, lr = input_ids.shape[0], input_ids.shape[1], action_features.shape[1], region_features.shape[1]
        if attention_mask is not None and attention_mask.shape != (batch, lt + la + lr):
            raise ValueError(f"attention_mask must be [batch, text + actions + regions] = {(batch, lt + la + lr)}, "
                             f"got {tuple(attention_mask.shape)}")
        masks = (None, None, None) if attention_mask is None else attention_mask.split([lt, la, lr], dim=1)
        action_clips = torch.arange(la, device=input_ids.device).expand(batch, la)
        text = self.text_encoder(self.text_embeddings(input_ids, token_type_ids), masks[0])
        action = self.action_encoder(self.action_embeddings(action_features, action_clips, action_masked), masks[1])
        region = self.region_encoder(self.region_embeddings(region_features, region_clips, region_masked, region_locations), masks[2])
        device = input_ids.device
        text_keys, action_keys, region_keys = (key_mask(m, batch, n, device) for m, n in zip(masks, (lt, la, lr)))
        for layer in self.tangled:
            text, action, region = layer(text, action, region, text_keys, action_keys, region_keys)
        return StreamStates(text=text, action=action, region=region)

    # ----- heads -----
    def _tied(self) -> torch.Tensor:
        return self.text_embeddings.word_embeddings.weight

    def text_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """``[..., H] -> [..., text_vocab_size]``: masked-word logits (for inference and tasks)."""
        return self.mlm_head.logits(hidden, self._tied())

    def action_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """``[..., H] -> [..., num_actions]``."""
        return self.action_head.logits(hidden)

    def object_log_probs(self, hidden: torch.Tensor) -> torch.Tensor:
        """``[..., H] -> [..., num_object_classes]`` float32 log-probabilities."""
        return self.object_head(hidden)

    def matching_logits(self, text_hidden: torch.Tensor) -> torch.Tensor:
        """``[B, Lt, H] -> [B]``: logit that text and video match (from the text stream's ``[CLS]``)."""
        return self.matching_head(text_hidden[:, 0])

    # ----- pretraining objectives -----
    def forward(self, input_ids: torch.Tensor, action_features: torch.Tensor, region_features: torch.Tensor,
                region_locations: torch.Tensor, region_clips: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None, action_masked: torch.Tensor | None = None,
                region_masked: torch.Tensor | None = None, mlm_labels: torch.Tensor | None = None,
                action_labels: torch.Tensor | None = None, region_targets: torch.Tensor | None = None,
                region_labelled: torch.Tensor | None = None, matching_labels: torch.Tensor | None = None,
                **unknown: Any) -> dict[str, torch.Tensor]:
        """Losses and accuracies of a collated batch.

        ``mlm_labels [B, Lt]`` / ``action_labels [B, La]`` (class at masked positions, else -100),
        ``region_targets [B, Lr, C]`` (the detector's class distribution) where ``region_labelled
        [B, Lr]``, ``matching_labels [B]`` (1 matched, 0 not, -100 none). Returns ``loss`` (the
        ``loss_weights``-weighted sum) and ``mlm_loss``, ``action_loss``, ``object_loss``,
        ``matching_loss`` with ``*_accuracy`` where the batch has labels; an objective without labels
        adds a 0 from its head so every parameter gets a gradient on every rank (ZeRO needs that).
        Any other key is refused (``ValueError``): a misspelt label key would silently drop its loss."""
        if unknown:
            raise ValueError(f"ActBertForPretraining.forward got unknown batch keys {sorted(unknown)}; it reads the keys "
                             f"of videobert.models.actbert.data.ActBertCollator's batches")
        states = self.encode(input_ids, action_features, region_features, region_locations, region_clips,
                             attention_mask, token_type_ids, action_masked, region_masked)
        weights = self.config.loss_weights
        out: dict[str, torch.Tensor] = {}
        total = states.text.new_zeros((), dtype=torch.float32)
        for name, head, hidden, labels, tied, weight in (
                ("mlm", self.mlm_head, states.text, mlm_labels, self._tied(), weights.mlm),
                ("action", self.action_head, states.action, action_labels, None, weights.action)):
            if labels is None:
                labels = torch.full(hidden.shape[:2], IGNORE, dtype=torch.long, device=hidden.device)
            result = head.loss(hidden, labels, tied)
            total = total + weight * result.loss
            if result.rows.numel():
                out[f"{name}_loss"] = result.loss
                out[f"{name}_accuracy"] = (result.predictions == labels.reshape(-1)[result.rows]).float().mean().detach()
        total = total + weights.object * self._object_loss(states.region, region_targets, region_labelled, out)
        total = total + weights.matching * self._matching_loss(states.text, matching_labels, out)
        out["loss"] = total
        return out

    def _object_loss(self, hidden: torch.Tensor, targets: torch.Tensor | None, labelled: torch.Tensor | None,
                     out: dict[str, torch.Tensor]) -> torch.Tensor:
        """Mean over labelled regions of ``KL(target || softmax(logits))``."""
        if targets is None or labelled is None or not bool(labelled.any()):
            return 0.0 * self.object_head(hidden[:, :1]).sum()
        log_probs = self.object_head(hidden[labelled.bool()])
        target = targets[labelled.bool()].float()
        loss = F.kl_div(log_probs, target, reduction="sum") / target.shape[0]
        out["object_loss"] = loss
        out["object_accuracy"] = (log_probs.argmax(-1) == target.argmax(-1)).float().mean().detach()
        return loss

    def _matching_loss(self, text: torch.Tensor, labels: torch.Tensor | None, out: dict[str, torch.Tensor]) -> torch.Tensor:
        logits = self.matching_logits(text).float()
        if labels is None or not bool((labels != IGNORE).any()):
            return 0.0 * logits.sum()
        labelled = labels != IGNORE
        targets = labels[labelled].float()
        loss = F.binary_cross_entropy_with_logits(logits[labelled], targets)
        out["matching_loss"] = loss
        out["matching_accuracy"] = ((logits[labelled] > 0).float() == targets).float().mean().detach()
        return loss

    # ----- files -----
    def save_pretrained(self, directory: str | os.PathLike) -> None:
        """Write ``config.json`` and ``model.safetensors`` into ``directory`` (atomically, file by file)."""
        from videobert.models.videobert.io import save_pretrained
        save_pretrained(self, directory)

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike, **overrides: Any) -> "ActBertForPretraining":
        from videobert.models.actbert.io import load_pretrained
        return load_pretrained(cls, directory, **overrides)

    @classmethod
    def from_bert(cls, directory: str | os.PathLike, **overrides: Any) -> "ActBertForPretraining":
        """The text stream (embeddings, layers, MLM head, pooler + NSP as matching head) from a
        Hugging Face BERT checkpoint; the action and region streams and tangled cross-stream
        projections start random. ``overrides`` set other config fields."""
        from videobert.models.actbert.io import load_bert
        return load_bert(cls, directory, **overrides)
