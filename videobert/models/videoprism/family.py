"""VideoPrism as a model family: what the shared trainer and tasks need to train and score it.

A run's settings:
- ``model.preset`` (``tiny`` / ``base`` / ``gpu``) with ``model.overrides`` (``VideoPrismConfig``
  fields; ``text.vocab_size`` defaults to the corpus's), or ``model.init_from`` (a
  ``from_pretrained`` directory, or ``bert:DIR``: the text tower from a BERT directory);
- stage 2: ``model.overrides.stage = 2`` with ``model.init_from`` the stage-1 model, which is both
  the student's start and its frozen teacher; ``data.family.teacher`` names another stage-1 model
  as the teacher. The teacher's weights file enters the run's fingerprint;
- ``data.family.clips``: the clip store (``videobert extract --clips``) holding the corpus's videos.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from videobert.models.family import Family
from videobert.models.videobert.io import WEIGHTS_FILE, read_config_json
from videobert.models.videoprism.config import MODEL_TYPE, VideoPrismConfig
from videobert.models.videoprism.model import VideoPrismForPretraining
from videobert.train.config import ModelConfig, TrainConfig
from videobert.train.data import DatasetFactory

PRESETS = ("tiny", "base", "gpu")


def run_stage(model: ModelConfig) -> int:
    """The stage a run trains: ``overrides.stage``, else the ``init_from`` model's, else 1."""
    if "stage" in model.overrides:
        return int(model.overrides["stage"])
    if model.init_from and not model.init_from.startswith("bert:"):
        return int(read_config_json(Path(model.init_from)).get("stage", 1))
    return 1


def _stage1_model(directory: str | Path, role: str) -> VideoPrismForPretraining:
    model = VideoPrismForPretraining.from_pretrained(directory)
    if model.config.stage != 1:
        raise ValueError(f"{role} {directory} is a stage-{model.config.stage} model; stage 2 distils a stage-1 model")
    return model


def build_model(model: ModelConfig, teacher_weights: Path | None) -> VideoPrismForPretraining:
    """The model ``model`` describes; a stage-2 one with its teacher (the stage-1 model whose
    ``model.safetensors`` is ``teacher_weights``) attached."""
    overrides = dict(model.overrides)
    stage = run_stage(model)
    if stage == 2:
        if teacher_weights is None:
            raise ValueError("a stage-2 run needs its stage-1 teacher: model.init_from (or data.family.teacher)")
        teacher = _stage1_model(teacher_weights.parent, "the teacher")
        overrides.pop("stage", None)
        if model.init_from and read_config_json(Path(model.init_from)).get("stage", 1) == 2:
            if overrides:
                raise ValueError("model.overrides cannot change a stage-2 model loaded with model.init_from")
            student = VideoPrismForPretraining.from_pretrained(model.init_from)
            student.set_teacher(teacher)
            return student
        start = _stage1_model(model.init_from, "model.init_from") if model.init_from else teacher
        student = VideoPrismForPretraining.for_distillation(start, **overrides)
        student.set_teacher(teacher)
        return student
    if model.init_from.startswith("bert:"):
        preset = getattr(VideoPrismConfig, model.preset)(**{k: v for k, v in overrides.items() if k != "text"})
        return VideoPrismForPretraining.from_bert(model.init_from[len("bert:"):], preset)
    if model.init_from:
        if overrides:
            raise ValueError("model.overrides cannot change a model loaded with model.init_from (its config.json decides)")
        return VideoPrismForPretraining.from_pretrained(model.init_from)
    if model.preset not in PRESETS:
        raise ValueError(f"model.preset must be one of {PRESETS}, got {model.preset!r}")
    return VideoPrismForPretraining(getattr(VideoPrismConfig, model.preset)(**overrides))


