"""Top-k metrics against hand-computed values."""

import math

import numpy as np
import pytest

from videobert.tasks.metrics import accuracy_at_k, classification_report, rank_of_labels, top_k


def test_ranks_by_hand():
    scores = np.array([[0.1, 0.9, 0.5],    # label 2 -> one above it: rank 1
                       [0.3, 0.2, 0.1],    # label 0 -> rank 0
                       [0.5, 0.5, 0.5],    # all tied, label 2 -> two earlier ties: rank 2
                       [0.2, 0.7, 0.7]])   # label 1, tie with 2 (later) -> rank 0
    labels = np.array([2, 0, 2, 1])
    assert rank_of_labels(scores, labels).tolist() == [1, 0, 2, 0]
    assert top_k(scores, 2).tolist() == [[1, 2], [0, 1], [0, 1], [1, 2]]
    assert accuracy_at_k(scores, labels, (1, 2, 3)) == {1: 0.5, 2: 0.75, 3: 1.0}


def test_ranks_agree_with_top_k_lists():
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 4, size=(50, 7)).astype(float)  # many ties
    labels = rng.integers(0, 7, size=50)
    ranks = rank_of_labels(scores, labels)
    order = top_k(scores, 7)
    assert [int(np.where(order[i] == labels[i])[0][0]) for i in range(50)] == ranks.tolist()


def test_classification_report_by_hand():
    names = ["cut", "add", "stir", "fry", "boil", "bake"]
    ranks = np.array([0, 3, 0, 6, 2, 5])
    labels = np.array([0, 0, 1, 1, 1, 2])  # cut: ranks 0,3; add: 0,6,2; stir: 5
    report = classification_report(ranks, labels, names)
    assert report.count == 6
    assert report.top1 == pytest.approx(2 / 6)
    assert report.top5 == pytest.approx(4 / 6)
    assert set(report.per_class) == {"cut", "add", "stir"}
    assert vars(report.per_class["cut"]) == {"count": 2, "top1": 0.5, "top5": 1.0}
    assert report.per_class["add"].top1 == pytest.approx(1 / 3) and report.per_class["add"].top5 == pytest.approx(2 / 3)
    assert vars(report.per_class["stir"]) == {"count": 1, "top1": 0.0, "top5": 0.0}
    assert report.mean_class_top1 == pytest.approx((0.5 + 1 / 3 + 0) / 3)
    assert report.mean_class_top5 == pytest.approx((1 + 2 / 3 + 0) / 3)
    assert report.to_dict()["per_class"]["cut"]["count"] == 2


def test_empty_and_bad_inputs():
    report = classification_report(np.zeros(0, int), np.zeros(0, int), ["a"])
    assert report.count == 0 and math.isnan(report.top1)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\)"):
        rank_of_labels(np.zeros((1, 2)), np.array([2]))
    with pytest.raises(ValueError, match="scores must be"):
        rank_of_labels(np.zeros(3), np.array([0]))
