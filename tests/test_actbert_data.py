"""ActBERT's dataset and collator: clips and actions from the corpus, determinism, sharding and
resume (PretrainingDataset's), and the per-stream masking of the batch."""

import numpy as np
import pytest
import torch

from videobert.corpus.store import CorpusSplit
from videobert.models.actbert import ActBertConfig, ActBertForPretraining
from videobert.models.actbert.clips import ClipStore
from videobert.models.actbert.data import ActBertCollator, ActBertDataset, corpus_action_labels, corpus_clip_rows
from videobert.text import WordPieceTokenizer
from videobert.text.actions import ActionVocab

from actbert_data import CLASSES, VERBS, make_dataset


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    paths = make_dataset(tmp_path_factory.mktemp("actbert"))
    store = ClipStore([paths["features"]])
    corpus = CorpusSplit(paths["corpus"], "train")
    rows = corpus_clip_rows(corpus, store)
    labels = corpus_action_labels(corpus, ActionVocab.from_list(VERBS), WordPieceTokenizer(paths["vocab"]).decode)
    return paths, store, corpus, rows, labels


def dataset(data, **options):
    paths, _, _, rows, labels = data
    return ActBertDataset(paths["corpus"], rows, labels, seed=3, **options)


def test_examples_carry_their_segments_clips_and_actions(data):
    paths, store, corpus, rows, labels = data
    tokenizer = WordPieceTokenizer(paths["vocab"])
    examples = list(dataset(data, negative_rate=0.0, concat_prob=0.0, max_stride=1))
    assert len(examples) == len(corpus.sentences) and all(e["aligned"] == 1 for e in examples)
    for example in examples:
        verb = tokenizer.decode(example["text_ids"]).split()[1]
        assert example["actions"] == [VERBS.index(verb)] * len(example["clips"])
        # the clips are one video's, consecutive, within the sentence's time
        video = [v for v in store.video_ids if example["clips"][0] in store.rows(v)][0]
        assert set(example["clips"]) <= set(store.rows(video).tolist())
        assert np.all(np.diff(example["clips"]) == 1)
    assert (labels >= 0).sum() == sum(len(e["clips"]) for e in examples)  # every clip of a sentence is labelled once


def test_deterministic_sharded_and_resumable(data):
    whole = list(dataset(data))
    again = list(dataset(data))
    assert whole == again and {e["aligned"] for e in whole} == {0, 1}
    shards = [list(dataset(data, rank=r, world_size=2)) for r in range(2)]
    interleaved = [e for pair in zip(*shards) for e in pair]
    assert interleaved == whole[: len(interleaved)]
    resumed = dataset(data)
    resumed.load_state_dict({"epoch": 0, "position": 3, "seed": 3})
    assert list(resumed) == whole[3:]


def test_collator_masks_each_stream(data):
    paths, store, _, _, _ = data
    examples = list(dataset(data))[:6]
    collator = ActBertCollator(store, text_vocab_size=WordPieceTokenizer(paths["vocab"]).vocab_size, max_text=32, max_clips=8, mask_prob=0.3)
    batch = collator(examples)
    again = collator(examples)
    assert all(torch.equal(batch[k], again[k]) for k in batch)  # masking draws from the examples' seeds
    lt, la, lr = batch["input_ids"].shape[1], batch["action_features"].shape[1], batch["region_features"].shape[1]
    assert batch["attention_mask"].shape == (6, lt + la + lr)
    assert batch["region_targets"].shape[-1] == len(CLASSES)
    for b, example in enumerate(examples):
        clips = example["clips"][:8]
        n_regions = int(batch["attention_mask"][b, lt + la:].sum())
        objects = n_regions - len(clips)  # each clip's whole frame is never masked
        masked_actions = batch["action_masked"][b].bool()
        assert int(masked_actions.sum()) == max(1, round(0.3 * len(clips)))
        assert int(batch["region_masked"][b].sum()) == (max(1, round(0.3 * objects)) if objects else 0)
        # masked features are zeroed, the others are the store's
        expected = torch.from_numpy(store.actions[clips])
        assert torch.all(batch["action_features"][b, : len(clips)][masked_actions[: len(clips)]] == 0)
        torch.testing.assert_close(batch["action_features"][b, : len(clips)][~masked_actions[: len(clips)]],
                                   expected[~masked_actions[: len(clips)]])
        labelled = example["aligned"] == 1
        assert bool((batch["action_labels"][b] != -100).any()) == (labelled and bool(masked_actions.any()))
        assert bool((batch["mlm_labels"][b] != -100).any()) == labelled  # mismatched pairs: no masked-token labels
        assert torch.equal(batch["region_labelled"][b], batch["region_masked"][b].bool() & labelled)
        assert batch["matching_labels"][b] == example["aligned"]


def test_action_stream_never_wider_than_max_clips(data):
    """Rounding the action stream up to a multiple of 8 must stop at max_clips: its positions are
    clip indices, and the model has max_clips of them."""
    paths, store, _, _, _ = data
    vocab_size = WordPieceTokenizer(paths["vocab"]).vocab_size
    example = dict(next(iter(dataset(data))), clips=list(range(20)), actions=[0] * 20)
    collator = ActBertCollator(store, text_vocab_size=vocab_size, max_text=32, max_clips=20)
    batch = collator([example])
    assert batch["action_features"].shape[1] == 20  # not 24
    config = ActBertConfig.tiny(text_vocab_size=vocab_size, num_actions=len(VERBS), num_object_classes=len(CLASSES),
                                action_feature_dim=store.action_dim, region_feature_dim=store.region_dim, max_clips=20)
    with torch.no_grad():
        assert torch.isfinite(ActBertForPretraining(config)(**batch)["loss"])


