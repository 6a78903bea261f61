"""VideoBERT as a model family: what the shared trainer and tasks need to train and score it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from videobert.models.family import Family
from videobert.models.videobert.config import VideoBertConfig
from videobert.models.videobert.pretraining import VideoBertForPretraining
from videobert.train.config import ModelConfig, TrainConfig
from videobert.train.data import DatasetFactory
from videobert.vocab import STREAM_NAMES

class VideoBertFamily(Family):
    name = "videobert"
    config_class = VideoBertConfig
    model_class = VideoBertForPretraining
    presets = ("tiny", "base", "large")
    packs_sequences = True
    metric_keys = (("loss", "mlm_loss", "mvm_loss", "alignment_loss", "alignment_accuracy")
                   + tuple(f"mlm_accuracy/{stream}" for stream in STREAM_NAMES)
                   + tuple(f"mvm_accuracy/{stream}" for stream in STREAM_NAMES))

    def prepare(self, config: TrainConfig) -> tuple[ModelConfig, Path | None]:
        """Vocabulary sizes from the corpus, and the visual-word tree whose leaf centroids start the
        visual-word embeddings (``videobert.models.videobert.from_corpus``)."""
        from videobert.models.videobert.from_corpus import resolve_model_config, visual_words_tree

        return resolve_model_config(config), visual_words_tree(config)

    def build_model(self, model_config: ModelConfig, init_file: Path | None, seed: int) -> torch.nn.Module:
        """``model_from_settings(model_config)`` with its visual-word embeddings started from the tree
        ``init_file``'s leaf centroids (``None``: left as built)."""
        from videobert.models.videobert.from_corpus import init_visual_from_tree

        model = self.model_from_settings(model_config)
        if init_file is not None:
            init_visual_from_tree(model, init_file, seed)
        return model

    def dataset_factory(self, config: TrainConfig, split: str) -> DatasetFactory:
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

    def collator(self, config: TrainConfig, model: torch.nn.Module) -> Any:
        """The masking collator for the model's vocabulary sizes, which must be the corpus's."""
        from videobert.corpus import MaskingCollator
        from videobert.corpus.store import read_corpus_info

        info = read_corpus_info(config.data.corpus) if config.data.corpus else {}
        for key in ("text_vocab_size", "num_visual_words"):
            if key in info and info[key] != getattr(model.config, key):
                raise ValueError(f"corpus {config.data.corpus} has {key}={info[key]} but the model has {getattr(model.config, key)}: "
                                 f"build the corpus with the model's tokenizer and visual words, or the model for the corpus")
        return MaskingCollator(vocab=model.config.vocab, max_length=config.data.max_length, mask_prob=config.data.mask_prob,
                               pack_sequences=config.data.pack_sequences)

    def example_length(self, example: dict[str, Any]) -> int:
        return len(example["text_ids"]) + len(example["visual_words"])

    def demo_hooks(self) -> Any:
        from videobert.models.videobert.demo import VideoBertDemo

        return VideoBertDemo()

    def scoring(self, model: torch.nn.Module, tokenizer: Any, **options: Any) -> Any:
        """Task hooks over visual words (a video is its clips' visual words; no other source needed):
        ``options`` are ``batch_size`` and ``progress``."""
        from videobert.models.videobert.scoring import VideoBertScoring

        return VideoBertScoring(model, tokenizer, **options)


FAMILY = VideoBertFamily()
