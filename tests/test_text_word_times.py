"""Sentences from raw ASR (issue 16): word times inside cues (YouTube's inline tags, JSON word
lists) split an unpunctuated stream at the speaker's pauses and at the length cap."""

import json

import pytest

from videobert.text import Cue, Word, read_transcript, split_sentences
from videobert.text.webvtt import spoken_seconds

# A YouTube auto-caption track as YouTube writes it: rolling cues (each repeats the previous line),
# 10 ms cues showing only the repeated line, word start times inline, no punctuation.
YOUTUBE = """WEBVTT
Kind: captions
Language: en

00:00:00.030 --> 00:00:02.810 align:start position:0%
 
hey<00:00:00.480><c> guys</c><00:00:00.780><c> welcome</c><00:00:01.020><c> back</c>

00:00:02.810 --> 00:00:02.820 align:start position:0%
hey guys welcome back
 

00:00:02.820 --> 00:00:05.630 align:start position:0%
hey guys welcome back
today<00:00:03.210><c> we</c><00:00:03.419><c> make</c><00:00:03.600><c> pancakes</c>

00:00:05.630 --> 00:00:05.640 align:start position:0%
today we make pancakes
 

00:00:05.640 --> 00:00:08.000 align:start position:0%
today we make pancakes
first<00:00:05.900><c> crack</c><00:00:06.100><c> the</c><00:00:06.300><c> eggs</c><00:00:06.700><c> into</c><00:00:06.900><c> a</c><00:00:07.000><c> bowl</c>
"""


def test_youtube_rolling_track_splits_at_the_pauses_between_words(tmp_path):
    (tmp_path / "yt.vtt").write_text(YOUTUBE)
    cues = read_transcript(tmp_path / "yt.vtt")
    words = [w.text for c in cues for w in c.words]
    assert words == "hey guys welcome back today we make pancakes first crack the eggs into a bowl".split()  # no repeats
    # "back" starts at 1.02 s; it lasts as long as it takes to say, not until the next line at 2.82 s
    back = cues[0].words[-1]
    assert back.start == pytest.approx(1.02) and back.end == pytest.approx(1.02 + spoken_seconds("back"))
    sentences = split_sentences(cues, max_pause=1.0)
    assert [s.text for s in sentences] == ["hey guys welcome back", "today we make pancakes",
                                           "first crack the eggs into a bowl"]
    assert sentences[1].start == pytest.approx(2.82) and sentences[1].end == pytest.approx(3.6 + spoken_seconds("pancakes"))
    # words said back to back stay together: the gap between "the" and "eggs" is no pause
    assert len(split_sentences(cues, max_pause=0.5)) == 3


def test_json_word_lists_split_at_pauses_inside_and_between_segments(tmp_path):
    stream = [("now", 0.0, 0.3), ("whisk", 0.35, 0.8), ("the", 0.85, 1.0), ("eggs", 1.05, 1.5),
              ("then", 3.0, 3.3), ("add", 3.35, 3.6), ("flour", 3.65, 4.1)]
    (tmp_path / "words.json").write_text(json.dumps({"words": [{"word": w, "start": a, "end": b} for w, a, b in stream]}))
    assert [s.text for s in split_sentences(read_transcript(tmp_path / "words.json"))] == ["now whisk the eggs", "then add flour"]
    # Whisper: one segment with its word times, the pause inside it
    whisper = {"segments": [{"start": 0.0, "end": 4.1, "text": " now whisk the eggs then add flour",
                             "words": [{"word": w, "start": a, "end": b} for w, a, b in stream]}]}
    (tmp_path / "whisper.json").write_text(json.dumps(whisper))
    sentences = split_sentences(read_transcript(tmp_path / "whisper.json"))
    assert [(s.text, s.start, s.end) for s in sentences] == [("now whisk the eggs", 0.0, 1.5), ("then add flour", 3.0, 4.1)]


def test_the_length_cap_cuts_where_the_speaker_paused_most():
    # 30 words, 0.4 s apart, no punctuation; a 0.5 s breath after word 13 (below max_pause) and a
    # shorter one after word 5 (in the first half of the run: too early to cut there)
    words, t = [], 0.0
    for i in range(30):
        words.append(Word(t, t + 0.3, f"w{i}"))
        t += 0.4 + (0.5 if i == 13 else 0.3 if i == 5 else 0.0)
    sentences = split_sentences([Cue(0.0, t, " ".join(w.text for w in words), tuple(words))], max_words=20)
    assert [len(s.text.split()) for s in sentences] == [14, 16]
    assert sentences[0].text.endswith("w13") and sentences[1].text.startswith("w14")
    # evenly spaced words: the cut falls exactly at the cap
    even = tuple(Word(i * 0.4, i * 0.4 + 0.3, f"w{i}") for i in range(30))
    assert [len(s.text.split()) for s in split_sentences([Cue(0.0, 12.0, "", even)], max_words=20)] == [20, 10]


def test_the_punctuator_still_decides_first(tmp_path):
    class Periods:
        def punctuate(self, words):
            return [w + "." if w in ("guys", "pancakes") else w for w in words]

    (tmp_path / "yt.vtt").write_text(YOUTUBE)
    sentences = split_sentences(read_transcript(tmp_path / "yt.vtt"), punctuator=Periods(), max_pause=10.0)
    assert [s.text for s in sentences] == ["hey guys.", "welcome back today we make pancakes.",
                                           "first crack the eggs into a bowl"]


def test_a_youtube_track_becomes_several_corpus_sentences(tmp_path):
    import numpy as np

    from videobert.corpus import CorpusConfig, build_corpus
    from videobert.corpus.store import CorpusSplit

    (tmp_path / "yt.vtt").write_text(YOUTUBE)
    times = np.stack([np.arange(6) * 1.5, np.arange(6) * 1.5 + 1.5], axis=1)
    build_corpus([("yt", np.arange(6), times, tmp_path / "yt.vtt")], tmp_path / "corpus",
                 CorpusConfig(heldout_fraction=0.0, num_visual_words=9))
    assert len(CorpusSplit(tmp_path / "corpus", "train").sentences) == 3
