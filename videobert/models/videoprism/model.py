"""``VideoPrismForPretraining``: the video encoder, its pooler and the text tower, trained in two
stages (``config.stage``):

1. video-text contrastive (``videobert.models.videoprism.contrastive``): everything trains;
2. masked video modelling with distillation (``videobert.models.videoprism.distillation``) on
   video-only clips: the encoder, pooler and decoder train; the text tower and the temperature
   are frozen (they keep reading the stage-1 space the global distillation holds the pooled
   embedding in). The teacher, a frozen stage-1 model, is attached with ``set_teacher``: it is no
   submodule, so its weights are neither parameters (no optimizer, no gradient) nor in
   ``state_dict`` / ``save_pretrained``; device and dtype moves (``.to``) carry it along;
3. text alignment (LiT-style, the released ``videoprism_lvt_*`` models): stage 1's contrastive
   objective with the video encoder frozen (no gradient, kept in eval mode); the pooler, the text
   tower and the temperature train.
"""

from __future__ import annotations

import contextlib
import math
import os
from typing import Any

import torch
from torch import nn

from videobert.models.videoprism.config import ALIGNMENT_SETTINGS, DISTILLATION_SETTINGS, VideoPrismConfig
from videobert.models.videoprism.contrastive import contrastive_loss
from videobert.models.videoprism.distillation import DistillationDecoder, cosine_distance
from videobert.models.videoprism.encoder import AttentionPooler, FactorisedVideoEncoder
from videobert.models.transformer import init_bert_module
from videobert.models.videoprism.text import TextTower


