"""caption_metrics is pycocoevalcap's COCO caption evaluation, number for number (needs Java, as CI installs)."""

import os

import pytest

from videobert.tasks.captioning import METRICS, JavaNotFoundError, caption_metrics, caption_metrics_many

REFERENCES = {
    "v1#0": ["Spread margarine on two slices of white bread.", "Butter the BREAD, then toast it!"],
    "v1#1": ["Cut the onion into thin rings.", "slice an onion", "Chop the onion finely; set aside."],
    "v2#0": ["Add salt & pepper to taste."],
    "v2#1": ["Pour the olive-oil into a hot pan...", "heat oil in a pan"],
    "v3#0": ["Whisk the eggs (about 2 minutes)."],
}
CANDIDATES = {"v1#0": "spread butter on the bread", "v1#1": "Cut the onion.", "v2#0": "add salt",
              "v2#1": "pour oil in the pan", "v3#0": "whisk the eggs"}
WITH_EMPTY = {**CANDIDATES, "v1#1": "", "v3#0": "Whisk, whisk!"}


def coco_evaluation(references, candidate_sets):
    """pycocoevalcap called directly, as its COCOEvalCap.evaluate does (SPICE left out)."""
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.meteor.meteor import Meteor
    from pycocoevalcap.rouge.rouge import Rouge
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    tokenizer, meteor = PTBTokenizer(), Meteor()
    gts = tokenizer.tokenize({k: [{"caption": c} for c in v] for k, v in references.items()})
    out = {}
    for name, candidates in candidate_sets.items():
        res = tokenizer.tokenize({k: [{"caption": c}] for k, c in candidates.items()})
        bleu, _ = Bleu(4).compute_score(gts, res)
        out[name] = {"BLEU-1": bleu[0], "BLEU-2": bleu[1], "BLEU-3": bleu[2], "BLEU-4": bleu[3],
                     "METEOR": meteor.compute_score(gts, res)[0], "ROUGE-L": Rouge().compute_score(gts, res)[0],
                     "CIDEr": Cider().compute_score(gts, res)[0]}
    return out


@pytest.fixture(scope="module")
def expected():
    return coco_evaluation(REFERENCES, {"plain": CANDIDATES, "with_empty": WITH_EMPTY})


def test_equals_pycocoevalcap(expected):
    got = caption_metrics(REFERENCES, CANDIDATES)
    assert list(got) == list(METRICS)
    for metric in METRICS:
        assert got[metric] == pytest.approx(expected["plain"][metric], abs=1e-9), metric
    assert 0 < got["BLEU-4"] < got["BLEU-1"] < 1 and got["CIDEr"] > 0


def test_several_sets_at_once_and_an_empty_candidate(expected):
    got = caption_metrics_many(REFERENCES, {"plain": CANDIDATES, "with_empty": WITH_EMPTY})
    for name in ("plain", "with_empty"):
        for metric in METRICS:
            assert got[name][metric] == pytest.approx(expected[name][metric], abs=1e-9), (name, metric)
    assert got["with_empty"]["CIDEr"] < got["plain"]["CIDEr"]
    perfect = caption_metrics(REFERENCES, {k: v[0] for k, v in REFERENCES.items()})
    assert perfect["BLEU-1"] == pytest.approx(1.0) and perfect["ROUGE-L"] == pytest.approx(1.0)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match=r"no candidate for \['v3#0'\]"):
        caption_metrics(REFERENCES, {k: v for k, v in CANDIDATES.items() if k != "v3#0"})
    with pytest.raises(ValueError, match="segment 'v2#0' needs a list of non-empty reference"):
        caption_metrics({**REFERENCES, "v2#0": []}, CANDIDATES)
    with pytest.raises(ValueError, match="segment 'v2#0' needs a list of non-empty reference"):
        caption_metrics({**REFERENCES, "v2#0": ["add salt", "  "]}, CANDIDATES)
    with pytest.raises(ValueError, match="no segments"):
        caption_metrics({}, {})


def test_without_java_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # a PATH with no java on it
    with pytest.raises(JavaNotFoundError, match="default-jre-headless"):
        caption_metrics(REFERENCES, CANDIDATES)
    assert "java" not in os.listdir(tmp_path)
