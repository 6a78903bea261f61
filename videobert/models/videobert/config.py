"""``VideoBertConfig``: the sizes and options of the joint video-text BERT.

Presets: ``tiny()`` (tests), ``base()`` (BERT-base), ``large()`` (BERT-large, the paper's choice).
Configs round-trip through JSON (``to_json`` / ``from_json``) and are what ``config.json`` in a
``save_pretrained`` directory holds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from videobert.utils.config import JsonConfig
from videobert.vocab import UnifiedVocab

MODEL_TYPE = "videobert"


@dataclass
class LossWeights:
    """Weights of the objectives in the total loss: ``loss = mlm*L_mlm + mvm*L_mvm + alignment*L_align``."""

    mlm: float = 1.0
    mvm: float = 1.0
    alignment: float = 1.0


@dataclass
class VideoBertConfig(JsonConfig):
    text_vocab_size: int = 30522
    num_visual_words: int = 12**4
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"  # exact (erf) GELU, as BERT; the only activation the fused head implements
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    initializer_range: float = 0.02
    pad_token_id: int = 0
    # Visual-word embeddings from the visual words' leaf centroids (S3D feature space, this many dims).
    visual_feature_dim: int = 1024
    # "learned": embedding = Linear(centroid) trained end to end; "fixed": a fixed projection is
    # applied once by init_visual_embeddings and the result is an ordinary embedding table.
    visual_projection: str = "learned"
    # Set by init_visual_embeddings: the model holds the centroids and a learned projection.
    visual_embeddings_from_centroids: bool = False
    freeze_visual_embeddings: bool = False
    # The MLM / MVM decoders share their weights with the text / visual input embeddings (as BERT).
    tie_word_embeddings: bool = True
    loss_weights: LossWeights = field(default_factory=LossWeights)
    # Backend of videobert.ops.masked_token_loss used by the heads ("auto", "reference", "cpu", "triton").
    head_backend: str = "auto"
    model_type: str = MODEL_TYPE

    def __post_init__(self) -> None:
        if isinstance(self.loss_weights, dict):
            self.loss_weights = LossWeights(**self.loss_weights)
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(f"hidden_size {self.hidden_size} is not a multiple of num_attention_heads {self.num_attention_heads}")
        if self.hidden_act != "gelu":
            raise ValueError(f"hidden_act {self.hidden_act!r} is not supported; videobert implements BERT's exact 'gelu'")
        if self.visual_projection not in ("learned", "fixed"):
            raise ValueError(f"visual_projection must be 'learned' or 'fixed', got {self.visual_projection!r}")
        if self.model_type != MODEL_TYPE:
            raise ValueError(f"model_type must be {MODEL_TYPE!r}, got {self.model_type!r}")

    @property
    def vocab(self) -> UnifiedVocab:
        """The unified id space this model reads."""
        return UnifiedVocab(text_vocab_size=self.text_vocab_size, num_visual_words=self.num_visual_words)

    @classmethod
    def tiny(cls, **overrides: Any) -> "VideoBertConfig":
        """A few-hundred-thousand-parameter transformer for tests (full vocabularies unless overridden)."""
        sizes = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128, max_position_embeddings=128)
        return cls(**{**sizes, **overrides})

    @classmethod
    def base(cls, **overrides: Any) -> "VideoBertConfig":
        return cls(**overrides)

    @classmethod
    def large(cls, **overrides: Any) -> "VideoBertConfig":
        sizes = dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096)
        return cls(**{**sizes, **overrides})
