"""ActBERT as a model family: what the shared trainer and tasks need to train and score it.

The run's family data (``TrainConfig.data.family``):

    features: [DIR, ...]         extracted S3D feature directories (``videobert extract``), each with
                                 its regions in DIR/regions (``videobert extract --regions``)
    actions: FILE | ""           the action vocabulary, one verb a line; "" = the ``num_actions``
    num_actions: 100             most frequent verbs of the training split's sentences
    max_clips: 32                clips per example (longer segments keep their first clips)
    max_regions_per_clip: 10     detected regions per clip read (besides the whole frame)

``prepare`` fills the model's sizes from the data (text vocabulary from the corpus, feature widths
and class count from the clip store, action count from the vocabulary) and refuses a model that
disagrees, naming both values.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import Any

import torch

from videobert.models.actbert.config import OBJECTIVES, ActBertConfig
from videobert.models.actbert.pretraining import ActBertForPretraining
from videobert.models.family import Family
from videobert.train.config import ModelConfig, TrainConfig
from videobert.train.data import DatasetFactory

DEFAULT_NUM_ACTIONS = 100
FAMILY_DATA_KEYS = ("features", "actions", "num_actions", "max_clips", "max_regions_per_clip")


@dataclasses.dataclass(frozen=True)
class ActBertData:
    """The family's data settings of a run (``TrainConfig.data.family``)."""

    corpus: str
    features: tuple[str, ...]
    actions: str = ""
    num_actions: int = DEFAULT_NUM_ACTIONS
    max_clips: int = 32
    max_regions_per_clip: int = 10

    @classmethod
    def of(cls, config: TrainConfig) -> "ActBertData":
        data = dict(config.data.family)
        unknown = sorted(set(data) - set(FAMILY_DATA_KEYS))
        if unknown:
            raise ValueError(f"data.family has unknown keys {unknown} for actbert; known: {list(FAMILY_DATA_KEYS)}")
        features = data.get("features") or []
        features = [features] if isinstance(features, str) else list(features)
        if not config.data.corpus or not features:
            raise ValueError("actbert needs data.corpus and data.family.features (the S3D feature directories, "
                             "with their regions from `videobert extract --regions`)")
        return cls(config.data.corpus, tuple(str(f) for f in features), str(data.get("actions", "")),
                   int(data.get("num_actions", DEFAULT_NUM_ACTIONS)), int(data.get("max_clips", 32)),
                   int(data.get("max_regions_per_clip", 10)))


@functools.lru_cache(maxsize=4)
def clip_store(features: tuple[str, ...], max_regions_per_clip: int):
    """The run's clip store (read once per process: dataset, collator and checks share it)."""
    from videobert.models.actbert.clips import ClipStore

    return ClipStore(list(features), max_regions_per_clip=max_regions_per_clip)


def corpus_tokenizer(corpus: str):
    """The tokenizer the corpus was built with (its ``corpus.json`` records the vocabulary file)."""
    from videobert.corpus.store import read_corpus_info
    from videobert.text import WordPieceTokenizer

    path = read_corpus_info(corpus).get("tokenizer")
    return WordPieceTokenizer(path) if path else WordPieceTokenizer()


@functools.lru_cache(maxsize=4)
def action_vocab(data: ActBertData):
    """The run's action vocabulary: the given list, or the ``num_actions`` most frequent verbs of the training split."""
    from videobert.corpus.store import CorpusSplit
    from videobert.models.actbert.data import sentences_of
    from videobert.text.actions import ActionVocab

    if data.actions:
        return ActionVocab.from_list(Path(data.actions).read_text(encoding="utf-8").split())
    return ActionVocab.most_frequent(sentences_of(CorpusSplit(data.corpus, "train"), corpus_tokenizer(data.corpus).decode), data.num_actions)


