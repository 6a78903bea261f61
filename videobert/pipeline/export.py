"""A ``VideoBertPipeline`` bundle from a finished pretraining run, with nothing to re-type: the
run's ``train_config.yaml`` names its corpus; the corpus's ``corpus.json`` names the tree and the
tokenizer, and its fingerprint holds how the features were extracted (S3D weights digest, clip
size, fps, clip frames). ``videobert export RUN OUT --pipeline [--captioner DIR]`` calls this."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from videobert.pipeline.bundle import S3DSource, VideoBertPipeline


def extraction_of_corpus(corpus_dir: Path) -> dict:
    """The ``videobert extract`` fingerprint of the features a corpus was built from."""
    from videobert.utils.fingerprint import FINGERPRINT_FILE, read_fingerprint

    fingerprint = read_fingerprint(corpus_dir / FINGERPRINT_FILE) or {}
    extract = fingerprint.get("sources", {}).get("features", {}).get("extract")
    if not extract:
        raise ValueError(f"corpus {corpus_dir} does not record how its features were extracted: build it with "
                         f"`videobert corpus build` from a `videobert extract` directory")
    return extract


def load_captioner(directory: str | os.PathLike) -> tuple[torch.nn.Module, str | None]:
    """A captioner written by ``videobert eval caption`` (``OUT/captioners/<variant>/``) and its variant
    (the directory's name when it is one; else ``None``: the pipeline tells it by the input width)."""
    from videobert.tasks.captioning import VARIANTS, Captioner

    directory = Path(directory)
    if not (directory / "config.json").is_file():
        raise FileNotFoundError(f"{directory}: no config.json; give a captioner directory written by "
                                f"`videobert eval caption` (its OUT/captioners/<variant>/)")
    return Captioner.from_pretrained(directory), directory.name if directory.name in VARIANTS else None


def export_pipeline(run_dir: str | os.PathLike, out: str | os.PathLike, s3d_weights: str | os.PathLike | None = None,
                    tag: str | None = None, captioner: str | os.PathLike | None = None) -> Path:
    """Write the bundle of run ``run_dir`` (checkpoint ``tag``, default the newest) into ``out``.
    ``s3d_weights``: the S3D file the features were extracted with (checked against the recorded
    digest and recorded as the bundle's path); not needed for random weights. ``captioner``: a
    captioner directory (see :func:`load_captioner`) trained on this run's features, for ``caption``."""
    from videobert.corpus.store import read_corpus_info
    from videobert.models.videobert import VideoBertForPretraining
    from videobert.text import WordPieceTokenizer
    from videobert.train.checkpoint import export_checkpoint
    from videobert.utils.config import read_mapping
    from videobert.video import ClipSpec
    from videobert.visual_words import HierarchicalKMeans

    run_dir = Path(run_dir)
    config_path = run_dir / "train_config.yaml"
    if not config_path.is_file():
        raise FileNotFoundError(f"{run_dir}: no train_config.yaml; give the directory of a `videobert pretrain` run")
    corpus = Path(read_mapping(config_path)["data"]["corpus"])
    info = read_corpus_info(corpus)
    if not info.get("visual_words"):
        raise ValueError(f"corpus {corpus} does not record the tree its visual words came from")
    extract = extraction_of_corpus(corpus)
    trained_captioner, variant = load_captioner(captioner) if captioner is not None else (None, None)
    source = S3DSource(extract["weights"])
    if s3d_weights is not None:
        source = S3DSource(extract["weights"], str(Path(s3d_weights).resolve()))
        source.check(s3d_weights)  # the file the features came from
    out = Path(out)
    export_checkpoint(run_dir / "checkpoints", out, tag)
    clip = ClipSpec(fps=extract["fps"], clip_frames=extract["clip_frames"], size=extract["size"], partial=extract["partial"])
    pipeline = VideoBertPipeline(VideoBertForPretraining.from_pretrained(out), WordPieceTokenizer(info["tokenizer"]),
                                 HierarchicalKMeans.load(info["visual_words"]["path"]), clip, source, s3d_weights,
                                 captioner=trained_captioner, captioner_variant=variant)
    return pipeline.save_pretrained(out)
