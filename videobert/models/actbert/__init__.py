"""ActBERT (Zhu and Yang, CVPR 2020): action, region and text streams tied by the tangled transformer."""

from videobert.models.actbert.config import ActBertConfig, ActBertLossWeights
from videobert.models.actbert.pretraining import ActBertForPretraining

__all__ = ["ActBertConfig", "ActBertForPretraining", "ActBertLossWeights"]