class VideoPrismForPretraining(nn.Module):
    def __init__(self, config: VideoPrismConfig) -> None:
        super().__init__()
        self.config = config
        self.video = FactorisedVideoEncoder(config)
        self.pooler = AttentionPooler(config)
        self.text = TextTower(config.text, config.hidden_size)
        # shape [1], not a scalar: DeepSpeed broadcasts parameters as byte views, which a 0-d tensor has none of
        self.log_logit_scale = nn.Parameter(torch.full((1,), math.log(1 / config.init_temperature)))
        self.decoder = DistillationDecoder(config) if config.stage == 2 else None
        self.apply(self._init_weights)
        if config.stage == 2:
            self.text.requires_grad_(False)
            self.log_logit_scale.requires_grad_(False)
        if config.stage == 3:
            self.video.requires_grad_(False)
            self.video.eval()
        self._teacher: VideoPrismForPretraining | None = None

    def train(self, mode: bool = True) -> "VideoPrismForPretraining":
        """As ``nn.Module.train``, except that a stage-3 model's frozen video encoder stays in eval
        mode (dropouts off: it computes the features the released encoder would)."""
        super().train(mode)
        if self.config.stage == 3:
            self.video.eval()
        return self

    def _init_weights(self, module: nn.Module) -> None:
        """ViT / BERT initialisation: normal(0, initializer_range) weights and position tables,
        zero biases, unit LayerNorms."""
        std = self.config.initializer_range
        if init_bert_module(module, std):
            return
        if isinstance(module, FactorisedVideoEncoder):
            nn.init.normal_(module.spatial_positions, std=std)
            nn.init.normal_(module.temporal_positions, std=std)
        elif isinstance(module, AttentionPooler):
            nn.init.normal_(module.query, std=std)
        elif isinstance(module, DistillationDecoder):
            nn.init.normal_(module.positions, std=std)
            nn.init.normal_(module.mask_token, std=std)

    # ----- the teacher (stage 2) -----
    @property
    def teacher(self) -> "VideoPrismForPretraining | None":
        return self._teacher

    def set_teacher(self, teacher: "VideoPrismForPretraining") -> None:
        """Attach the stage-1 ``teacher`` whose tokens and pooled embedding stage 2 distils. The
        caller's ``teacher`` itself is changed: frozen (``requires_grad_(False)``), put in eval mode
        and moved to this model's device."""
        if self.config.stage != 2:
            raise ValueError("only a stage-2 model takes a teacher")
        mine, theirs = self.config, teacher.config
        for name in ("image_size", "patch_size", "num_frames", "hidden_size"):
            if getattr(mine, name) != getattr(theirs, name):
                raise ValueError(f"teacher's {name} {getattr(theirs, name)} differs from the student's {getattr(mine, name)}")
        teacher.requires_grad_(False)
        teacher.eval()
        device = self.log_logit_scale.device
        object.__setattr__(self, "_teacher", teacher.to(device))  # not a submodule: not a parameter, not saved

    def _apply(self, fn: Any, recurse: bool = True) -> "VideoPrismForPretraining":
        super()._apply(fn, recurse)
        if self._teacher is not None:
            self._teacher._apply(fn, recurse)
        return self

    @classmethod
    def for_distillation(cls, teacher: "VideoPrismForPretraining", **settings: Any) -> "VideoPrismForPretraining":
        """A stage-2 model started from ``teacher``'s weights (its decoder fresh), ``teacher``
        attached; ``settings`` override the stage-2 fields ``DISTILLATION_SETTINGS`` names, and only
        them (any other field would change a size the teacher's weights have)."""
        model = cls._next_stage(teacher, 2, DISTILLATION_SETTINGS, settings, "for_distillation")
        model.set_teacher(teacher)
        return model

    @classmethod
    def for_text_alignment(cls, start: "VideoPrismForPretraining", **settings: Any) -> "VideoPrismForPretraining":
        """A stage-3 model with ``start``'s weights (normally a stage-2 model; its decoder is left
        behind): the video encoder frozen, the pooler, text tower and temperature to train;
        ``settings`` may set only ``ALIGNMENT_SETTINGS``."""
        if start.config.stage == 3:
            raise ValueError("for_text_alignment starts from a stage-1 or stage-2 model, not a stage-3 one")
        return cls._next_stage(start, 3, ALIGNMENT_SETTINGS, settings, "for_text_alignment")

    @classmethod
    def _next_stage(cls, start: "VideoPrismForPretraining", stage: int, allowed: tuple[str, ...],
                    settings: dict[str, Any], caller: str) -> "VideoPrismForPretraining":
        """A stage-``stage`` model of ``start``'s sizes and weights; weights one of the two models
        has and the other has not may only be a decoder's (the distillation decoder is stage 2's)."""
        other = sorted(set(settings) - set(allowed))
        if other:
            raise ValueError(f"{caller}: {', '.join(other)} cannot change from the start model's (stage-{stage} settings, "
                             f"e.g. a stage-{stage} run's model.overrides, may be only: {', '.join(allowed)})")
        model = cls(start.config.replace(stage=stage, **settings))
        missing, unexpected = model.load_state_dict(start.state_dict(), strict=False)
        if any(not key.startswith("decoder.") for key in [*missing, *unexpected]):
            raise ValueError(f"the start model's weights do not fit a stage-{stage} model: missing {missing}, "
                             f"unexpected {unexpected}")
        return model

    # ----- encoders -----
    def _autocast(self, device: torch.device) -> contextlib.AbstractContextManager:
        if self.config.autocast == "bf16" and device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    @property
    def logit_scale(self) -> torch.Tensor:
        """1 / temperature (a scalar tensor), at most ``config.max_logit_scale``. Stage-1 ``forward``
        first clamps the parameter itself, so in training this clamp passes the gradient; here it
        bounds a saved value that an optimizer step pushed past the bound."""
        return self.log_logit_scale[0].clamp(max=math.log(self.config.max_logit_scale)).exp()

    def encode_video(self, frames: torch.Tensor, visible: torch.Tensor | None = None) -> torch.Tensor:
        """``frames [B, T, S, S, 3]`` uint8 -> space-time tokens ``[B, T, V, D]`` (float32)."""
        with self._autocast(frames.device):
            return self.video(frames, visible).float()

    def pool(self, tokens: torch.Tensor) -> torch.Tensor:
        """Tokens ``[B, T, V, D]`` -> the video embedding ``[B, D]`` (not normalised)."""
        with self._autocast(tokens.device):
            return self.pooler(tokens.flatten(1, 2)).float()

    def embed_video(self, frames: torch.Tensor) -> torch.Tensor:
        """``frames [B, T, S, S, 3]`` uint8 -> video embeddings ``[B, D]`` (not normalised)."""
        return self.pool(self.encode_video(frames))

    def embed_text(self, text_ids: torch.Tensor, text_mask: torch.Tensor) -> torch.Tensor:
        """``text_ids [B, L]`` (``[CLS] text [SEP]``), ``text_mask [B, L]`` -> ``[B, D]`` (not normalised)."""
        with self._autocast(text_ids.device):
            return self.text(text_ids, text_mask).float()

    # ----- objectives -----
    def forward(self, frames: torch.Tensor, text_ids: torch.Tensor | None = None, text_mask: torch.Tensor | None = None,
                text_keys: torch.Tensor | None = None, visible: torch.Tensor | None = None,
                shuffle: torch.Tensor | None = None, **_other: Any) -> dict[str, torch.Tensor]:
        """Stages 1 and 3: ``frames``, ``text_ids``, ``text_mask`` (``text_keys``) -> ``loss``,
        ``contrastive_loss``, ``contrastive_accuracy``, ``temperature``. Stage 2: ``frames``,
        ``visible [B, V]``, ``shuffle [B, T·V]`` -> ``loss``, ``token_loss``, ``global_loss``.
        Other batch keys (``attention_mask``) are ignored."""
        if self.config.contrastive:
            if text_ids is None or text_mask is None:
                raise ValueError(f"a stage-{self.config.stage} batch needs text_ids and text_mask beside frames")
            # bound the parameter, not just its use (CLIP's way): past a clamp of the output its gradient
            # is zero, and Adam's momentum can leave it there for good (under ZeRO the optimizer's master
            # copy may still pass the bound, but it keeps getting the gradient and can come back)
            with torch.no_grad():
                self.log_logit_scale.clamp_(max=math.log(self.config.max_logit_scale))
            loss, accuracy = contrastive_loss(self.embed_video(frames), self.embed_text(text_ids, text_mask),
                                              self.logit_scale, text_keys)
            return {"loss": loss, "contrastive_loss": loss.detach(), "contrastive_accuracy": accuracy,
                    "temperature": (1 / self.logit_scale).detach()}
        if visible is None or shuffle is None:
            raise ValueError("a stage-2 batch needs visible (tube mask) and shuffle (token order) beside frames")
        if self._teacher is None:
            raise RuntimeError("a stage-2 model trains against a teacher: set_teacher(stage-1 model) first")
        with torch.no_grad():
            target_tokens = self._teacher.encode_video(frames)
            target_global = self._teacher.pool(target_tokens)
        tokens = self.encode_video(frames, visible)
        with self._autocast(frames.device):
            predicted = self.decoder(tokens, visible, shuffle).float()
        token_loss = cosine_distance(predicted, target_tokens)
        global_loss = cosine_distance(self.pool(tokens), target_global)
        loss = self.config.token_loss_weight * token_loss + self.config.global_loss_weight * global_loss
        return {"loss": loss, "token_loss": token_loss.detach(), "global_loss": global_loss.detach()}

    # ----- files -----
    def save_pretrained(self, directory: str | os.PathLike) -> None:
        """Write ``config.json`` and ``model.safetensors`` (never the teacher's weights)."""
        from videobert.models.videoprism.io import save_pretrained
        save_pretrained(self, directory)

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike, **overrides: Any) -> "VideoPrismForPretraining":
        from videobert.models.videoprism.io import load_pretrained
        return load_pretrained(cls, directory, **overrides)

    @classmethod
    def from_bert(cls, directory: str | os.PathLike, config: VideoPrismConfig | None = None) -> "VideoPrismForPretraining":
        """A stage-1 model whose text tower is the Hugging Face BERT in ``directory`` (sizes from its
        ``config.json``), the video side as ``config`` (default ``tiny()``) says, freshly initialised."""
        from videobert.models.videoprism.io import load_bert_text
        return load_bert_text(cls, directory, config)
