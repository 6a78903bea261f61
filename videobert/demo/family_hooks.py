"""What a model family brings to ``videobert demo --family NAME`` (``Family.demo_hooks()``).

The demo's shared stages (generate, extract, visual_words, corpus; then evaluate, caption,
pictures) are the same for every family; a family adds stages of its own after ``corpus`` (e.g.
region detection, a clip store), trains its model in ``pretrain``, and says how the shared tasks
read its videos (``scoring``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch

    from videobert.demo.config import DemoConfig
    from videobert.demo.pipeline import DemoPipeline
    from videobert.demo.stages import Stage
    from videobert.tasks.scoring import TaskScoring

# video id -> (the clips as the family's hooks read them, int64 [n]; clip times float64 [n, 2] seconds)
ClipTable = dict[str, tuple[np.ndarray, np.ndarray]]


class DemoHooks:
    # what the family writes in the demo's directory besides the shared outputs (``--fresh`` deletes them)
    outputs: tuple[str, ...] = ()
    # the training metrics of ``pipeline.run_dir`` the loss-curve picture draws: (losses, accuracies)
    curve_keys: tuple[tuple[str, ...], tuple[str, ...]] = (("loss",), ())

    def settings(self, config: "DemoConfig") -> dict[str, Any]:
        """The family's own demo settings (sizes, steps, rates), JSON values: part of the demo's
        fingerprint, so a rerun with other settings refuses to resume stale stages."""
        return {}

    def pretrain_description(self, config: "DemoConfig") -> str:
        """One line for the log: what the ``pretrain`` stage runs."""
        return f"{config.family}: {config.steps} steps on DeepSpeed ({config.num_ranks} CPU rank(s))"

    def extra_stages(self, pipeline: "DemoPipeline") -> list["Stage"]:
        """Stages run after ``corpus`` and before ``pretrain`` (none by default)."""
        return []

    def pretrain(self, pipeline: "DemoPipeline") -> dict[str, Any]:
        """Train the family's model on the demo's data (``pipeline.train`` runs ``videobert.train`` with
        the demo's settings); the summary must hold ``model_dir`` (relative to ``pipeline.out``). The
        run the loss curves show is ``pipeline.run_dir`` (``pretrain/``)."""
        raise NotImplementedError

    def scoring(self, pipeline: "DemoPipeline", model: "torch.nn.Module") -> tuple["TaskScoring", ClipTable]:
        """The trained model's task hooks and every video's (train and held-out) clips as they read them."""
        raise NotImplementedError

    def captioned(self, pipeline: "DemoPipeline") -> None:
        """Called after the caption stage (e.g. to add a captioner to a bundle); nothing by default."""
