"""VideoPrism in ``videobert demo --family videoprism``: a clip store of every video, stage 1
(video-text contrastive on the corpus's sentences) into ``pretrain_stage1/``, stage 2 (masked video
modelling distilled from the stage-1 model) into ``pretrain_stage2/``, stage 3 (text alignment on
the frozen stage-2 encoder: the released video-text models' step) into ``pretrain/``, the model the
tasks score. The paper's ablation, held-out zero-shot and retrieval figures of: stage 1 alone,
stages 1 + 2 read through stage 1's text tower, stages 1 + 2 + 3, and stage 1 + 3 (the same
alignment step on the stage-1 encoder: what stage 2 itself adds or costs).

Sizes (``DEMO_SETTINGS``), all for 2 CPU cores: 32 x 32 px frames, 4 frames per 1.5 s clip, 16
frames per video input (patch 8: 16 tokens a frame, 256 a video), width 64, 2 spatial + 1
temporal layers, a 2-layer text tower of width 64 trained from scratch on the demo's 152-id
vocabulary (BERT's weights read 30,522 ids; the demo's narration needs none of them). 16 frames,
not 8: the verbs are motions repeating once a second (``videobert.demo.scenes``); 8 frames spread
over a ~5 s segment sample them every ~0.6 s and stage 1 reached 37% held-out verb top-1, 16
frames (every ~0.3 s) 58%, at about the same wall time per step on the demo's 2 busy cores.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from videobert.demo.family_hooks import ClipTable, DemoHooks

if TYPE_CHECKING:
    import torch

    from videobert.demo.pipeline import DemoPipeline
    from videobert.demo.stages import Stage

CLIPS_DIR = "clips"
STAGE1_DIR = "pretrain_stage1"
STAGE2_DIR = "pretrain_stage2"
CONTROL_DIR = "pretrain_stage1_3"   # stage 3 on the stage-1 encoder (the ablation's control)


@dataclass(frozen=True)
class DemoSettings:
    frames_per_clip: int = 4
    image_size: int = 32
    patch_size: int = 8
    num_frames: int = 16
    hidden_size: int = 64
    num_spatial_layers: int = 2
    num_temporal_layers: int = 1
    text_layers: int = 2
    stage1_steps: int = 1500
    stage2_steps: int = 600
    # stage 2 starts from the trained stage-1 weights: a tenth of the demo's from-scratch rate
    stage2_lr: float = 2e-4
    mask_ratio: float = 0.75
    # stage 3 trains the pooler and text tower on a frozen encoder: a step costs about a third of a
    # stage-1 step; 400 steps at 1e-3 took stage 1 + 2's held-out verb top-1 from 19% to 34% (seed 2),
    # 1,000 steps or 2e-3 gave no more (33%, 34%)
    stage3_steps: int = 400
    stage3_lr: float = 1e-3

    def model_overrides(self) -> dict[str, Any]:
        width = self.hidden_size
        return {"image_size": self.image_size, "patch_size": self.patch_size, "num_frames": self.num_frames,
                "hidden_size": width, "num_spatial_layers": self.num_spatial_layers,
                "num_temporal_layers": self.num_temporal_layers, "num_attention_heads": 4, "intermediate_size": 2 * width,
                "text": {"hidden_size": width, "num_hidden_layers": self.text_layers, "num_attention_heads": 4,
                         "intermediate_size": 2 * width}}


DEMO_SETTINGS = {"full": DemoSettings(), "small": DemoSettings(stage1_steps=20, stage2_steps=10, stage3_steps=10)}


def evaluate_model(pipeline: "DemoPipeline", scoring: Any, clips: ClipTable) -> dict[str, float]:
    """Held-out zero-shot verb / object top-1 and narration text-to-video R@1 of one model."""
    from videobert.tasks.alignment import narrated
    from videobert.tasks.annotations import read_word_list, read_youcook_annotations
    from videobert.tasks.retrieval import evaluate_retrieval
    from videobert.tasks.zero_shot import ZeroShotClassifier

    tokenizer = pipeline.tokenizer()
    segments = read_youcook_annotations(pipeline.data / "heldout" / "annotations.json")
    zero_shot = ZeroShotClassifier(scoring, tokenizer, read_word_list(pipeline.data / "verbs.txt"),
                                   read_word_list(pipeline.data / "objects.txt")).evaluate(segments, clips)
    retrieval = evaluate_retrieval(scoring, tokenizer, narrated(segments, pipeline.data / "heldout" / "transcripts"), clips)
    return {"verb_top1": round(zero_shot.verb["video"].top1, 4), "object_top1": round(zero_shot.object["video"].top1, 4),
            "text_to_video_R@1": round(retrieval["text_to_video"]["R@1"], 4)}


class VideoPrismDemo(DemoHooks):
    outputs = (CLIPS_DIR, STAGE1_DIR, STAGE2_DIR, CONTROL_DIR)
    curve_keys = (("loss",), ("contrastive_accuracy",))  # of pretrain/: the stage-3 run

    def sizes(self, pipeline: "DemoPipeline") -> DemoSettings:
        return DEMO_SETTINGS[pipeline.config.size]

    def settings(self, config: Any) -> dict[str, Any]:
        return dataclasses.asdict(DEMO_SETTINGS[config.size])

    def pretrain_description(self, config: Any) -> str:
        s = DEMO_SETTINGS[config.size]
        return (f"videoprism: stage 1 (video-text contrastive) {s.stage1_steps} steps, stage 2 (masked distillation) "
                f"{s.stage2_steps} steps, stage 3 (text alignment on the frozen encoder) {s.stage3_steps} steps after "
                f"each of stages 1 and 2, on DeepSpeed ({config.num_ranks} CPU rank(s))")

    def extra_stages(self, pipeline: "DemoPipeline") -> list["Stage"]:
        from videobert.demo.stages import Stage

        s = self.sizes(pipeline)
        return [Stage("clips", lambda: self.write_clips(pipeline),
                      f"clip store: {s.frames_per_clip} frames of {s.image_size} px per 1.5 s clip, every video")]

    def write_clips(self, pipeline: "DemoPipeline") -> dict[str, Any]:
        from videobert.features.clip_loader import list_videos
        from videobert.video.clip_store import write_clip_store

        s = self.sizes(pipeline)
        c = pipeline.config
        videos = [*list_videos(pipeline.data / "train" / "videos"), *list_videos(pipeline.data / "heldout" / "videos")]
        summary = write_clip_store(videos, pipeline.out / CLIPS_DIR, s.frames_per_clip, s.image_size, c.clip_frames / c.fps)
        if summary.failed:
            raise RuntimeError(f"clip store: videos failed to decode: {summary.failed}")
        return {"videos": len(summary.done) + len(summary.skipped), "clips": summary.clips,
                "frames_per_clip": s.frames_per_clip, "size": s.image_size}

    def pretrain(self, pipeline: "DemoPipeline") -> dict[str, Any]:
        from videobert.models.videoprism.model import VideoPrismForPretraining
        from videobert.train.config import ModelConfig, OptimizerConfig

        s = self.sizes(pipeline)
        data = {"clips": str(pipeline.out / CLIPS_DIR)}

        def train(out: str, steps: int, lr: float | None = None, **model: Any) -> Any:
            """(result, ranks) of one stage's run into ``out``; ``lr`` None: the demo's rate."""
            settings = {"optimizer": OptimizerConfig(lr=lr)} if lr else {}
            return pipeline.train(ModelConfig(family="videoprism", **model), out=pipeline.out / out, family_data=data,
                                  steps=steps, **settings)

        first, ranks = train(STAGE1_DIR, s.stage1_steps, preset="tiny", overrides=s.model_overrides())
        second, _ = train(STAGE2_DIR, s.stage2_steps, s.stage2_lr, init_from=first.model_dir,
                          overrides={"stage": 2, "mask_ratio": s.mask_ratio})
        aligned = {name: train(out, s.stage3_steps, s.stage3_lr, init_from=start.model_dir, overrides={"stage": 3})[0]
                   for name, out, start in (("stage1+2+3", "pretrain", second), ("stage1+3", CONTROL_DIR, first))}
        final = aligned["stage1+2+3"]
        ablation = {}
        for name, result in (("stage1", first), ("stage1+2", second), *aligned.items()):
            model = VideoPrismForPretraining.from_pretrained(result.model_dir)
            ablation[name] = evaluate_model(pipeline, *self.scoring(pipeline, model))

        def relative(path: str) -> str:
            return str(Path(path).resolve().relative_to(pipeline.out.resolve()))

        stages = {"1": first, "2": second, "3": final, "3 on stage 1": aligned["stage1+3"]}
        return {"ranks": ranks, "steps": final.step, "final_loss": final.loss, "tokens_per_s": final.tokens_per_s,
                "model_dir": relative(final.model_dir),
                "stages": {key: {"steps": r.step, "final_loss": r.loss, "model_dir": relative(r.model_dir)}
                           for key, r in stages.items()},
                "ablation": ablation}

    def scoring(self, pipeline: "DemoPipeline", model: "torch.nn.Module") -> tuple[Any, ClipTable]:
        from videobert.models.videoprism.scoring import VideoPrismScoring
        from videobert.video.clip_store import ClipStore

        store = ClipStore(pipeline.out / CLIPS_DIR)
        return VideoPrismScoring(model, store), {i: (store.rows(i), store.times(i)) for i in store.video_ids}
