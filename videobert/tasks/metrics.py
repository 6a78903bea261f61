"""Ranking metrics: top-k accuracy overall and per class.

Ranks break ties by class index (as a stable descending sort does), so a prediction list shown
to a user and the accuracy computed here always agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


def rank_of_labels(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """0-based rank of each true label among its row's scores.

    scores ``[N, C]`` (higher is better), labels ``[N]`` in ``[0, C)`` -> ranks ``[N]`` int64.
    rank = #classes scoring higher + #classes scoring equal with a smaller index.
    """
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    if scores.ndim != 2 or labels.shape != (scores.shape[0],):
        raise ValueError(f"scores must be [N, C] and labels [N], got {scores.shape} and {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= scores.shape[1]):
        raise ValueError(f"labels must lie in [0, {scores.shape[1]})")
    true = scores[np.arange(len(labels)), labels][:, None]
    index = np.arange(scores.shape[1])[None, :]
    return ((scores > true) | ((scores == true) & (index < labels[:, None]))).sum(axis=1)


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` best classes of each row, best first (ties by index). ``[N, C] -> [N, k]``."""
    order = np.argsort(-np.asarray(scores, dtype=np.float64), axis=1, kind="stable")
    return order[:, :k]


@dataclass
class ClassReport:
    count: int
    top1: float
    top5: float


@dataclass
class ClassificationReport:
    """Top-1 / top-5 accuracy (fractions in [0, 1]) overall, per class, and averaged over classes."""

    count: int
    top1: float
    top5: float
    mean_class_top1: float
    mean_class_top5: float
    per_class: dict[str, ClassReport] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"count": self.count, "top1": self.top1, "top5": self.top5,
                "mean_class_top1": self.mean_class_top1, "mean_class_top5": self.mean_class_top5,
                "per_class": {name: vars(r) for name, r in self.per_class.items()}}


def classification_report(ranks: np.ndarray, labels: np.ndarray, class_names: list[str]) -> ClassificationReport:
    """Summarise ranks ``[N]`` of true labels ``[N]`` (indices into ``class_names``).

    Classes with no examples are left out of ``per_class`` and of the class means.
    """
    ranks = np.asarray(ranks, dtype=np.int64)
    labels = np.asarray(labels, dtype=np.int64)
    if ranks.shape != labels.shape:
        raise ValueError(f"ranks {ranks.shape} and labels {labels.shape} differ in shape")
    per_class = {}
    for c in np.unique(labels):
        r = ranks[labels == c]
        per_class[class_names[c]] = ClassReport(int(r.size), float((r < 1).mean()), float((r < 5).mean()))
    n = int(ranks.size)

    def mean(values: list[float]) -> float:
        return float(np.mean(values)) if values else float("nan")

    return ClassificationReport(
        count=n,
        top1=float((ranks < 1).mean()) if n else float("nan"),
        top5=float((ranks < 5).mean()) if n else float("nan"),
        mean_class_top1=mean([r.top1 for r in per_class.values()]),
        mean_class_top5=mean([r.top5 for r in per_class.values()]),
        per_class=per_class,
    )


def accuracy_at_k(scores: np.ndarray, labels: np.ndarray, ks: tuple[int, ...] = (1, 3, 5)) -> dict[int, float]:
    """Fraction of rows whose true label is among the ``k`` best, for each ``k``. ``[N, C], [N]``."""
    ranks = rank_of_labels(scores, labels)
    return {k: float((ranks < k).mean()) if ranks.size else float("nan") for k in ks}
