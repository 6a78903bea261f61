"""Building a run's parts from its config: the model, the datasets and the collator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from videobert.train.config import ModelConfig, TrainConfig
from videobert.train.data import DatasetFactory
from videobert.vocab import UnifiedVocab


def build_model(config: ModelConfig) -> torch.nn.Module:
    """A fresh model of ``config.preset``, or one initialised from ``config.init_from``
    (a ``from_pretrained`` directory, or ``bert:DIR`` for a BERT checkpoint)."""
    from videobert.model import VideoBertConfig, VideoBertForPretraining

    if config.init_from.startswith("bert:"):
        return VideoBertForPretraining.from_bert(config.init_from[len("bert:"):], **config.overrides)
    if config.init_from:
        if config.overrides:
            raise ValueError("model.overrides cannot change a model loaded with model.init_from (its config.json decides)")
        return VideoBertForPretraining.from_pretrained(config.init_from)
    presets = ("tiny", "base", "large")
    if config.preset not in presets:
        raise ValueError(f"model.preset must be one of {presets}, got {config.preset!r}")
    return VideoBertForPretraining(getattr(VideoBertConfig, config.preset)(**config.overrides))


def build_run_model(config: ModelConfig, tree: Path | None, seed: int) -> torch.nn.Module:
    """``build_model(config)`` with its visual-word embeddings started from ``tree``'s leaf centroids
    (``None``: left as built); ``config`` and ``tree`` come from ``videobert.train.from_corpus``."""
    from videobert.train.from_corpus import init_visual_from_tree

    model = build_model(config)
    if tree is not None:
        init_visual_from_tree(model, tree, seed)
    return model


def model_config_dict(model: torch.nn.Module) -> dict[str, Any]:
    """The model's ``VideoBertConfig`` as plain JSON values (``VideoBertConfig.from_dict`` rebuilds it)."""
    return model.config.to_dict()


def dataset_factory(config: TrainConfig, split: str) -> DatasetFactory:
    """``(shard, num_shards) -> PretrainingDataset`` over ``split`` of the run's corpus."""
    from videobert.corpus import PretrainingDataset

    if not config.data.corpus:
        raise ValueError("data.corpus is not set: give the corpus directory (`videobert pretrain --corpus DIR`)")

    def make(shard: int, num_shards: int) -> Any:
        data = config.data
        return PretrainingDataset(data.corpus, split=split, seed=config.seed, rank=shard, world_size=num_shards,
                                  stream_weights=tuple(data.stream_weights), negative_rate=data.negative_rate,
                                  concat_prob=data.concat_prob, max_concat=data.max_concat, max_stride=data.max_stride)
    return make


def build_collator(config: TrainConfig, model: torch.nn.Module) -> Any:
    """The masking collator for the model's vocabulary sizes, which must be the corpus's."""
    from videobert.corpus import MaskingCollator
    from videobert.corpus.store import read_corpus_info

    info = read_corpus_info(config.data.corpus) if config.data.corpus else {}
    for key in ("text_vocab_size", "num_visual_words"):
        if key in info and info[key] != getattr(model.config, key):
            raise ValueError(f"corpus {config.data.corpus} has {key}={info[key]} but the model has {getattr(model.config, key)}: "
                             f"build the corpus with the model's tokenizer and visual words, or the model for the corpus")
    vocab = UnifiedVocab(text_vocab_size=model.config.text_vocab_size, num_visual_words=model.config.num_visual_words)
    return MaskingCollator(vocab=vocab, max_length=config.data.max_length, mask_prob=config.data.mask_prob)
