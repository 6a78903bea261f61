"""The demo's calls into the feature and corpus stages, with the demo's reduced sizes."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np

log = logging.getLogger(__name__)


def extract_features(videos_dir: str | os.PathLike, out_dir: str | os.PathLike, weights: str | None, size: int,
                     fps: int, clip_frames: int, seed: int) -> dict[str, Any]:
    """S3D features of every video in ``videos_dir`` with ``videobert.features`` (PyAV decoding in
    one worker process beside the network; ``weights`` or random weights drawn from ``seed``).
    Videos already extracted are skipped; a failing video is recorded and the others go on."""
    from videobert.features.extract import ExtractConfig, extract_features as run_extraction

    summary = run_extraction(ExtractConfig(
        videos=str(videos_dir), out=str(out_dir), weights=weights, size=size, fps=fps, clip_frames=clip_frames,
        seed=seed, workers=1, backend="pyav", device="cpu", batch_size=16, rank=0, world_size=1))
    if summary.failed:
        log.warning("features: %d video(s) failed: %s", len(summary.failed), summary.failed)
    if not summary.done and not summary.skipped:
        raise RuntimeError(f"no video of {videos_dir} yielded features: {summary.failed}")
    return {"videos_done": len(summary.done), "videos_skipped": len(summary.skipped), "failed": summary.failed,
            "clips": summary.clips, "clips_per_second": round(summary.clips_per_second, 1),
            "weights": weights or f"random (seed {seed})", "input_size": size}


def build_demo_corpus(out_dir: str | os.PathLike, video_words: Mapping[str, tuple[np.ndarray, np.ndarray]],
                      transcripts_dir: str | os.PathLike, tokenizer, seed: int, num_visual_words: int) -> dict[str, Any]:
    """The pretraining corpus of the training videos: each with its WebVTT transcript when it has
    one (``<transcripts_dir>/<video_id>.vtt``), else video-only. Every video goes to the corpus's
    ``train`` split: the demo's held-out videos are separate files with their own annotations.
    ``tokenizer``: the demo's WordPiece tokenizer (its vocabulary sets the corpus's text ids)."""
    from videobert.corpus import CorpusConfig, build_corpus

    transcripts = Path(transcripts_dir)

    def videos():
        for video_id, (words, times) in sorted(video_words.items()):
            vtt = transcripts / f"{video_id}.vtt"
            yield video_id, words, times, (vtt if vtt.exists() else None)

    info = build_corpus(videos(), out_dir, CorpusConfig(heldout_fraction=0.0, seed=seed, num_visual_words=num_visual_words),
                        tokenizer=tokenizer, text_vocab_size=tokenizer.vocab_size)
    return {"splits": info["splits"], "videos_failed": info["videos_failed"], "transcript_errors": info["transcript_errors"]}
