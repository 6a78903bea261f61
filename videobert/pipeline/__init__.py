"""VideoBERT on a user's own videos: ``VideoBertPipeline`` (a one-call bundle: video file -> visual
words, embeddings, alignment, zero-shot, captions), ``export_pipeline`` (a bundle from a pretraining run) and
``videobert pipeline`` (a folder of videos -> features, tree, corpus, model, bundle)."""

from videobert.pipeline.bundle import S3DSource, TimedCaption, VideoBertPipeline

__all__ = ["S3DSource", "TimedCaption", "VideoBertPipeline"]
