"""Building a corpus: segments, splits, the on-disk format, bad input, resuming, and the CLI."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from videobert.corpus import CorpusConfig, CorpusSplit, build_corpus, fixed_word_ranges, sentence_word_ranges
from clips import clip_times

NUM_WORDS = 144  # the demo's 12**2 tree



VTT = """WEBVTT

00:00.000 --> 00:04.400
cut the onion.

00:06.000 --> 00:09.000
fry it.
"""



@pytest.fixture
def videos(tmp_path):
    (tmp_path / "a.vtt").write_text(VTT)
    (tmp_path / "c.srt").write_text("1\n00:00:01,000 --> broken\nhello\n")
    rng = np.random.default_rng(0)
    return [
        ("a", (np.arange(20) * 7) % NUM_WORDS, clip_times(20), tmp_path / "a.vtt"),
        ("b", rng.integers(0, NUM_WORDS, 40), clip_times(40), None),
        ("c", rng.integers(0, NUM_WORDS, 10), clip_times(10), tmp_path / "c.srt"),
        ("d", np.array([1, 2, NUM_WORDS]), clip_times(3), None),  # a visual word out of range: a bad video
    ]


def build(videos, out, tokenizer, **config):
    return build_corpus(videos, out, CorpusConfig(**{"num_visual_words": NUM_WORDS, "heldout_fraction": 0.0, **config}), tokenizer)


def test_segments_sentences_and_video_only_data(tmp_path, videos, tokenizer):
    info = build(videos, tmp_path / "corpus", tokenizer)
    assert info["videos_failed"] == ["d"] and info["transcript_errors"] == ["c"]
    train = CorpusSplit(tmp_path / "corpus", "train")
    assert train.video_ids == ["a", "b", "c"]
    assert train.words.dtype == np.int32 and isinstance(train.words, np.memmap)
    np.testing.assert_array_equal(train.words[:20], (np.arange(20) * 7) % NUM_WORDS)
    # sentence 0 spans 0-4.4 s: clips centred at 0.75, 2.25, 3.75; sentence 1 spans 6-9 s: clips 4 and 5
    np.testing.assert_array_equal(train.sentences[:, [0, 3, 4]], [[0, 0, 3], [0, 4, 6]])
    np.testing.assert_allclose(train.sentence_times, [[0.0, 4.4], [6.0, 9.0]])
    texts = [tokenizer.decode(train.text_ids[lo:hi]) for lo, hi in train.sentences[:, 1:3]]
    assert texts == ["cut the onion.", "fry it."]
    # every video gives 16-word segments for the video-only stream, including the one whose transcript broke
    np.testing.assert_array_equal(train.chunks, [[0, 0, 16], [0, 16, 20], [1, 20, 36], [1, 36, 52], [1, 52, 60], [2, 60, 70]])
    np.testing.assert_array_equal(train.videos, [[0, 20, 0, 2], [20, 60, 2, 2], [60, 70, 2, 2]])
    manifest = [json.loads(line) for line in (tmp_path / "corpus" / "manifest.jsonl").read_text().splitlines()]
    by_key = {r["key"]: r for r in manifest}
    assert by_key["d"]["status"] == "failed" and "visual words must lie in" in by_key["d"]["reason"]
    assert by_key["c"]["transcript"] == "error" and "c.srt:2" in by_key["c"]["transcript_error"]


def test_heldout_split_is_stable_and_order_independent(tmp_path, tokenizer):
    videos = [(f"v{i:03d}", np.arange(5) % NUM_WORDS, clip_times(5), None) for i in range(60)]
    info = build(videos, tmp_path / "one", tokenizer, heldout_fraction=0.3)
    build(videos[::-1], tmp_path / "two", tokenizer, heldout_fraction=0.3)
    held = CorpusSplit(tmp_path / "one", "heldout").video_ids
    assert held == CorpusSplit(tmp_path / "two", "heldout").video_ids
    assert 5 < len(held) < 35 and info["splits"]["train"]["videos"] + len(held) == 60
    assert not set(held) & set(CorpusSplit(tmp_path / "one", "train").video_ids)


def test_cues_in_memory_and_duration_clipping(tmp_path, tokenizer):
    from videobert.text import Cue

    cues = [Cue(0.0, 2.0, "stir the soup."), Cue(40.0, 45.0, "past the end of the video.")]
    build([("v", np.zeros(4, np.int64), clip_times(4), cues)], tmp_path / "c", tokenizer)
    train = CorpusSplit(tmp_path / "c", "train")
    assert tokenizer.decode(train.text_ids[:]) == "stir the soup."


def test_killed_build_resumes_without_redoing_finished_videos(tmp_path, videos, tokenizer):
    def dies_after_two():
        yield from videos[:2]
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        build(dies_after_two(), tmp_path / "corpus", tokenizer)
    assert not (tmp_path / "corpus" / "corpus.json").exists()
    manifest = tmp_path / "corpus" / "manifest.jsonl"
    assert len(manifest.read_text().splitlines()) == 2
    info = build(videos, tmp_path / "corpus", tokenizer)
    assert len(manifest.read_text().splitlines()) == 4  # only c and d were processed the second time
    reference = build(videos, tmp_path / "fresh", tokenizer)
    assert info["splits"] == reference["splits"]
    for name in ("words", "text_ids", "sentences", "chunks", "videos"):
        np.testing.assert_array_equal(getattr(CorpusSplit(tmp_path / "corpus"), name), getattr(CorpusSplit(tmp_path / "fresh"), name))


def test_unfinished_corpus_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a finished corpus"):
        CorpusSplit(tmp_path)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(0.2, 3.0), min_size=0, max_size=40),
    st.lists(st.tuples(st.floats(0.0, 4.0), st.floats(0.0, 6.0)), min_size=1, max_size=12),
)
def test_sentence_segments_hold_exactly_the_clips_centred_in_their_span(clip_lengths, gaps_and_lengths):
    ends = np.cumsum(clip_lengths)
    times = np.stack([ends - np.asarray(clip_lengths), ends], axis=1).reshape(-1, 2)
    spans, t = [], 0.0
    for gap, length in gaps_and_lengths:
        spans.append((t + gap, t + gap + length))
        t = spans[-1][1]
    lo, hi = sentence_word_ranges(np.array(spans), times)
    centres = times.mean(axis=1)
    for (start, end), a, b in zip(spans, lo, hi):
        inside = np.flatnonzero((centres >= start) & (centres < end))
        assert list(range(a, b)) == inside.tolist()
    assert np.all(hi[:-1] <= lo[1:])


@given(st.integers(0, 200), st.integers(1, 32))
def test_fixed_segments_cover_every_word_once(n, size):
    lo, hi = fixed_word_ranges(n, size)
    assert np.concatenate([np.arange(a, b) for a, b in zip(lo, hi)] or [np.zeros(0, int)]).tolist() == list(range(n))
    assert np.all(hi - lo <= size) and np.all(hi[:-1] - lo[:-1] == size)


def test_corpus_build_cli(tmp_path):
    from videobert.cli import main
    from videobert.features.store import write_video_features
    from videobert.visual_words import HierarchicalKMeans

    rng = np.random.default_rng(1)
    features_dir, transcripts = tmp_path / "features", tmp_path / "transcripts"
    transcripts.mkdir()
    for i in range(4):
        write_video_features(features_dir, f"vid{i}", rng.normal(size=(30, 1024)).astype(np.float32), clip_times(30))
    (transcripts / "vid0.vtt").write_text(VTT)
    (transcripts / "vid1.json").write_text('[{"start": 1, "end": 5, "text": "now whisk the eggs"}]')
    (transcripts / "vid2.srt").write_text("not an srt file\n")
    model = HierarchicalKMeans(levels=2, branching=3, seed=0)
    model.fit(rng.normal(size=(200, 1024)).astype(np.float32))
    model.save(tmp_path / "words.safetensors")
    rc = main(["corpus", "build", "--features", str(features_dir), "--visual-words", str(tmp_path / "words.safetensors"),
               "--transcripts", str(transcripts), "--out", str(tmp_path / "corpus"), "--heldout-fraction", "0"])
    assert rc == 0
    train = CorpusSplit(tmp_path / "corpus", "train")
    assert train.video_ids == ["vid0", "vid1", "vid2", "vid3"] and train.num_visual_words == 9
    assert len(train.sentences) == 3 and train.words.max() < 9 and len(train.words) == 120
    assert json.loads((tmp_path / "corpus" / "corpus.json").read_text())["transcript_errors"] == ["vid2"]