class VideoPrismFamily(Family):
    name = MODEL_TYPE
    config_class = VideoPrismConfig
    model_class = VideoPrismForPretraining
    metric_keys = ("loss", "contrastive_loss", "contrastive_accuracy", "temperature", "token_loss", "global_loss")

    def prepare(self, config: TrainConfig) -> tuple[ModelConfig, Path | None]:
        """The text tower's vocabulary from the corpus (a mismatch with a saved or BERT model raises
        naming both), and for stage 2 the teacher's weights file."""
        from dataclasses import replace

        from videobert.corpus.store import read_corpus_info

        model = config.model
        corpus_vocab = read_corpus_info(config.data.corpus)["text_vocab_size"] if config.data.corpus else None
        if corpus_vocab is not None:
            if model.init_from.startswith("bert:"):
                have = read_config_json(Path(model.init_from[len("bert:"):])).get("vocab_size")
            elif model.init_from:
                have = read_config_json(Path(model.init_from)).get("text", {}).get("vocab_size")
            else:
                text = dict(model.overrides.get("text", {}))
                have = text.setdefault("vocab_size", corpus_vocab)
                model = replace(model, overrides={**model.overrides, "text": text})
            if have != corpus_vocab:
                raise ValueError(f"corpus {config.data.corpus} has text_vocab_size={corpus_vocab} but the model's text tower "
                                 f"reads {have} ids: build the corpus with the model's tokenizer, or the model for the corpus")
        if run_stage(model) != 2:
            return model, None
        teacher = config.data.family.get("teacher") or model.init_from
        if not teacher or teacher.startswith("bert:"):
            raise ValueError("a stage-2 run needs a trained stage-1 model: model.init_from (or data.family.teacher)")
        return model, Path(teacher) / WEIGHTS_FILE

    def build_model(self, model_config: ModelConfig, init_file: Path | None, seed: int) -> torch.nn.Module:
        return build_model(model_config, init_file)

    def dataset_factory(self, config: TrainConfig, split: str) -> DatasetFactory:
        """``(shard, num_shards) ->`` stage 1: ``PairDataset``, stage 2: ``ClipDataset`` over ``split``
        of the corpus, frames from ``data.family.clips``."""
        from videobert.models.videoprism.data import ClipDataset, CorpusClips, PairDataset
        from videobert.video.clip_store import ClipStore

        if not config.data.corpus or not config.data.family.get("clips"):
            raise ValueError("a videoprism run needs data.corpus and data.family.clips (a clip store: `videobert extract --clips`)")
        store = ClipStore(config.data.family["clips"])
        clips = CorpusClips(config.data.corpus, split, store)
        dataset = PairDataset if run_stage(config.model) == 1 else ClipDataset
        num_frames = self._num_frames(config.model)

        def make(shard: int, num_shards: int) -> Any:
            return dataset(clips, num_frames, seed=config.seed, rank=shard, world_size=num_shards)
        return make

    @staticmethod
    def _num_frames(model: ModelConfig) -> int:
        if "num_frames" in model.overrides:
            return int(model.overrides["num_frames"])
        if model.init_from and not model.init_from.startswith("bert:"):
            return int(read_config_json(Path(model.init_from))["num_frames"])
        return getattr(VideoPrismConfig, model.preset)().num_frames

    def collator(self, config: TrainConfig, model: torch.nn.Module) -> Any:
        from videobert.models.videoprism.collator import VideoPrismCollator

        return VideoPrismCollator(model.config)

    def demo_hooks(self) -> Any:
        from videobert.models.videoprism.demo import VideoPrismDemo

        return VideoPrismDemo()

    def scoring(self, model: torch.nn.Module, tokenizer: Any, **options: Any) -> Any:
        """Two-tower task hooks; ``options``: ``clips`` (a clip store or its directory: a video is
        an array of its rows), ``batch_size``, ``progress``."""
        from videobert.models.videoprism.scoring import VideoPrismScoring

        return VideoPrismScoring(model, **options)


FAMILY = VideoPrismFamily()
