"""PretrainingDataset: streams, augmentation, negatives, determinism, sharding, workers, exact resume."""

import numpy as np
import pytest
import torch

from videobert.corpus import CorpusConfig, CorpusSplit, PretrainingDataset, build_corpus
from videobert.text import Cue, WordPieceTokenizer
from videobert.vocab import TEXT_ONLY, VIDEO_ONLY, VIDEO_TEXT

NUM_WORDS = 144
CLIPS = 40  # video v has visual words v*40 .. v*40+39 in order: strides and origins are visible
NAMES = ["alpha", "bravo", "charlie"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("corpus")
    videos = []
    for v in range(3):
        times = np.stack([np.arange(CLIPS) * 1.5, np.arange(CLIPS) * 1.5 + 1.5], axis=1)
        transcript = None if v == 2 else [Cue(4.0 * i, 4.0 * i + 3.0, f"{NAMES[v]} step {i}.") for i in range(14)]
        videos.append((f"video{v}", v * CLIPS + np.arange(CLIPS), times, transcript))
    build_corpus(videos, out, CorpusConfig(num_visual_words=NUM_WORDS, heldout_fraction=0.0), WordPieceTokenizer())
    return out


def video_of_words(words):
    return {w // CLIPS for w in words}


def video_of_text(ids, tokenizer):
    text = tokenizer.decode(ids)
    return {v for v, name in enumerate(NAMES) if name in text}


def test_examples_follow_the_contract_and_augmentation(corpus):
    tokenizer = WordPieceTokenizer()
    split = CorpusSplit(corpus)
    boundaries = set(split.sentences[:, 1].tolist()) | set(split.sentences[:, 2].tolist())
    examples = list(PretrainingDataset(corpus, seed=3, epoch_length=600))
    assert {e["stream"] for e in examples} == {TEXT_ONLY, VIDEO_ONLY, VIDEO_TEXT}
    concatenated = 0
    for e in examples:
        assert set(e) == {"stream", "text_ids", "visual_words", "aligned", "seed"}
        words = e["visual_words"]
        strides = set(np.diff(words).tolist())
        assert len(strides) <= 1 and strides <= {1, 2, 3, 4, 5}  # one random stride per example
        assert len(video_of_words(words)) <= 1
        if e["stream"] == VIDEO_ONLY:
            assert e["text_ids"] == [] and e["aligned"] == -100 and 1 <= len(words) <= 16
            assert (words[0] % CLIPS) % 16 == 0  # starts at a 16-word segment
        else:
            sentences = tokenizer.decode(e["text_ids"]).count(".")
            assert 1 <= sentences <= 3
            concatenated += sentences > 1
        if e["stream"] == TEXT_ONLY:
            assert words == [] and e["aligned"] == -100
            assert len(video_of_text(e["text_ids"], tokenizer)) == 1
        if e["stream"] == VIDEO_TEXT:
            assert words and e["aligned"] in (0, 1)
            same = video_of_text(e["text_ids"], tokenizer) == video_of_words(words)
            assert same == (e["aligned"] == 1)  # negatives take their text from another video
    text_examples = [e for e in examples if e["stream"] != VIDEO_ONLY]
    assert 0.35 < concatenated / len(text_examples) < 0.65  # concat_prob 0.5
    video_text = [e for e in examples if e["stream"] == VIDEO_TEXT]
    assert 0.38 < np.mean([e["aligned"] == 0 for e in video_text]) < 0.62  # negative_rate 0.5
    assert boundaries  # the corpus has sentences at all


def test_stream_weights_and_negative_rate(corpus):
    only_video = list(PretrainingDataset(corpus, stream_weights=(0, 1, 0), epoch_length=50))
    assert {e["stream"] for e in only_video} == {VIDEO_ONLY}
    mixed = list(PretrainingDataset(corpus, stream_weights=(1, 2, 1), epoch_length=2000))
    shares = np.bincount([e["stream"] for e in mixed], minlength=3) / 2000
    np.testing.assert_allclose(shares, [0.25, 0.5, 0.25], atol=0.04)
    no_negatives = list(PretrainingDataset(corpus, stream_weights=(0, 0, 1), negative_rate=0.0, epoch_length=100))
    assert all(e["aligned"] == 1 for e in no_negatives)
    with pytest.raises(ValueError, match="stream_weights"):
        PretrainingDataset(corpus, stream_weights=(1, -1, 1))


def test_default_epoch_visits_every_unit_of_each_stream(corpus):
    ds = PretrainingDataset(corpus, stream_weights=(0, 1, 0), max_stride=1)
    firsts = sorted(e["visual_words"][0] for e in ds)
    split = CorpusSplit(corpus)
    assert firsts == sorted(split.words[split.chunks[:, 1]].tolist())


def test_deterministic_for_seed_and_epoch(corpus):
    a = list(PretrainingDataset(corpus, seed=5))
    assert a == list(PretrainingDataset(corpus, seed=5))
    assert a != list(PretrainingDataset(corpus, seed=6))
    ds = PretrainingDataset(corpus, seed=5)
    ds.set_epoch(1)
    assert list(ds) != a


def test_ranks_take_disjoint_interleaved_shares(corpus):
    full = list(PretrainingDataset(corpus, seed=2, world_size=1, rank=0))
    shards = [list(PretrainingDataset(corpus, seed=2, world_size=3, rank=r)) for r in range(3)]
    assert len({len(s) for s in shards}) == 1  # equal shares for data-parallel training
    assert [e for k in range(len(shards[0])) for e in (shards[0][k], shards[1][k], shards[2][k])] == full[: 3 * len(shards[0])]


def test_dataloader_workers_yield_the_same_order(corpus):
    reference = list(PretrainingDataset(corpus, seed=4))
    loader = torch.utils.data.DataLoader(PretrainingDataset(corpus, seed=4, worker_block=8), batch_size=8,
                                         num_workers=2, collate_fn=list)
    assert [e for batch in loader for e in batch] == reference


def test_resumes_exactly_mid_epoch(corpus):
    reference = list(PretrainingDataset(corpus, seed=9, epoch=2))
    ds = PretrainingDataset(corpus, seed=9)
    ds.set_epoch(2)
    iterator = iter(ds)
    for _ in range(13):
        next(iterator)
    state = ds.state_dict()
    assert state == {"epoch": 2, "position": 13, "seed": 9}
    resumed = PretrainingDataset(corpus, seed=9)
    resumed.load_state_dict(state)
    assert list(resumed) == reference[13:]
    assert list(resumed) == reference  # the next pass starts the epoch over

    # with workers, the trainer says how many examples it consumed
    with_workers = PretrainingDataset(corpus, seed=9, worker_block=4)
    with_workers.load_state_dict(ds.state_dict(consumed=24))
    loader = torch.utils.data.DataLoader(with_workers, batch_size=4, num_workers=2, collate_fn=list)
    assert [e for batch in loader for e in batch] == reference[24:]
    with pytest.raises(ValueError, match="seed"):
        resumed.load_state_dict({"epoch": 0, "position": 0, "seed": 1})


def test_video_only_corpus(tmp_path):
    times = np.stack([np.arange(20) * 1.5, np.arange(20) * 1.5 + 1.5], axis=1)
    build_corpus([("v", np.arange(20), times, None)], tmp_path, CorpusConfig(num_visual_words=NUM_WORDS, heldout_fraction=0.0))
    ds = PretrainingDataset(tmp_path)  # text streams have no units: only video-only examples
    assert len(ds) == 2 and {e["stream"] for e in ds} == {VIDEO_ONLY}
    with pytest.raises(ValueError, match="no units"):
        PretrainingDataset(tmp_path, stream_weights=(1, 0, 1))
