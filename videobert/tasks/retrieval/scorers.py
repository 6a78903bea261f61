"""Text-video scores for retrieval, three ways behind one interface, for a model of any family.

``scorer.score(texts, videos) -> Scores``: texts are WordPiece id lists, videos the family's clip
arrays (``videobert.tasks.scoring``: VideoBERT's are visual words); ``Scores.text_to_video [T, V]``
ranks videos for each text and ``Scores.video_to_text [V, T]`` texts for each video (higher = better).

- :class:`CrossEncoder`: the family's matching logit (``TaskScoring.pair_logits``; VideoBERT: the
  alignment head on ``[CLS] text [>] video [SEP]``) for every pair; exact, ``T * V`` forward passes.
- :class:`TwoTower`: each text alone and each video alone embedded once
  (``embed_texts`` / ``embed_videos``), compared by cosine; ``T + V`` passes.
- :class:`Rerank`: the two-tower top ``k`` of each query, ordered by the cross-encoder; the rest
  follow in two-tower order below them. ``2 * k * n`` pairs at most; with ``k >= n`` it is the
  cross-encoder exactly.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from videobert.tasks.retrieval import DEFAULT_K, MODES
from videobert.tasks.scoring import TaskScoring

log = logging.getLogger(__name__)


@dataclass
class Scores:
    text_to_video: np.ndarray  # [T, V] float64
    video_to_text: np.ndarray  # [V, T] float64
    pairs_scored: int = 0      # cross-encoder forward passes (text-video pairs)
    seconds: float = 0.0       # wall time of the scoring


def _check(texts: Sequence, videos: Sequence) -> None:
    if not texts or not videos:
        raise ValueError(f"retrieval needs texts and videos, got {len(texts)} texts and {len(videos)} videos")
    if any(len(np.asarray(v)) == 0 for v in videos):
        raise ValueError("every video needs at least one clip")


# --------------------------------------------------------------------------- cross-encoder
class CrossEncoder:
    """The matching logit of every text-video pair."""

    def __init__(self, scoring: TaskScoring):
        self.scoring = scoring

    def score(self, texts: Sequence[Sequence[int]], videos: Sequence[np.ndarray]) -> Scores:
        started = time.perf_counter()
        _check(texts, videos)
        t, v = np.divmod(np.arange(len(texts) * len(videos)), len(videos))
        matrix = self.scoring.pair_logits(texts, videos, t, v).reshape(len(texts), len(videos))
        return _timed(Scores(matrix, matrix.T.copy(), matrix.size), started)


def _timed(scores: Scores, started: float) -> Scores:
    scores.seconds = time.perf_counter() - started
    if scores.pairs_scored:
        log.info("scored %d text-video pairs in %.1f s (%.0f pairs/s)", scores.pairs_scored, scores.seconds,
                 scores.pairs_scored / max(scores.seconds, 1e-9))
    return scores


# --------------------------------------------------------------------------- two-tower
class TwoTower:
    """Cosine similarity of single-modality embeddings."""

    def __init__(self, scoring: TaskScoring):
        self.scoring = scoring

    def similarity(self, texts: Sequence[Sequence[int]], videos: Sequence[np.ndarray]) -> np.ndarray:
        """Cosine similarities ``[T, V]`` float64."""
        _check(texts, videos)
        return (self.scoring.embed_texts(texts) @ self.scoring.embed_videos(videos).T).double().cpu().numpy()

    def score(self, texts: Sequence[Sequence[int]], videos: Sequence[np.ndarray]) -> Scores:
        started = time.perf_counter()
        matrix = self.similarity(texts, videos)
        return _timed(Scores(matrix, matrix.T.copy()), started)


# --------------------------------------------------------------------------- re-rank
def top_k_mask(scores: np.ndarray, k: int) -> np.ndarray:
    """``[Q, C]`` bool: the ``k`` best of each row (ties at the cut go to the lower index)."""
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    mask = np.zeros(scores.shape, dtype=bool)
    np.put_along_axis(mask, order, True, axis=1)
    return mask


def rerank_matrix(cross: np.ndarray, first: np.ndarray, chosen: np.ndarray) -> np.ndarray:
    """One score matrix ``[Q, C]`` that orders each row's ``chosen`` candidates by ``cross`` and puts
    the rest below all of them in ``first``-stage order. ``first`` is a cosine in [-1, 1], so
    ``row's lowest chosen cross score - 3 + first`` lies strictly below every chosen score and keeps
    the first stage's order (and its ties)."""
    floor = np.where(chosen, cross, np.inf).min(axis=1, keepdims=True)
    return np.where(chosen, cross, floor - 3.0 + first)


class Rerank:
    """Two-tower top ``k`` per query (both directions), ordered by the cross-encoder."""

    def __init__(self, scoring: TaskScoring, k: int = DEFAULT_K):
        if k < 1:
            raise ValueError(f"re-rank needs k >= 1, got {k}")
        self.k, self.scoring = k, scoring
        self.two_tower = TwoTower(scoring)

    def score(self, texts: Sequence[Sequence[int]], videos: Sequence[np.ndarray]) -> Scores:
        started = time.perf_counter()
        first = self.two_tower.similarity(texts, videos)                       # [T, V]
        videos_of_text = top_k_mask(first, self.k)                             # text -> video shortlist
        texts_of_video = top_k_mask(first.T, self.k).T                         # video -> text shortlist, [T, V]
        t, v = np.nonzero(videos_of_text | texts_of_video)                     # each pair scored once
        cross = np.full(first.shape, np.nan)
        cross[t, v] = self.scoring.pair_logits(texts, videos, t, v)
        return _timed(Scores(rerank_matrix(cross, first, videos_of_text),
                             rerank_matrix(cross.T, first.T, texts_of_video.T), len(t)), started)


def make_scorer(mode: str, scoring: TaskScoring, k: int = DEFAULT_K):
    """The scorer called ``mode`` ("cross", "two-tower" or "rerank") over a model's task hooks."""
    if mode == "cross":
        return CrossEncoder(scoring)
    if mode == "two-tower":
        return TwoTower(scoring)
    if mode == "rerank":
        return Rerank(scoring, k)
    raise ValueError(f"retrieval mode must be one of {MODES}, got {mode!r}")
