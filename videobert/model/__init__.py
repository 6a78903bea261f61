"""The joint video-text BERT: config, embeddings, encoder, heads, pretraining model, files."""

from videobert.model.config import LossWeights, VideoBertConfig
from videobert.model.pretraining import VideoBertForPretraining

__all__ = ["LossWeights", "VideoBertConfig", "VideoBertForPretraining"]
