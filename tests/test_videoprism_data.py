"""VideoPrism's data: the clip store on real video files (PyAV), its join with a corpus, and the
deterministic, shardable, resumable datasets."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from videobert.corpus import CorpusConfig, build_corpus
from videobert.models.videoprism.data import ClipDataset, CorpusClips, PairDataset, spread_frames
from videobert.text import Cue, WordPieceTokenizer
from videobert.utils.fingerprint import StaleOutputError
from videobert.video import read_raw_clips
from videobert.video.clip_store import ClipStore, clip_store_spec, write_clip_store
from videobert.video.synthetic import write_video

FRAMES_PER_CLIP, SIZE = 2, 32


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    """Three short files of other codecs and rates (4.5 s, 3.2 s, 6 s), and a broken one."""
    folder = tmp_path_factory.mktemp("videos")
    paths = [write_video(folder / "a.mp4", "libx264", fps=20, frames=90),
             write_video(folder / "b.webm", "libvpx-vp9", fps=25, frames=80),
             write_video(folder / "c.mp4", "mpeg4", fps=30, frames=180, textured=True)]
    (folder / "broken.mp4").write_bytes(b"not a video at all" * 50)
    return folder, [*paths, str(folder / "broken.mp4")]


@pytest.fixture(scope="module")
def store(videos, tmp_path_factory):
    out = tmp_path_factory.mktemp("store")
    summary = write_clip_store(videos[1], out, FRAMES_PER_CLIP, SIZE)
    assert summary.done == ["a", "b", "c"] and list(summary.failed) == ["broken"]
    return out


@pytest.fixture(scope="module")
def corpus(store, tmp_path_factory):
    """A corpus whose visual words follow the store's clips; video c has no transcript."""
    clip_store = ClipStore(store)
    out = tmp_path_factory.mktemp("corpus")
    inputs = []
    for v, video_id in enumerate(clip_store.video_ids):
        times = clip_store.times(video_id)
        cues = None if video_id == "c" else [Cue(0.2, 2.8, f"{video_id} one."), Cue(3.0, times[-1, 1], f"{video_id} two.")]
        inputs.append((video_id, np.arange(len(times)) % 10, times, cues))
    build_corpus(inputs, out, CorpusConfig(num_visual_words=10, heldout_fraction=0.0), WordPieceTokenizer())
    return out


def test_store_holds_the_decoders_clips_at_the_models_size(videos, store):
    clip_store = ClipStore(store)
    assert clip_store.video_ids == ["a", "b", "c"] and (clip_store.frames_per_clip, clip_store.size) == (2, 32)
    for video_id, path in zip(clip_store.video_ids, videos[1]):
        expected = list(read_raw_clips(path, clip_store_spec(FRAMES_PER_CLIP, SIZE), "pyav"))
        rows = clip_store.rows(video_id)
        assert len(rows) == len(expected)
        np.testing.assert_array_equal(clip_store.frames(rows), np.stack([c.frames for c in expected]))
        np.testing.assert_allclose(clip_store.times(video_id), [(c.start, c.end) for c in expected])
    # the clip grid of feature extraction: 1.5 s clips, the last one partial
    np.testing.assert_allclose(clip_store.times("a")[:, 0], [0.0, 1.5, 3.0])
    assert len(clip_store) == 3 + 3 + 4
    picked = clip_store.frames(np.array([9, 0, 4]))
    np.testing.assert_array_equal(picked[1], clip_store.frames(clip_store.rows("a"))[0])
    with pytest.raises(IndexError, match=r"clip rows must lie in \[0, 10\)"):
        clip_store.frames(np.array([10]))
    with pytest.raises(KeyError, match="'broken' is not in the clip store"):
        clip_store.rows("broken")


def test_store_resumes_and_refuses_other_settings(videos, store, tmp_path):
    again = write_clip_store(videos[1][:3], store, FRAMES_PER_CLIP, SIZE)
    assert again.done == [] and again.skipped == ["a", "b", "c"]
    with pytest.raises(StaleOutputError, match="size: 32 -> 48"):
        write_clip_store(videos[1][:1], store, FRAMES_PER_CLIP, 48)
    with pytest.raises(FileNotFoundError, match="not a clip store"):
        ClipStore(tmp_path)


