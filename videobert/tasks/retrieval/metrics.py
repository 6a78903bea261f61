"""Retrieval metrics: recall at K, median and mean rank of the right answer.

Ranks are 1-based. **Ties count against the right answer**: a query's rank is 1 + the number of
wrong candidates scoring at least as high as its best right one. A model that scores everything
the same therefore gets rank n (the worst), never rank 1, and no tie-breaking by index can flatter
a result.

A query may have several right answers (``relevant [Q, C]``, e.g. every segment whose sentence is
the query's, see ``videobert.tasks.retrieval.data``); its rank is that of the best-ranked one and
the other right answers never count against it. Without ``relevant`` the right answer of query i
is candidate i (a square matrix).
"""

from __future__ import annotations

import numpy as np

KS = (1, 5, 10)


def _relevance(similarity: np.ndarray, relevant: np.ndarray | None) -> np.ndarray:
    if relevant is None:
        if similarity.shape[0] != similarity.shape[1]:
            raise ValueError(f"without `relevant` the similarity matrix must be square (answer of query i = "
                             f"candidate i), got {similarity.shape}")
        return np.eye(similarity.shape[0], dtype=bool)
    relevant = np.asarray(relevant, dtype=bool)
    if relevant.shape != similarity.shape:
        raise ValueError(f"relevant {relevant.shape} and similarity {similarity.shape} differ in shape")
    missing = np.flatnonzero(~relevant.any(axis=1))
    if missing.size:
        raise ValueError(f"queries {missing[:5].tolist()} have no right answer among the candidates")
    return relevant


def answer_ranks(similarity: np.ndarray, relevant: np.ndarray | None = None) -> np.ndarray:
    """1-based rank of each query's best right answer, ties counted against it.

    ``similarity [Q, C]`` (higher = better match), ``relevant [Q, C]`` bool or ``None`` (identity)
    -> ``[Q]`` int64 in ``[1, C]``.
    """
    similarity = np.asarray(similarity, dtype=np.float64)
    if similarity.ndim != 2 or similarity.shape[0] == 0 or similarity.shape[1] == 0:
        raise ValueError(f"similarity must be a non-empty [queries, candidates] matrix, got {similarity.shape}")
    if np.isnan(similarity).any():
        raise ValueError("similarity holds NaN scores")
    relevant = _relevance(similarity, relevant)
    best_right = np.where(relevant, similarity, -np.inf).max(axis=1, keepdims=True)
    return 1 + ((similarity >= best_right) & ~relevant).sum(axis=1)


def recall_at(ranks: np.ndarray, ks: tuple[int, ...] | np.ndarray) -> np.ndarray:
    """Fraction of queries whose rank is <= K, for each K: ``[Q], [n_k] -> [n_k]``."""
    ranks = np.asarray(ranks)
    return (ranks[None, :] <= np.asarray(ks)[:, None]).mean(axis=1)


def chance_recall_at(relevant: np.ndarray, ks: tuple[int, ...] | np.ndarray) -> np.ndarray:
    """Expected R@K of scores drawn at random (no ties): for a query with m right answers among C,
    1 - P(none of the m in a random top K) = 1 - prod_{j<K} (C - m - j) / (C - j).
    ``relevant [Q, C]`` bool -> ``[n_k]``."""
    relevant = np.asarray(relevant, dtype=bool)
    ks = np.asarray(ks, dtype=np.int64)
    n = relevant.shape[1]
    m, queries = np.unique(relevant.sum(axis=1), return_counts=True)  # queries share the curve of their m
    j = np.arange(min(int(ks.max()), n))
    miss = np.cumprod(np.clip((n - m[:, None] - j[None, :]) / (n - j[None, :]), 0.0, None), axis=1)
    hit = 1 - miss[:, np.minimum(ks, n) - 1]  # [len(m), n_k]
    return (hit * queries[:, None]).sum(axis=0) / queries.sum()


def retrieval_metrics(similarity: np.ndarray, relevant: np.ndarray | None = None, ks: tuple[int, ...] = KS
                      ) -> dict[str, float]:
    """``R@K`` (fractions) for each K, ``MedR`` and ``MeanR`` (1-based ranks), ``chance_R@K`` (what
    random scores would get), ``queries`` and ``candidates``, of ``similarity [Q, C]``: row i scores
    query i against every candidate. See the module docstring for ties and several right answers."""
    similarity = np.asarray(similarity, dtype=np.float64)
    ranks = answer_ranks(similarity, relevant)
    relevant = _relevance(similarity, relevant)
    result: dict[str, float] = {f"R@{k}": float(r) for k, r in zip(ks, recall_at(ranks, ks))}
    result["MedR"] = float(np.median(ranks))
    result["MeanR"] = float(ranks.mean())
    result.update({f"chance_R@{k}": float(r) for k, r in zip(ks, chance_recall_at(relevant, ks))})
    result["queries"], result["candidates"] = int(similarity.shape[0]), int(similarity.shape[1])
    return result
