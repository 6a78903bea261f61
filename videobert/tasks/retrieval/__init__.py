"""Text-video retrieval: recall at K and median rank, both directions (``videobert eval retrieval``).

    metrics    R@K, MedR, MeanR of a score matrix; how ties and several right answers count
    data       the segments (videos) and distinct sentences (texts) retrieved; skips, duplicates
    scorers    cross-encoder (alignment head on each pair), two-tower (pooled cosine), re-rank
    evaluate   one call from annotated segments to the report
    plots      recall against K, and text queries with thumbnails of their best segments

The scorers and ``evaluate_retrieval`` load on first use, so the command line can read ``MODES``
without importing torch.
"""

from videobert.tasks.retrieval.metrics import answer_ranks, retrieval_metrics

MODES = ("two-tower", "rerank", "cross")
# The default is the mode that measured best on the demo's held-out segments (see the README) and
# costs T + V encoder passes, seconds for YouCook II's 3,350 validation segments.
DEFAULT_MODE = "two-tower"
DEFAULT_K = 32  # re-rank shortlist per query

_LAZY = {"evaluate_retrieval": "evaluate", "CrossEncoder": "scorers", "TwoTower": "scorers", "Rerank": "scorers",
         "Scores": "scorers", "make_scorer": "scorers"}

__all__ = ["DEFAULT_K", "DEFAULT_MODE", "MODES", "answer_ranks", "retrieval_metrics", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
