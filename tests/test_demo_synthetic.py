"""The demo's synthetic data: real, decodable videos with narration that says what happens."""

from __future__ import annotations

import dataclasses

import av
import numpy as np
import pytest

from videobert.demo.scenes import OBJECTS, VERBS, Placement, render_frame
from videobert.demo.synthetic import SyntheticConfig, generate_dataset, load_scripts, make_scripts, webvtt

SMALL = SyntheticConfig(n_train=6, n_heldout=3, segments_per_video=(2, 2), segment_seconds=(2.0, 2.5), seed=3)


def _object_centre(frame: np.ndarray, colour: tuple[int, int, int]) -> tuple[float, float, int]:
    """(x, y) centre and pixel count of the pixels of ``colour``."""
    mask = np.all(np.abs(frame.astype(int) - np.array(colour)) < 30, axis=-1)
    ys, xs = np.nonzero(mask)
    return float(xs.mean()), float(ys.mean()), int(mask.sum())


@pytest.mark.parametrize("verb, axis, sign", [("push", 0, 1), ("pull", 0, -1), ("lift", 1, -1), ("drop", 1, 1)])
def test_moving_actions_move_the_object_their_way(verb, axis, sign):
    rest = Placement(0.3 if sign > 0 else 0.7, 0.3 if sign > 0 else 0.7, 0.0)
    colour = OBJECTS["square"][0]
    before = _object_centre(render_frame(96, 96, (64, 64, 64), "square", verb, 0.0, rest), colour)
    after = _object_centre(render_frame(96, 96, (64, 64, 64), "square", verb, 0.5, rest), colour)
    assert sign * (after[axis] - before[axis]) > 96 * 0.2  # 0.6 stage widths per second
    assert abs(after[1 - axis] - before[1 - axis]) < 2


def test_size_spin_and_flash_actions():
    colour = OBJECTS["star"][0]
    area = {t: _object_centre(render_frame(96, 96, (64, 64, 64), "star", "grow", t), colour)[2] for t in (0.1, 0.8)}
    assert area[0.8] > 4 * area[0.1]
    area = {t: _object_centre(render_frame(96, 96, (64, 64, 64), "star", "shrink", t), colour)[2] for t in (0.1, 0.8)}
    assert area[0.1] > 4 * area[0.8]
    turned = [render_frame(96, 96, (64, 64, 64), "star", "spin", t) for t in (0.0, 0.1)]
    assert (turned[0] != turned[1]).any()
    flashing = [_object_centre(render_frame(96, 96, (64, 64, 64), "star", "flash", t), colour)[2] if t < 0.125 else
                int(np.all(render_frame(96, 96, (64, 64, 64), "star", "flash", t) == 64)) for t in (0.05, 0.2)]
    assert flashing[0] > 100 and flashing[1] == 1  # visible, then an empty stage
    wide = render_frame(128, 96, (64, 64, 64), "ring", "push", 0.3)
    assert np.all(wide[:, :16] == 64) and np.all(wide[:, -16:] == 64)  # the object stays in the centre square


def test_scripts_are_deterministic_and_narrate_their_actions():
    first, again = make_scripts(SMALL), make_scripts(SMALL)
    assert [dataclasses.asdict(s) for s in first] == [dataclasses.asdict(s) for s in again]
    other = make_scripts(dataclasses.replace(SMALL, seed=4))
    assert [dataclasses.asdict(s) for s in first] != [dataclasses.asdict(s) for s in other]
    for script in first:
        for a, b in zip(script.segments, script.segments[1:]):
            assert a.end < b.start  # a pause between actions
        for segment in script.segments:
            assert segment.verb in VERBS and segment.noun in OBJECTS
            assert f"{segment.verb} the " in segment.sentence and segment.noun in segment.sentence
            assert segment.description == f"{segment.verb} the {OBJECTS[segment.noun][1]} {segment.noun}"
        assert script.duration > script.segments[-1].end


def test_generated_dataset_is_real_video_and_text(tmp_path):
    from videobert.tasks.annotations import read_word_list, read_youcook_annotations
    from videobert.text import WordPieceTokenizer, read_transcript, split_sentences

    config = dataclasses.replace(SMALL, untranscribed_fraction=0.3)
    data = generate_dataset(tmp_path, config, progress=False)
    train = [s for s in data.scripts if s.split == "train"]
    assert {s.codec for s in data.scripts} >= {"h264", "vp9"} or len({s.codec for s in data.scripts}) >= 2
    for script in data.scripts:
        path = (data.train_videos if script.split == "train" else data.heldout_videos) / script.file_name
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            frames = [f for f in container.decode(video=0)]
            assert (stream.codec_context.width, stream.codec_context.height) == (script.width, script.height)
        assert abs(len(frames) - script.duration * script.fps) <= 2
    assert any(not s.has_transcript for s in train) and any(s.has_transcript for s in train)
    tokenizer = WordPieceTokenizer()
    assert all(s.has_transcript for s in data.scripts if s.split == "heldout")  # narration for the alignment evaluation
    for script in data.scripts:
        vtt = (data.train_transcripts if script.split == "train" else data.heldout_transcripts) / f"{script.video_id}.vtt"
        assert vtt.exists() == script.has_transcript
        if script.has_transcript:
            sentences = split_sentences(read_transcript(vtt))
            narrated = [s for s in sentences if set(s.text.rstrip(".").split()) & set(VERBS)]
            assert len(narrated) == len(script.segments)
            for sentence, segment in zip(narrated, script.segments):
                assert segment.verb in sentence.text and abs(sentence.start - segment.start) < 0.05
    segments = read_youcook_annotations(data.annotations)
    assert len(segments) == sum(len(s.segments) for s in data.scripts if s.split == "heldout")
    assert [s.sentence for s in segments] == [g.description for s in data.scripts if s.split == "heldout" for g in s.segments]
    assert all(s.verb in VERBS and s.object in OBJECTS and s.end > s.start for s in segments)
    for words in (read_word_list(data.verbs), read_word_list(data.objects)):
        assert all(len(ids) == 1 for ids in tokenizer.encode_batch(words))  # one [MASK] each in the prompt
    assert [dataclasses.asdict(s) for s in load_scripts(tmp_path / "scripts.json")] == [dataclasses.asdict(s) for s in data.scripts]
    # a rerun keeps the finished files and writes the same text
    before = {p: p.stat().st_mtime_ns for p in data.train_videos.iterdir()}
    again = generate_dataset(tmp_path, config, progress=False)
    assert {p: p.stat().st_mtime_ns for p in again.train_videos.iterdir()} == before
    narrated = next(s for s in train if s.has_transcript)
    assert webvtt(narrated) == (data.train_transcripts / f"{narrated.video_id}.vtt").read_text()
