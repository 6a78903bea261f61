"""Transcript readers on real-format files written here: YouTube auto-captions, SRT with overlaps,
JSON from ASR services, and broken files whose errors must name the file and line."""

import json

import pytest

from videobert.text import Cue, TranscriptError, read_transcript

YOUTUBE_VTT = """WEBVTT
Kind: captions
Language: en

00:00:00.000 --> 00:00:02.590 align:start position:0%
 
hello<00:00:00.400><c> everyone</c><00:00:00.800><c> welcome</c>

00:00:02.590 --> 00:00:02.600 align:start position:0%
hello everyone welcome
 

00:00:02.600 --> 00:00:05.000 align:start position:0%
hello everyone welcome
today<00:00:03.000><c> we</c><00:00:03.500><c.colorE5E5E5> make</c><00:00:04.000><c> bread</c>

00:00:05.000 --> 00:00:05.010 align:start position:0%
today we make bread
 

00:00:05.010 --> 00:00:09.000 align:start position:0%
today we make bread
first<00:00:07.500><c> mix</c><00:00:08.000><c> the</c><00:00:08.500><c> flour</c>
"""


def write(tmp_path, name, text, encoding="utf-8", newline="\n"):
    path = tmp_path / name
    path.write_bytes(text.replace("\n", newline).encode(encoding))
    return path


def test_youtube_rolling_captions_give_each_word_once_with_its_time(tmp_path):
    cues = read_transcript(write(tmp_path, "yt.vtt", YOUTUBE_VTT))
    words = [w for cue in cues for w in cue.words]
    assert [w.text for w in words] == "hello everyone welcome today we make bread first mix the flour".split()
    assert [c.text for c in cues] == ["hello everyone welcome", "today we make bread", "first mix the flour"]
    starts = {w.text: w.start for w in words}
    assert starts["hello"] == 0.0 and starts["everyone"] == 0.4 and starts["make"] == 3.5 and starts["first"] == 5.01
    assert words[-1].end == 9.0
    assert all(a.end <= b.start + 1e-9 for a, b in zip(words, words[1:]))


def test_rolling_without_word_timings_is_detected(tmp_path):
    text = "WEBVTT\n\n00:01.000 --> 00:03.000\nfirst line here\n\n00:03.000 --> 00:05.000\nfirst line here\nsecond line now\n\n" \
           "00:05.000 --> 00:07.000\nsecond line now\nthird one\n"
    cues = read_transcript(write(tmp_path, "roll.vtt", text))
    assert [c.text for c in cues] == ["first line here", "second line now", "third one"]


def test_plain_webvtt_with_notes_styles_identifiers_and_markup(tmp_path):
    text = """WEBVTT - a title

NOTE this is a comment
spanning lines

STYLE
::cue { color: red }

intro
00:01.000 --> 00:02.500 line:0
<v Roger>Hello &amp; <b>welcome</b>!

1:02:03.250 --> 1:02:04.000
Late cue
"""
    cues = read_transcript(write(tmp_path, "plain.vtt", text, newline="\r\n"))
    assert cues == [Cue(1.0, 2.5, "Hello & welcome!"), Cue(3723.25, 3724.0, "Late cue")]


def test_srt_with_overlaps_unsorted_empty_cues_bom_crlf_and_markup(tmp_path):
    text = """1
00:00:01,000 --> 00:00:04,000
<i>First</i> cue
spans two lines

3
00:00:06,000 --> 00:00:07,000 X1:100 X2:200 Y1:10 Y2:20
{\\an8}Third

2
00:00:03,500 --> 00:00:05,000
Second overlaps the first

4
00:00:08,000 --> 00:00:09,000
<i></i>
"""
    cues = read_transcript(write(tmp_path, "subs.srt", "\ufeff" + text, newline="\r\n"))
    assert [c.text for c in cues] == ["First cue spans two lines", "Second overlaps the first", "Third"]
    assert [(c.start, c.end) for c in cues] == [(1.0, 3.5), (3.5, 5.0), (6.0, 7.0)]


