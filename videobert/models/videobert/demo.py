"""VideoBERT in ``videobert demo``: pretraining on the demo's corpus, its videos read as visual
words, and the trained model as a ``VideoBertPipeline`` bundle in ``pipeline/``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from videobert.demo.family_hooks import ClipTable, DemoHooks
from videobert.utils.io import write_text_atomic

if TYPE_CHECKING:
    import torch

    from videobert.demo.pipeline import DemoPipeline


class VideoBertDemo(DemoHooks):
    curve_keys = (("loss", "mlm_loss", "mvm_loss", "alignment_loss"),
                  ("mlm_accuracy/video_text", "mvm_accuracy/video_text", "alignment_accuracy"))

    def pretrain(self, pipeline: "DemoPipeline") -> dict[str, Any]:
        import torch

        from videobert.models.videobert import VideoBertConfig, VideoBertForPretraining
        from videobert.models.videobert.config import LossWeights
        from videobert.train.config import ModelConfig
        from videobert.utils.seed import seed_everything
        from videobert.visual_words import HierarchicalKMeans

        c = pipeline.config
        seed_everything(c.seed)
        # The visual-word embeddings start from the words' S3D centroids (as in the paper); the
        # initial model is saved and the run starts from it.
        tokenizer = pipeline.tokenizer()
        model = VideoBertForPretraining(VideoBertConfig.tiny(
            text_vocab_size=tokenizer.vocab_size, hidden_size=c.hidden_size, num_hidden_layers=c.num_hidden_layers,
            num_attention_heads=c.num_attention_heads, intermediate_size=c.intermediate_size,
            max_position_embeddings=c.max_length, num_visual_words=c.num_visual_words,
            visual_projection=c.visual_projection, loss_weights=LossWeights(alignment=c.alignment_loss_weight)))
        kmeans = HierarchicalKMeans.load(pipeline.kmeans_path)
        model.init_visual_embeddings(torch.as_tensor(np.asarray(kmeans.leaf_centroids), dtype=torch.float32), seed=c.seed)
        init_dir = pipeline.run_dir / "initial_model"
        model.save_pretrained(init_dir)
        result, ranks = pipeline.train(ModelConfig(init_from=str(init_dir)))
        # the model reads the demo's text ids: its vocabulary goes with it (`videobert eval` finds it there)
        write_text_atomic(Path(result.model_dir) / "vocab.txt", tokenizer.path.read_text(encoding="utf-8"))
        self.write_bundle(pipeline, Path(result.model_dir), kmeans)
        return {"ranks": ranks, "steps": result.step, "final_loss": result.loss, "tokens_per_s": result.tokens_per_s,
                "model_dir": str(Path(result.model_dir).resolve().relative_to(pipeline.out.resolve()))}

    def write_bundle(self, pipeline: "DemoPipeline", model_dir: Path, kmeans) -> Path:
        """The trained model as a ``VideoBertPipeline`` bundle in ``pipeline/``: one call from a
        video file to its visual words, embeddings, alignment and zero-shot classes."""
        from videobert.models.videobert import VideoBertForPretraining
        from videobert.pipeline import S3DSource, VideoBertPipeline
        from videobert.video import ClipSpec

        c = pipeline.config
        clip = ClipSpec(fps=c.fps, clip_frames=c.clip_frames, size=c.frame_size)
        bundle = VideoBertPipeline(VideoBertForPretraining.from_pretrained(model_dir), pipeline.tokenizer(), kmeans, clip,
                                   S3DSource.of(c.s3d_weights or None, c.seed), c.s3d_weights or None)
        return bundle.save_pretrained(pipeline.out / "pipeline")

    def scoring(self, pipeline: "DemoPipeline", model: "torch.nn.Module") -> tuple[Any, ClipTable]:
        from videobert.models.videobert.scoring import VideoBertScoring

        return VideoBertScoring(model, pipeline.tokenizer()), pipeline.video_words()

    def captioned(self, pipeline: "DemoPipeline") -> None:
        """The first seed's videobert+s3d captioner joins the bundle in ``pipeline/`` (``caption(path)``)."""
        from videobert.pipeline import VideoBertPipeline
        from videobert.tasks.captioning import Captioner

        bundle = VideoBertPipeline.from_pretrained(pipeline.out / "pipeline")
        bundle.set_captioner(Captioner.from_pretrained(pipeline.eval_dir / "captioning" / "captioners" / "videobert+s3d"),
                             "videobert+s3d")
        bundle.save_pretrained(pipeline.out / "pipeline")
