"""What a model family brings to the shared trainer and tasks.

The trainer (``videobert.train``), checkpoints, export, metrics, the demo's stage runner and the
downstream tasks (``videobert.tasks``) know no family by name: they ask a :class:`Family` found in
the registry (``videobert.models.get_family``) by the ``model.family`` setting of a run, or by the
``model_type`` in a model directory's ``config.json``. A family is a subclass of :class:`Family`
in ``videobert/models/<name>/family.py`` plus one line in ``videobert.models.FAMILIES``.

What the shared code relies on:

- the model's config is a dataclass with ``model_type == family.name``, ``to_dict()`` and
  ``from_dict()``, and presets ``tiny()`` / ``base()`` (``large()`` where it makes sense);
- the model is an ``nn.Module`` built from its config, with ``config``, ``save_pretrained(dir)``
  and ``from_pretrained(dir)``; ``forward(**batch)`` returns a dict with ``loss`` (a scalar
  tensor) and named float metrics (``*_loss``, ``*_accuracy...``), and gives every trainable
  parameter a gradient on every batch (ZeRO needs it: add ``0 * head(...)`` for absent objectives);
- the collator turns a list of examples into a dict of tensors that includes ``attention_mask``
  ``[B, L]`` (its sum is the step's token count in the throughput figures);
- datasets are shardable, resumable iterables as ``videobert.train.data`` describes (``(shard,
  num_shards) -> IterableDataset`` with ``load_state_dict({"epoch", "position"})`` and ``len``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    import torch

    from videobert.tasks.scoring import TaskScoring
    from videobert.train.config import ModelConfig, TrainConfig
    from videobert.train.data import DatasetFactory


class Family:
    """One model family. Subclasses set ``name``, ``config_class`` and ``model_class`` and
    implement the training hooks; the task hook is optional (a family without it cannot be scored)."""

    name: str = ""
    config_class: type = object
    model_class: type = object
    # every scalar the model's forward may return, "loss" first: the trainer averages these over
    # micro-batches and ranks (one vector, the same order on every rank) and logs them
    metric_keys: tuple[str, ...] = ("loss",)
    presets: tuple[str, ...] = ("tiny", "base")  # the config class's preset constructors
    # whether the collator and model take packed rows (data.pack_sequences, videobert.corpus.packing)
    packs_sequences: bool = False

    # ----- training (videobert.train) ---------------------------------------------------------
    def prepare(self, config: "TrainConfig") -> tuple["ModelConfig", Path | None]:
        """Before DeepSpeed starts, on every rank: ``config.model`` completed from the run's data
        (e.g. vocabulary sizes from the corpus), and the file the initial weights are derived from
        besides ``model.init_from`` (VideoBERT: the visual-word tree; ``None``: none). Both enter the
        run's fingerprint. Raise ``ValueError`` naming both values when model and data disagree."""
        return config.model, None

    def build_model(self, model_config: "ModelConfig", init_file: Path | None, seed: int) -> "torch.nn.Module":
        """The model to train: ``model_config.preset`` with ``overrides``, or ``init_from`` (a
        ``from_pretrained`` directory, or ``bert:DIR``), started from ``init_file`` where given."""
        raise NotImplementedError

    def dataset_factory(self, config: "TrainConfig", split: str) -> "DatasetFactory":
        """``(shard, num_shards) -> dataset`` over ``split`` of the run's data."""
        raise NotImplementedError

    def collator(self, config: "TrainConfig", model: "torch.nn.Module") -> Callable[[list[dict[str, Any]]], dict[str, "torch.Tensor"]]:
        """Examples -> a batch of tensors (with ``attention_mask``) for ``model(**batch)``."""
        raise NotImplementedError

    def example_length(self, example: dict[str, Any]) -> int:
        """How long ``example`` is where the collator pads a batch to its longest example: what
        ``data.group_by_length`` sorts by. Families whose examples all have one size need not say."""
        raise ValueError(f"model family {self.name!r} cannot group examples by length (data.group_by_length > 1): "
                         f"its examples have no length that decides the padding")

    def model_from_settings(self, config: "ModelConfig") -> "torch.nn.Module":
        """A fresh model of ``config.preset`` with ``config.overrides``, or one initialised from
        ``config.init_from`` (a ``from_pretrained`` directory, or ``bert:DIR`` for a BERT checkpoint:
        the model class's ``from_bert(dir, **overrides)``)."""
        cls = self.model_class
        if config.init_from.startswith("bert:"):
            return cls.from_bert(config.init_from[len("bert:"):], **config.overrides)
        if config.init_from:
            if config.overrides:
                raise ValueError("model.overrides cannot change a model loaded with model.init_from (its config.json decides)")
            return cls.from_pretrained(config.init_from)
        if config.preset not in self.presets:
            raise ValueError(f"model.preset must be one of {self.presets} for {self.name}, got {config.preset!r}")
        return cls(getattr(self.config_class, config.preset)(**config.overrides))

    # ----- files ------------------------------------------------------------------------------
    def config_from_dict(self, data: dict[str, Any]) -> Any:
        return self.config_class.from_dict(data)

    def model_from_config(self, config: Any) -> "torch.nn.Module":
        return self.model_class(config)

    def from_pretrained(self, directory: str | os.PathLike) -> "torch.nn.Module":
        return self.model_class.from_pretrained(directory)

    def demo_hooks(self) -> Any:
        """What ``videobert demo --family NAME`` runs for this family (``videobert.demo.family_hooks.DemoHooks``)."""
        raise NotImplementedError(f"model family {self.name!r} has no demo")

    # ----- tasks (videobert.tasks) ------------------------------------------------------------
    def scoring(self, model: "torch.nn.Module", tokenizer: Any, **options: Any) -> "TaskScoring":
        """The task hooks of a trained ``model`` (``videobert.tasks.scoring``) with its WordPiece
        ``tokenizer``; ``options`` are ``batch_size``, ``progress`` and what the family needs beside
        the model to read a video (e.g. a feature store). Families that cannot be scored raise."""
        raise NotImplementedError(f"model family {self.name!r} has no task scoring")
