"""The joint video-text BERT: config, embeddings, encoder, heads, pretraining model, files."""

from videobert.models.videobert.config import LossWeights, VideoBertConfig
from videobert.models.videobert.pretraining import VideoBertForPretraining

__all__ = ["LossWeights", "VideoBertConfig", "VideoBertForPretraining"]
