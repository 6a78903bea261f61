"""Text-video retrieval over annotated segments, both directions: the report ``retrieval.json`` holds."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from videobert.tasks.annotations import Segment
from videobert.tasks.retrieval import DEFAULT_K, DEFAULT_MODE
from videobert.tasks.retrieval.data import build_retrieval_set
from videobert.tasks.retrieval.metrics import answer_ranks, retrieval_metrics
from videobert.tasks.retrieval.scorers import make_scorer
from videobert.tasks.scoring import task_scoring
from videobert.tasks.sources import VideoWords

SHOWN = 5  # best candidates kept per query in the report


def evaluate_retrieval(model: Any, tokenizer, segments: Sequence[Segment], video_words: VideoWords,
                       mode: str = DEFAULT_MODE, k: int = DEFAULT_K, batch_size: int = 256, progress: bool = False
                       ) -> dict[str, Any]:
    """Rank the segments for each distinct sentence (text to video) and the sentences for each
    segment (video to text); see ``videobert.tasks.retrieval.data`` for skips and duplicates.
    ``model``: a trained model, or its family's task hooks (``videobert.tasks.scoring``), which
    families that read videos from a store need; ``video_words`` then maps videos to store rows.

    Returns a JSON-ready dict: ``mode``, ``k`` (re-rank only), ``text_to_video`` and
    ``video_to_text`` (:func:`retrieval_metrics`), ``segments``, ``sentences``,
    ``duplicate_segments``, ``skipped``, ``pairs_scored`` (cross-encoder pairs), ``seconds``, and
    per query: ``videos`` (each segment's ``video_id``, ``start``, ``end`` s, ``sentence`` index,
    ``rank`` of its sentence, ``top5`` sentences) and ``texts`` (each sentence, its ``answers``
    segment indices, ``rank`` and ``top5`` segments).
    """
    data = build_retrieval_set(segments, video_words, tokenizer)
    scoring = task_scoring(model, tokenizer, batch_size=batch_size, progress=progress)
    scores = make_scorer(mode, scoring, k).score(data.text_ids, data.words)
    relevance = data.relevance
    text_ranks = answer_ranks(scores.text_to_video, relevance)
    video_ranks = answer_ranks(scores.video_to_text, relevance.T)
    best_videos = np.argsort(-scores.text_to_video, axis=1, kind="stable")[:, :SHOWN]
    best_texts = np.argsort(-scores.video_to_text, axis=1, kind="stable")[:, :SHOWN]
    return {
        "mode": mode,
        "k": k if mode == "rerank" else None,
        "text_to_video": retrieval_metrics(scores.text_to_video, relevance),
        "video_to_text": retrieval_metrics(scores.video_to_text, relevance.T),
        "segments": len(data.segments),
        "sentences": len(data.sentences),
        "duplicate_segments": data.duplicate_segments,
        "skipped": data.skipped,
        "pairs_scored": scores.pairs_scored,
        "seconds": round(scores.seconds, 3),
        "texts": [{"sentence": sentence, "answers": np.flatnonzero(relevance[t]).tolist(), "rank": int(text_ranks[t]),
                   "top5": best_videos[t].tolist()} for t, sentence in enumerate(data.sentences)],
        "videos": [{"video_id": seg.video_id, "start": seg.start, "end": seg.end, "sentence": int(data.text_of[v]),
                    "rank": int(video_ranks[v]), "top5": best_texts[v].tolist()} for v, seg in enumerate(data.segments)],
    }