def test_extract_command_writes_a_clip_store(videos, tmp_path):
    folder, _ = videos
    result = subprocess.run([sys.executable, "-m", "videobert", "extract", "--videos", str(folder), "--out", str(tmp_path / "s"),
                             "--clips", "3", "--size", "16", "--no-progress"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "done 3, failed 1" in result.stdout
    clip_store = ClipStore(tmp_path / "s")
    assert clip_store.frames(clip_store.rows("b")).shape == (3, 3, 16, 16, 3)


def test_corpus_clips_join_the_corpus_to_the_store(corpus, store):
    clips = CorpusClips(corpus, "train", store)
    assert [clips.clips(v) for v in range(3)] == [3, 3, 4]
    frames = clips.frames(2, 1, 3, count=8)
    np.testing.assert_array_equal(frames, ClipStore(store).frames(np.arange(7, 9)).reshape(-1, SIZE, SIZE, 3)[spread_frames(4, 8)])
    assert spread_frames(4, 8).tolist() == [0, 0, 1, 1, 2, 2, 3, 3] and spread_frames(10, 2, 0.0).tolist() == [0, 5]


def test_corpus_clips_refuse_a_store_on_another_clip_grid(videos, corpus, tmp_path):
    write_clip_store(videos[1][:3], tmp_path / "one_second", 2, SIZE, clip_seconds=1.0)
    with pytest.raises(ValueError, match="video 'a': the corpus .* has 3 clips .* the clip store .* 5: were they made"):
        CorpusClips(corpus, "train", tmp_path / "one_second")
    write_clip_store(videos[1][1:2], tmp_path / "only_b", 2, SIZE)
    with pytest.raises(KeyError, match="'a' is not in the clip store"):
        CorpusClips(corpus, "train", tmp_path / "only_b")


def test_datasets_pair_text_with_its_clips_and_cover_every_video(corpus, store):
    clips = CorpusClips(corpus, "train", store)
    pairs = PairDataset(clips, num_frames=4, seed=1)
    tokenizer = WordPieceTokenizer()
    assert len(pairs) == 4  # two sentences of a and of b; c has no transcript
    for example in pairs:
        assert set(example) == {"frames", "text_ids", "seed"} and example["frames"].shape == (4, SIZE, SIZE, 3)
        text = tokenizer.decode(example["text_ids"])
        video_id = text.split()[0]
        sentence = next(s for s in range(4) if tokenizer.decode(clips.corpus.text_ids[clips.corpus.sentences[s, 1]:
                                                                                       clips.corpus.sentences[s, 2]].tolist()) == text)
        _, _, _, lo, hi = clips.corpus.sentences[sentence]
        start = clips.corpus.videos[clips.corpus.video_ids.index(video_id), 0]
        own = ClipStore(store).frames(ClipStore(store).rows(video_id)[lo - start: hi - start]).reshape(-1, SIZE, SIZE, 3)
        assert all(any(np.array_equal(f, g) for g in own) for f in example["frames"])
    windows = ClipDataset(clips, num_frames=4, seed=1)
    assert windows.window == 2 and len(windows) == 2 + 2 + 2  # every video, transcribed or not


@pytest.mark.parametrize("dataset_class", [PairDataset, ClipDataset])
def test_datasets_are_deterministic_shardable_and_resume_exactly(corpus, store, dataset_class):
    clips = CorpusClips(corpus, "train", store)

    def make(rank=0, world=1):
        return dataset_class(clips, num_frames=4, seed=3, rank=rank, world_size=world)

    one = list(make())
    assert [e["seed"] for e in one] == [e["seed"] for e in make()]
    ranks = [list(make(r, 2)) for r in range(2)]
    interleaved = [e for pair in zip(*ranks) for e in pair]
    assert [e["seed"] for e in interleaved] == [e["seed"] for e in one[: len(interleaved)]]
    np.testing.assert_array_equal(interleaved[1]["frames"], one[1]["frames"])
    resumed = make()
    resumed.load_state_dict({"epoch": 0, "position": 2})
    assert [e["seed"] for e in resumed] == [e["seed"] for e in one[2:]]
    later = make()
    later.set_epoch(1)
    assert [e["seed"] for e in later] != [e["seed"] for e in one]
    with pytest.raises(ValueError, match="outside the epoch"):
        make().load_state_dict({"epoch": 0, "position": 99})
