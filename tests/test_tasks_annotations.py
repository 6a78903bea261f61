"""YouCook II annotation reading, vocabularies and verb/object extraction."""

import json

import numpy as np
import pytest

from videobert.tasks.annotations import (Segment, extract_verb_object, read_word_list, read_youcook_annotations,
                                         segment_labels)
from videobert.tasks.sources import load_video_words, save_video_words, segment_words

VERBS = ["cut", "add", "slice", "chop", "stir", "fry"]
OBJECTS = ["onion", "tomato", "olive oil", "oil", "berry", "pan", "bread"]


def write_youcook(path, database):
    path.write_text(json.dumps({"database": database}))
    return path


def test_reads_youcook_format_with_subsets(tmp_path):
    path = write_youcook(tmp_path / "ann.json", {
        "vidA": {"subset": "training", "duration": 120.5, "recipe_type": "101", "video_url": "x",
                 "annotations": [{"id": 0, "segment": [3, 9], "sentence": "Cut the onions."},
                                 {"id": 1, "segment": [10, 20.5], "sentence": "add oil", "verb": "Add", "object": "oil"}]},
        "vidB": {"subset": "validation", "duration": 60, "annotations": [{"segment": [0, 5], "sentence": "stir"}]},
    })
    segments = read_youcook_annotations(path)
    assert [(s.video_id, s.start, s.end) for s in segments] == [("vidA", 3.0, 9.0), ("vidA", 10.0, 20.5), ("vidB", 0.0, 5.0)]
    assert segments[0].sentence == "Cut the onions." and segments[0].duration == 120.5 and segments[0].subset == "training"
    assert segments[1].verb == "Add"
    validation = read_youcook_annotations(path, subset="validation")
    assert [s.video_id for s in validation] == ["vidB"]


@pytest.mark.parametrize("database, message", [
    ({"v": {"annotations": [{"segment": [1], "sentence": "x"}]}}, "'v', annotation 0"),
    ({"v": {"annotations": [{"segment": [5, 2], "sentence": "x"}]}}, "start <= end"),
    ({"v": {"no": []}}, "'annotations' list"),
])
def test_malformed_annotations_name_the_place(tmp_path, database, message):
    path = write_youcook(tmp_path / "bad.json", database)
    with pytest.raises(ValueError, match=message) as info:
        read_youcook_annotations(path)
    assert str(path) in str(info.value)


def test_not_a_database(tmp_path):
    path = tmp_path / "x.json"
    path.write_text("[1, 2]")
    with pytest.raises(ValueError, match="database"):
        read_youcook_annotations(path)


def test_word_list(tmp_path):
    path = tmp_path / "verbs.txt"
    path.write_text("# verbs\nCut\n\nolive  oil  # two words\nadd\n")
    assert read_word_list(path) == ["cut", "olive oil", "add"]
    path.write_text("cut\nadd\ncut\n")
    with pytest.raises(ValueError, match=r"verbs.txt:3: 'cut' already listed on line 1"):
        read_word_list(path)


@pytest.mark.parametrize("sentence, expected", [
    ("Cut the onions into small pieces.", ("cut", "onion")),
    ("chopped tomatoes go in the pan", ("chop", "tomato")),
    ("slicing the bread", ("slice", "bread")),
    ("Add olive oil to the pan", ("add", "olive oil")),  # the longest (multi-word) entry wins
    ("heat the pan and add oil", ("add", "oil")),  # the object after the verb is preferred
    ("stir", ("stir", None)),
    ("the berries on top", (None, "berry")),
    ("nothing known here", (None, None)),
])
def test_extract_verb_object(sentence, expected):
    assert extract_verb_object(sentence, VERBS, OBJECTS) == expected


def test_given_labels_override_extraction():
    seg = Segment("v", 0, 1, "cut the onion", verb="Fry", object="unknown thing")
    assert segment_labels(seg, VERBS, OBJECTS) == ("fry", None)


def test_segment_words_by_clip_centre():
    times = np.array([[0, 1.5], [1.5, 3], [3, 4.5], [4.5, 6]])
    words = np.array([7, 8, 9, 10])
    assert segment_words(words, times, 1.0, 4.0).tolist() == [8, 9]  # centres 2.25, 3.75
    assert segment_words(words, times, 0.8, 0.9).tolist() == []
    with pytest.raises(ValueError, match="4 words but 3 clip times"):
        segment_words(words, times[:3], 0, 1)


def test_video_words_table_round_trip(tmp_path):
    table = {"a": (np.array([1, 2]), np.array([[0, 1.5], [1.5, 3]])), "b/c": (np.array([5]), np.array([[0, 1.5]]))}
    save_video_words(tmp_path / "w.npz", table)
    back = load_video_words(tmp_path / "w.npz")
    assert sorted(back) == ["a", "b/c"]
    for key in table:
        np.testing.assert_array_equal(back[key][0], table[key][0])
        np.testing.assert_array_equal(back[key][1], table[key][1])
