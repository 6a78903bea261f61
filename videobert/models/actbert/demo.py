"""ActBERT in ``videobert demo --family actbert``: a ``regions`` stage (the demo's stand-in
detector, ``videobert.demo.detector``: the generator's boxes and classes, features from the box's
pixels), pretraining on the demo's corpus with the clips' S3D features and regions, and the
tasks reading videos as rows of the clip store."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from videobert.demo.family_hooks import ClipTable, DemoHooks
from videobert.demo.stages import Stage
from videobert.models.actbert.config import OBJECTIVES

if TYPE_CHECKING:
    import torch

    from videobert.demo.pipeline import DemoPipeline

SPLITS = ("train", "heldout")
# Pretraining steps per demo size unless `videobert demo --steps` says otherwise: an ActBERT step
# (three streams) costs about twice a VideoBERT step, so fewer of them fit the demo's time.
STEPS = {"full": 3000, "small": 30}
MAX_CLIPS = 32           # clips per training example (the demo's segments have at most ~15)
# Half the VideoBERT demo's rate: at 2e-3 the three-stream model collapsed (the matching head
# answered "aligned" for everything, the action loss stayed at chance); at 1e-3 every objective
# learns (1,300 steps: matching 90% on training batches where 75% are positives, action 67%).
LR = 1e-3
# Detected regions read per clip, in training and in scoring alike: the store standardises region
# features by the statistics of the regions it reads, and those are not saved with the model.
MAX_REGIONS_PER_CLIP = 10
TANGLED_LAYERS = 2       # both of the demo's 2 text layers are tangled with the action and region streams


class ActBertDemo(DemoHooks):
    curve_keys = (("loss", *(f"{objective}_loss" for objective in OBJECTIVES)),
                  tuple(f"{objective}_accuracy" for objective in OBJECTIVES))

    def settings(self, config: Any) -> dict[str, Any]:
        return {"steps": self.steps_of(config), "lr": LR, "max_clips": MAX_CLIPS, "tangled_layers": TANGLED_LAYERS}

    def pretrain_description(self, config: Any) -> str:
        return f"actbert: {self.steps_of(config)} steps on DeepSpeed ({config.num_ranks} CPU rank(s))"

    def extra_stages(self, pipeline: "DemoPipeline") -> list[Stage]:
        return [Stage("regions", lambda: self.regions(pipeline),
                      "regions of each clip's middle frame: the generator's boxes and classes (stand-in detector), "
                      "features from the boxes' pixels")]

    def regions(self, pipeline: "DemoPipeline") -> dict[str, Any]:
        from videobert.demo.detector import SceneDetector
        from videobert.features.regions.detector import extract_regions

        detector = SceneDetector(pipeline.data / "scripts.json")
        summary = {split: extract_regions(pipeline.data / split / "videos", pipeline.features / split, detector)
                   for split in SPLITS}
        return {"detector": f"{detector.name} (stand-in: the generator's ground truth, not a trained detector)", **summary}

    def feature_dirs(self, pipeline: "DemoPipeline") -> list[str]:
        return [str(pipeline.features / split) for split in SPLITS]

    def pretrain(self, pipeline: "DemoPipeline") -> dict[str, Any]:
        from pathlib import Path

        from videobert.train.config import ModelConfig, OptimizerConfig
        from videobert.utils.io import write_text_atomic

        c = pipeline.config
        tokenizer = pipeline.tokenizer()
        model = ModelConfig(family="actbert", preset="tiny", overrides=dict(
            hidden_size=c.hidden_size, num_hidden_layers=c.num_hidden_layers, num_tangled_layers=TANGLED_LAYERS,
            num_attention_heads=c.num_attention_heads, intermediate_size=c.intermediate_size,
            max_position_embeddings=c.max_length, max_clips=MAX_CLIPS))
        family_data = {"features": self.feature_dirs(pipeline), "actions": str(pipeline.data / "verbs.txt"), "max_clips": MAX_CLIPS,
                       "max_regions_per_clip": MAX_REGIONS_PER_CLIP}
        result, ranks = pipeline.train(model, family_data=family_data, steps=self.steps_of(pipeline.config),
                                       optimizer=OptimizerConfig(lr=LR))
        write_text_atomic(Path(result.model_dir) / "vocab.txt", tokenizer.path.read_text(encoding="utf-8"))
        return {"ranks": ranks, "steps": result.step, "final_loss": result.loss, "tokens_per_s": result.tokens_per_s,
                "model_dir": str(Path(result.model_dir).resolve().relative_to(pipeline.out.resolve()))}

    @staticmethod
    def steps_of(c: Any) -> int:
        """``STEPS`` of the demo's size, or the steps asked for (``--steps``: the config differs from its preset's)."""
        from videobert.demo.config import demo_config

        return c.steps if c.steps != demo_config(c.size, family=c.family).steps else STEPS[c.size]

    def scoring(self, pipeline: "DemoPipeline", model: "torch.nn.Module") -> tuple[Any, ClipTable]:
        from videobert.models.actbert.clips import ClipStore
        from videobert.models.actbert.scoring import ActBertScoring

        store = ClipStore(self.feature_dirs(pipeline), max_regions_per_clip=MAX_REGIONS_PER_CLIP)  # training's store
        return ActBertScoring(model, pipeline.tokenizer(), store), store.clip_table()