def test_duration_drops_and_clips_cues_past_the_end(tmp_path):
    cues = read_transcript(write(tmp_path, "yt.vtt", YOUTUBE_VTT), duration=8.2)
    assert cues[-1].end == 8.2 and all(w.end <= 8.2 for w in cues[-1].words)
    assert [w.text for w in cues[-1].words][-1] == "flour" and cues[-1].words[-1].start == 8.2
    assert [c.text for c in read_transcript(write(tmp_path, "yt.vtt", YOUTUBE_VTT), duration=4.0)] == ["hello everyone welcome", "today we make bread"]


def test_json_cue_level_word_level_and_whisper(tmp_path):
    cues = [{"start": 2.0, "end": 3.0, "text": "second"}, {"start": 0.5, "end": 1.5, "text": " first "}]
    assert [c.text for c in read_transcript(write(tmp_path, "a.json", json.dumps(cues)))] == ["first", "second"]
    words = {"words": [{"word": "hi", "start": 0.0, "end": 0.2}, {"word": "there", "start": 0.3, "end": 0.6}]}
    got = read_transcript(write(tmp_path, "b.json", json.dumps(words)))
    assert [(c.start, c.end, c.text) for c in got] == [(0.0, 0.2, "hi"), (0.3, 0.6, "there")]
    whisper = {"text": "x", "segments": [{"start": 0, "end": 2, "text": " Cut it.",
                                          "words": [{"word": " Cut", "start": 0.1, "end": 0.5}, {"word": " it.", "start": 0.6, "end": 1.0}]}]}
    (cue,) = read_transcript(write(tmp_path, "c.json", json.dumps(whisper)))
    assert cue.text == "Cut it." and [(w.text, w.start) for w in cue.words] == [("Cut", 0.1), ("it.", 0.6)]


@pytest.mark.parametrize(
    "name, text, where, words",
    [
        ("a.vtt", "WEBVTT\n\n00:01.000 --> 00:02.000\nok\n\n00:03.000 --> 00:0x.000\nbad\n", ":6:", "bad timestamp"),
        ("b.vtt", "WEBVTT\n\n00:01.000 --> 00:02.000\nok\n\njust text\nno timing\n", ":6:", "timing line"),
        ("c.vtt", "hello\n\n00:01.000 --> 00:02.000\nok\n", ":1:", "WEBVTT"),
        ("d.vtt", "WEBVTT\n\n00:05.000 --> 00:02.000\nbackwards\n", ":3:", "before start"),
        ("e.vtt", "WEBVTT\n\n00:01.000 --> 00:02.000\n<00:01.500><c>x</c><01:75.000>\n", ":4:", "bad timestamp"),
        ("f.srt", "1\n00:00:01,000 --> 00:00:02,000\nok\n\n2\nmissing timing\n", ":6:", "no timing line"),
        ("g.srt", "1\n00:00:01,000 --> \nno end\n", ":2:", "no end time"),
        ("h.json", '[{"start": 0, "end": 1, "text": "a"},\n {"start": 1, "end": 2, "text": "b"}\n', ":3:", "not valid JSON"),
        ("i.json", '[{"start": 0, "end": 1, "text": "a"}, {"start": "1", "end": 2, "text": "b"}]', "[1].start", "number of seconds"),
        ("j.json", '{"segments": [{"start": 0, "end": 1}]}', "segments[0]", "'text'"),
        ("k.srt", "WEBVTT\n\n00:01.000 --> 00:02.000\nhi\n", ":1:", "looks like 'vtt'"),
    ],
)
def test_malformed_files_name_file_and_line(tmp_path, name, text, where, words):
    path = write(tmp_path, name, text)
    with pytest.raises(TranscriptError) as info:
        read_transcript(path)
    message = str(info.value)
    assert str(path) in message and where in message and words in message


def test_invalid_utf8_names_the_line(tmp_path):
    path = tmp_path / "bad.srt"
    path.write_bytes(b"1\n00:00:01,000 --> 00:00:02,000\nfine\n\n2\n00:00:03,000 --> 00:00:04,000\ncaf\xe9\n")
    with pytest.raises(TranscriptError, match=r"bad\.srt:7: not UTF-8"):
        read_transcript(path)


def test_empty_and_unknown_extension(tmp_path):
    assert read_transcript(write(tmp_path, "empty.srt", "")) == []
    assert read_transcript(write(tmp_path, "header_only.vtt", "WEBVTT\n")) == []
    assert [c.text for c in read_transcript(write(tmp_path, "captions.txt", YOUTUBE_VTT))][0] == "hello everyone welcome"
