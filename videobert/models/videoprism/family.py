"""VideoPrism as a model family: what the shared trainer and tasks need to train and score it.

A run's settings:
- ``model.preset`` (``tiny`` / ``base`` / ``gpu``) with ``model.overrides`` (``VideoPrismConfig``
  fields; ``text.vocab_size`` defaults to the corpus's), or ``model.init_from`` (a
  ``from_pretrained`` directory, or ``bert:DIR``: the text tower from a BERT directory);
- stage 2: ``model.overrides.stage = 2`` with ``model.init_from`` the stage-1 model, which is both
  the student's start and its frozen teacher; ``data.family.teacher`` names another stage-1 model
  as the teacher (alone, it is the start too). The student's sizes and vocabulary are its start's
  (``model.overrides`` may change only stage-2 settings); the teacher's weights file enters the
  run's fingerprint;
- stage 3 (text alignment on the frozen encoder): ``model.overrides.stage = 3`` with
  ``model.init_from`` the stage-2 (or stage-1) model whose video encoder it freezes;
- ``data.family.clips``: the clip store (``videobert extract --clips``) holding the corpus's videos.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from videobert.models.family import Family
from videobert.models.videobert.io import WEIGHTS_FILE, read_config_json
from videobert.models.videoprism.config import MODEL_TYPE, TEXT_DROPOUTS, VideoPrismConfig
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


def _preset(name: str, **overrides: Any) -> VideoPrismConfig:
    if name not in PRESETS:
        raise ValueError(f"model.preset must be one of {PRESETS}, got {name!r}")
    return getattr(VideoPrismConfig, name)(**overrides)


def _stage1_model(directory: str | Path, role: str) -> VideoPrismForPretraining:
    model = VideoPrismForPretraining.from_pretrained(directory)
    if model.config.stage != 1:
        raise ValueError(f"{role} {directory} is a stage-{model.config.stage} model; stage 2 distils a stage-1 model")
    return model


def _stage2_dirs(config: TrainConfig) -> tuple[Path, Path]:
    """A stage-2 run's (start, teacher) model directories: the teacher is ``data.family.teacher``,
    else ``model.init_from``; the start is ``model.init_from``, else the teacher."""
    init_from = config.model.init_from
    if init_from.startswith("bert:"):
        raise ValueError(f"a stage-2 run starts from a trained stage-1 model, not model.init_from={init_from} "
                         "(train stage 1 from the BERT first)")
    teacher = config.data.family.get("teacher") or init_from
    if not teacher:
        raise ValueError("a stage-2 run needs a trained stage-1 model: model.init_from (or data.family.teacher)")
    return Path(init_from or teacher), Path(teacher)


def _text_alignment_model(init_from: str, overrides: dict[str, Any]) -> VideoPrismForPretraining:
    """A stage-3 model: ``init_from`` itself when it is one already (a rerun), else a fresh stage 3 of it."""
    if not init_from or init_from.startswith("bert:"):
        raise ValueError("a stage-3 (text alignment) run freezes a trained video encoder: model.init_from must be a "
                         f"stage-2 (or stage-1) model directory, got {init_from!r}")
    overrides.pop("stage", None)
    start = VideoPrismForPretraining.from_pretrained(init_from)
    if start.config.stage == 3:
        if overrides:
            raise ValueError("model.overrides cannot change a stage-3 model loaded with model.init_from")
        return start
    return VideoPrismForPretraining.for_text_alignment(start, **overrides)


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
        # the usual run starts from its teacher: load that model once
        same = not model.init_from or Path(model.init_from).resolve() == teacher_weights.parent.resolve()
        start = teacher if same else _stage1_model(model.init_from, "model.init_from")
        student = VideoPrismForPretraining.for_distillation(start, **overrides)
        student.set_teacher(teacher)
        return student
    if stage == 3:
        return _text_alignment_model(model.init_from, overrides)
    if model.init_from.startswith("bert:"):
        # the BERT decides the text tower's sizes; only its dropouts are the run's to set
        text = dict(overrides.pop("text", {}))
        fixed = sorted(set(text) - set(TEXT_DROPOUTS))
        if fixed:
            raise ValueError(f"{', '.join('model.overrides.text.' + name for name in fixed)} cannot apply with "
                             f"model.init_from={model.init_from}: the text tower takes the BERT's config (only "
                             f"{' and '.join('text.' + name for name in TEXT_DROPOUTS)} may be set)")
        preset = _preset(model.preset, **overrides, text=text)
        return VideoPrismForPretraining.from_bert(model.init_from[len("bert:"):], preset)
    if model.init_from:
        if overrides:
            raise ValueError("model.overrides cannot change a model loaded with model.init_from (its config.json decides)")
        return VideoPrismForPretraining.from_pretrained(model.init_from)
    return VideoPrismForPretraining(_preset(model.preset, **overrides))


class VideoPrismFamily(Family):
    name = MODEL_TYPE
    config_class = VideoPrismConfig
    model_class = VideoPrismForPretraining
    metric_keys = ("loss", "contrastive_loss", "contrastive_accuracy", "temperature", "token_loss", "global_loss")

    def prepare(self, config: TrainConfig) -> tuple[ModelConfig, Path | None]:
        """The text tower's vocabulary: a fresh model's from the corpus; a saved, BERT or (stage 2)
        start model's checked against the corpus's (a mismatch raises naming both). For stage 2
        also the teacher's weights file."""
        from dataclasses import replace

        from videobert.corpus.store import read_corpus_info

        model = config.model
        stage2 = run_stage(model) == 2
        start, teacher = _stage2_dirs(config) if stage2 else (None, None)
        corpus_vocab = read_corpus_info(config.data.corpus)["text_vocab_size"] if config.data.corpus else None
        if corpus_vocab is not None:
            if stage2:
                have = read_config_json(start).get("text", {}).get("vocab_size")
            elif model.init_from.startswith("bert:"):
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
        return model, teacher / WEIGHTS_FILE if stage2 else None

    def build_model(self, model_config: ModelConfig, init_file: Path | None, seed: int) -> torch.nn.Module:
        return build_model(model_config, init_file)

    def dataset_factory(self, config: TrainConfig, split: str) -> DatasetFactory:
        """``(shard, num_shards) ->`` stages 1, 3: ``PairDataset``, stage 2: ``ClipDataset`` over ``split``
        of the corpus, frames from ``data.family.clips``."""
        from videobert.models.videoprism.data import ClipDataset, CorpusClips, PairDataset
        from videobert.video.clip_store import ClipStore

        if not config.data.corpus or not config.data.family.get("clips"):
            raise ValueError("a videoprism run needs data.corpus and data.family.clips (a clip store: `videobert extract --clips`)")
        store = ClipStore(config.data.family["clips"])
        clips = CorpusClips(config.data.corpus, split, store)
        dataset = ClipDataset if run_stage(config.model) == 2 else PairDataset
        num_frames = self._num_frames(config)

        def make(shard: int, num_shards: int) -> Any:
            return dataset(clips, num_frames, seed=config.seed, rank=shard, world_size=num_shards)
        return make

    @staticmethod
    def _num_frames(config: TrainConfig) -> int:
        model = config.model
        if run_stage(model) == 2:  # the student reads what its teacher reads (set_teacher checks)
            return int(read_config_json(_stage2_dirs(config)[1])["num_frames"])
        if "num_frames" in model.overrides:
            return int(model.overrides["num_frames"])
        if model.init_from and not model.init_from.startswith("bert:"):
            return int(read_config_json(Path(model.init_from))["num_frames"])
        return _preset(model.preset).num_frames

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

        if options.get("clips") is None:  # the model reads pixels: a video is rows of a clip store
            raise ValueError("videoprism task hooks need clips=<clip store dir> (made by `videobert extract --clips`) "
                             "to read the videos' frames from")
        return VideoPrismScoring(model, **options)


FAMILY = VideoPrismFamily()
