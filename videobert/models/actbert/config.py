"""``ActBertConfig``: the sizes and options of ActBERT's three streams and its tangled transformer.

Presets: ``tiny()`` (tests), ``base()`` (the paper's BERT-base text stream: 12 text layers, the
last two tangled). Configs round-trip through JSON and are what ``config.json`` in a
``save_pretrained`` directory holds.

The tangled layers are a deliberate simplification of PaddleVideo's reference: there, the two
tangled (connection) layers come on top of all 12 BERT text layers, with text parts of their own
(``t_ent_attention_id=[10, 11]`` says which text layers feed them). Here BERT's last
``num_tangled_layers`` layers *are* the tangled layers' text parts (``from_bert`` loads them there),
so the text stream keeps BERT's depth and pretrained weights in every layer and the model has no
second, randomly initialised copy of the top text layers to train.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from videobert.utils.config import JsonConfig

MODEL_TYPE = "actbert"
OBJECTIVES = ("mlm", "action", "object", "matching")  # each logs <name>_loss and <name>_accuracy


@dataclass
class ActBertLossWeights:
    """``loss = mlm*L_mlm + action*L_mac + object*L_moc + matching*L_match``."""

    mlm: float = 1.0       # masked language modelling (with action and region cues)
    action: float = 1.0    # masked action classification
    object: float = 1.0    # masked object classification (KL to the detector's class distribution)
    matching: float = 1.0  # cross-modal matching from [CLS]


@dataclass
class ActBertConfig(JsonConfig):
    text_vocab_size: int = 30522
    num_actions: int = 400            # action vocabulary (verbs); videobert.text.actions
    num_object_classes: int = 91      # the detector's classes (torchvision's COCO: 91 with background)
    action_feature_dim: int = 1024    # one S3D feature per clip
    region_feature_dim: int = 1024    # the detector's region feature (torchvision's box head: 1024)
    hidden_size: int = 768
    # text-stream depth, as BERT's field (from_bert copies it); its last num_tangled_layers are tangled
    num_hidden_layers: int = 12
    num_tangled_layers: int = 2
    num_action_layers: int = 1        # single-stream layers before the tangled ones
    num_region_layers: int = 1
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512  # text positions
    max_clips: int = 64                 # action / region positions (a region's position is its clip's)
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    initializer_range: float = 0.02
    pad_token_id: int = 0
    loss_weights: ActBertLossWeights = field(default_factory=ActBertLossWeights)
    head_backend: str = "auto"          # videobert.ops.masked_token_loss backend of the MLM / action heads
    model_type: str = MODEL_TYPE

    def __post_init__(self) -> None:
        if isinstance(self.loss_weights, dict):
            self.loss_weights = ActBertLossWeights(**self.loss_weights)
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(f"hidden_size {self.hidden_size} is not a multiple of num_attention_heads {self.num_attention_heads}")
        if self.hidden_act != "gelu":
            raise ValueError(f"hidden_act {self.hidden_act!r} is not supported; only BERT's exact 'gelu'")
        if not 1 <= self.num_tangled_layers <= self.num_hidden_layers:
            raise ValueError(f"num_tangled_layers must lie in [1, num_hidden_layers={self.num_hidden_layers}], got {self.num_tangled_layers}")
        if self.model_type != MODEL_TYPE:
            raise ValueError(f"model_type must be {MODEL_TYPE!r}, got {self.model_type!r}")

    @property
    def num_text_layers(self) -> int:
        """Text-only layers before the tangled ones."""
        return self.num_hidden_layers - self.num_tangled_layers

    @classmethod
    def tiny(cls, **overrides: Any) -> "ActBertConfig":
        """A small model for tests (full text vocabulary unless overridden)."""
        sizes = dict(hidden_size=64, num_hidden_layers=2, num_tangled_layers=1, num_attention_heads=4, intermediate_size=128,
                     max_position_embeddings=128, max_clips=32, num_actions=16, num_object_classes=8,
                     action_feature_dim=32, region_feature_dim=16)
        return cls(**{**sizes, **overrides})

    @classmethod
    def base(cls, **overrides: Any) -> "ActBertConfig":
        return cls(**overrides)
