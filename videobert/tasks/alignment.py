"""Alignment accuracy: does the model's ``[CLS]`` head tell a segment's own sentence from another
segment's? (``videobert eval alignment``; the demo reports it on its held-out videos.)

For every annotated segment with clips the model scores the pair (its sentence, its video) twice
through its family's matching logit (``TaskScoring.pair_logits``; VideoBERT reads ``[CLS] sentence
[>] visual words [SEP]``): once with the segment's own sentence (label 1) and once with the
sentence of another segment chosen at random among those with a different (verb, object) pair
(label 0); a logit above 0 says "aligned". Accuracy is over both, so chance is exactly 50%.

Which sentences: the annotators' by default; :func:`narrated` swaps in what the video's narration
says during each segment. The demo uses the narration, the kind of text the alignment objective is
trained on: a small model trained from scratch on narration has never seen an imperative caption.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from videobert.tasks.annotations import Segment
from videobert.tasks.scoring import task_scoring
from videobert.tasks.sources import VideoWords, segments_with_words
from videobert.text import read_transcript, split_sentences


def alignment_accuracy(model, tokenizer, segments: Sequence[Segment], video_words: VideoWords,
                       seed: int = 0, batch_size: int = 64) -> dict[str, float]:
    """``{"accuracy", "positive_accuracy", "negative_accuracy", "pairs", "chance"}`` over the
    segments that hold at least one clip. ``model``: a trained model or its family's task hooks
    (``videobert.tasks.scoring``); ``tokenizer.encode_batch(texts)`` gives WordPiece ids."""
    usable = list(segments_with_words(segments, video_words))
    if len(usable) < 2:
        raise ValueError(f"alignment: need at least 2 segments with clips, got {len(usable)} of {len(segments)}")
    rng = np.random.default_rng(seed)
    negatives = []
    for i, (seg, _) in enumerate(usable):
        others = [j for j, (o, _) in enumerate(usable) if (o.verb, o.object) != (seg.verb, seg.object)] or \
                 [j for j in range(len(usable)) if j != i]
        negatives.append(int(rng.choice(others)))
    n = len(usable)
    texts = np.stack([np.arange(n), negatives], axis=1).reshape(-1)  # own, other, own, other, ...
    videos = np.repeat(np.arange(n), 2)
    scoring = task_scoring(model, tokenizer, batch_size=batch_size)
    logits = scoring.pair_logits(tokenizer.encode_batch([seg.sentence for seg, _ in usable]),
                                 [words for _, words in usable], texts, videos)
    labels = np.tile([1, 0], n)
    correct = (logits > 0).astype(np.int64) == labels
    return {"accuracy": float(correct.mean()), "positive_accuracy": float(correct[labels == 1].mean()),
            "negative_accuracy": float(correct[labels == 0].mean()), "pairs": int(len(labels)), "chance": 0.5}


def narrated(segments: Sequence[Segment], transcripts: str | os.PathLike) -> list[Segment]:
    """The segments with ``sentence`` replaced by the narration spoken during them: of the
    sentences of ``transcripts/<video_id>.vtt`` (read with ``read_transcript`` and
    ``split_sentences``), the one that overlaps the segment longest. Segments whose video has no
    transcript, or no sentence inside their span, are left out."""
    sentences_of: dict[str, list] = {}
    out = []
    for seg in segments:
        if seg.video_id not in sentences_of:
            path = Path(transcripts) / f"{seg.video_id}.vtt"
            sentences_of[seg.video_id] = split_sentences(read_transcript(path)) if path.exists() else []
        overlaps = [(min(s.end, seg.end) - max(s.start, seg.start), s.text) for s in sentences_of[seg.video_id]]
        overlap, text = max(overlaps, default=(0.0, ""))
        if overlap > 0:
            out.append(dataclasses.replace(seg, sentence=text))
    return out