def test_an_example_without_clips_reads_nothing_seen(data):
    paths, store, _, _, _ = data
    seen, unseen = [dict(e, aligned=1) for e in list(dataset(data))[:2]]
    unseen = dict(unseen, clips=[], actions=[])
    collator = ActBertCollator(store, text_vocab_size=WordPieceTokenizer(paths["vocab"]).vocab_size, max_text=32, max_clips=8)
    batch = collator([seen, unseen])
    lt, la = batch["input_ids"].shape[1], batch["action_features"].shape[1]
    assert batch["attention_mask"][1, lt:lt + la].tolist() == [1] + [0] * (la - 1)  # one action: [MASK]
    assert batch["attention_mask"][1, lt + la:].sum() == 1 and batch["region_masked"][1, 0] == 1  # one region: [MASK]
    assert batch["action_masked"][1, 0] == 1 and torch.all(batch["action_features"][1] == 0)
    torch.testing.assert_close(batch["region_locations"][1, 0], torch.tensor([0.0, 0.0, 1.0, 1.0, 1.0]))
    assert torch.all(batch["action_labels"][1] == -100) and not batch["region_labelled"][1].any()
    assert batch["matching_labels"].tolist() == [1, -100]  # no video: nothing to match
    assert (batch["mlm_labels"][1] != -100).any()  # the text still trains


def test_corpus_and_store_must_agree(data, tmp_path):
    paths, _, corpus, _, _ = data
    from videobert.features.store import read_video_features, write_video_features
    from videobert.features.regions.store import read_video_regions, write_video_regions
    import dataclasses

    for video_id in corpus.video_ids:  # the same videos, one clip short
        features, times = read_video_features(paths["features"], video_id)
        write_video_features(tmp_path, video_id, features[:-1], times[:-1])
        regions = read_video_regions(paths["features"] / "regions", video_id)
        end = int(regions.clip_offsets[-2])
        write_video_regions(tmp_path / "regions", dataclasses.replace(
            regions, boxes=regions.boxes[:end], features=regions.features[:end], class_probs=regions.class_probs[:end],
            clip_offsets=regions.clip_offsets[:-1], frame_features=regions.frame_features[:-1], times=times[:-1]))
    with pytest.raises(ValueError, match=r"video '\w+' has 24 clips in the corpus but 23 in the clip store"):
        corpus_clip_rows(corpus, ClipStore([tmp_path]))


def test_a_video_whose_regions_failed_is_left_out_and_the_rest_trains(data, tmp_path, caplog):
    import shutil

    from videobert.features.regions.store import regions_path
    from videobert.utils.manifest import Manifest

    paths, _, corpus, _, labels = data
    shutil.copytree(paths["features"], tmp_path / "features")
    regions = tmp_path / "features" / "regions"
    failed, missing = corpus.video_ids[1], "video09"
    for video_id in (failed, missing):
        regions_path(regions, video_id).unlink()
    Manifest(regions / "manifest.rank00001-of-00002.jsonl").record(failed, "failed", reason="decode")
    # regions gone with no failure recorded: an error naming the manifest
    with pytest.raises(FileNotFoundError, match=rf"no regions for video '{missing}'.*regions/manifest.jsonl"):
        ClipStore([tmp_path / "features"])
    Manifest(regions / "manifest.rank00000-of-00002.jsonl").record(missing, "failed", reason="oom")
    with caplog.at_level("WARNING"):
        store = ClipStore([tmp_path / "features"])
    assert store.skipped_videos == [failed, missing] and failed not in store.video_ids
    assert "2 video(s) left out" in caplog.text and failed in caplog.text
    rows = corpus_clip_rows(corpus, store)
    left_out = np.zeros(len(rows), bool)
    for v, video_id in enumerate(corpus.video_ids):
        left_out[corpus.videos[v, 0]:corpus.videos[v, 1]] = video_id in (failed, missing)
    assert left_out.any() and np.all(rows[left_out] == -1) and np.all(rows[~left_out] >= 0)
    examples = list(ActBertDataset(paths["corpus"], rows, labels, seed=3))
    assert len(examples) == len(list(dataset(data)))  # the same epoch: nothing else is lost
    assert any(not e["clips"] for e in examples) and all(len(e["clips"]) == len(e["actions"]) for e in examples)
    vocab_size = WordPieceTokenizer(paths["vocab"]).vocab_size
    batch = ActBertCollator(store, text_vocab_size=vocab_size, max_text=32)([e for e in examples if not e["clips"]][:1] + examples[:7])
    config = ActBertConfig.tiny(text_vocab_size=vocab_size, num_actions=len(VERBS), num_object_classes=len(CLASSES),
                                action_feature_dim=store.action_dim, region_feature_dim=store.region_dim)
    with torch.no_grad():
        assert torch.isfinite(ActBertForPretraining(config)(**batch)["loss"])