class ActBertFamily(Family):
    name = "actbert"
    config_class = ActBertConfig
    model_class = ActBertForPretraining
    metric_keys = ("loss", *(f"{objective}_{kind}" for objective in OBJECTIVES for kind in ("loss", "accuracy")))

    def prepare(self, config: TrainConfig) -> tuple[ModelConfig, Path | None]:
        from videobert.corpus.store import read_corpus_info
        from videobert.models.videobert.io import read_config_json

        data = ActBertData.of(config)
        store = clip_store(data.features, data.max_regions_per_clip)
        model = config.model
        overrides = dict(model.overrides)
        wanted = {"text_vocab_size": read_corpus_info(data.corpus)["text_vocab_size"], "action_feature_dim": store.action_dim,
                  "region_feature_dim": store.region_dim, "num_object_classes": store.num_classes,
                  "num_actions": len(action_vocab(data))}
        if model.init_from and not model.init_from.startswith("bert:"):
            saved = read_config_json(Path(model.init_from))
            have, source = {k: saved.get(k) for k in wanted}, f"the model {model.init_from}"
        else:
            for key, value in wanted.items():
                overrides.setdefault(key, value)
            have, source = {k: overrides[k] for k in wanted}, "model.overrides"
        for key, value in wanted.items():
            if have[key] != value:
                raise ValueError(f"the run's data has {key}={value} but {source} has {key}={have[key]}")
        return (model if model.init_from and not model.init_from.startswith("bert:")
                else dataclasses.replace(model, overrides=overrides)), None

    def build_model(self, model_config: ModelConfig, init_file: Path | None, seed: int) -> torch.nn.Module:
        return self.model_from_settings(model_config)

    def dataset_factory(self, config: TrainConfig, split: str) -> DatasetFactory:
        """``(shard, num_shards) -> ActBertDataset`` over ``split`` of the run's corpus."""
        from videobert.corpus.store import CorpusSplit
        from videobert.models.actbert.data import ActBertDataset, corpus_action_labels, corpus_clip_rows

        data = ActBertData.of(config)
        store = clip_store(data.features, data.max_regions_per_clip)
        corpus = CorpusSplit(data.corpus, split)
        rows = corpus_clip_rows(corpus, store)
        labels = corpus_action_labels(corpus, action_vocab(data), corpus_tokenizer(data.corpus).decode)

        def make(shard: int, num_shards: int) -> ActBertDataset:
            d = config.data
            return ActBertDataset(data.corpus, rows, labels, split=split, seed=config.seed, rank=shard, world_size=num_shards,
                                  negative_rate=d.negative_rate, concat_prob=d.concat_prob, max_concat=d.max_concat,
                                  max_stride=d.max_stride)
        return make

    def collator(self, config: TrainConfig, model: torch.nn.Module) -> Any:
        from videobert.models.actbert.data import ActBertCollator

        data = ActBertData.of(config)
        store = clip_store(data.features, data.max_regions_per_clip)
        c = model.config
        for key, value in (("action_feature_dim", store.action_dim), ("region_feature_dim", store.region_dim),
                           ("num_object_classes", store.num_classes)):
            if getattr(c, key) != value:
                raise ValueError(f"the clip store has {key}={value} but the model has {getattr(c, key)}")
        return ActBertCollator(store, c.text_vocab_size, max_text=min(config.data.max_length, c.max_position_embeddings),
                               max_clips=min(data.max_clips, c.max_clips), mask_prob=config.data.mask_prob)

    def demo_hooks(self) -> Any:
        from videobert.models.actbert.demo import ActBertDemo

        return ActBertDemo()

    def scoring(self, model: torch.nn.Module, tokenizer: Any, **options: Any) -> Any:
        """Task hooks over a clip store: ``options`` are ``store`` (a ``ClipStore``; a video is an
        array of its rows), ``batch_size`` and ``progress``."""
        from videobert.models.actbert.scoring import ActBertScoring

        return ActBertScoring(model, tokenizer, **options)


FAMILY = ActBertFamily()
