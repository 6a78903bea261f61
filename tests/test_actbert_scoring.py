"""ActBERT's task hooks on a clip store: fill-in, pair logits (independent of batching), the two
towers in the fill-in slots' word space, and clip features."""

import numpy as np
import pytest
import torch

from videobert.models.actbert import ActBertConfig, ActBertForPretraining
from videobert.models.actbert.clips import ClipStore
from videobert.models.actbert.scoring import ActBertScoring
from videobert.text import WordPieceTokenizer

from actbert_data import ACTION_DIM, CLASSES, REGION_DIM, make_dataset


@pytest.fixture(scope="module")
def scoring(tmp_path_factory):
    paths = make_dataset(tmp_path_factory.mktemp("actbert"), videos=3)
    store = ClipStore([paths["features"]])
    tokenizer = WordPieceTokenizer(paths["vocab"])
    torch.manual_seed(0)
    model = ActBertForPretraining(ActBertConfig.tiny(text_vocab_size=tokenizer.vocab_size, num_actions=4, max_clips=8,
                                                     num_object_classes=len(CLASSES), action_feature_dim=ACTION_DIM,
                                                     region_feature_dim=REGION_DIM))
    # a fresh model's matching logits are ~4e-4, as small as float rounding: order-1 logits let a
    # comparison of the wrong pair fail
    torch.nn.init.normal_(model.matching_head.classifier.weight, std=1.0)
    return ActBertScoring(model, tokenizer, store, batch_size=2)


def test_fill_masks_reads_the_video(scoring):
    store = scoring.store
    text = scoring.tokenizer.encode_batch(["now cut the"])[0] + [scoring.mask_id]
    videos = [store.rows("video00")[:5], store.rows("video01"), None]  # video01 (24 clips) is thinned to max_clips
    (slot,) = scoring.fill_masks(text, [(len(text) - 1, 1)], videos)
    assert slot.shape == (3, 1, scoring.model.config.text_vocab_size)
    torch.testing.assert_close(slot.exp().sum(-1), torch.ones(3, 1))
    assert not torch.allclose(slot[0], slot[2])  # the clips are cues


def test_pair_logits_do_not_depend_on_batching(scoring):
    store = scoring.store
    texts = scoring.tokenizer.encode_batch(["now cut the onion.", "now stir the soup."])
    videos = [store.rows("video00")[:3], store.rows("video02")[4:9]]
    t, v = np.array([0, 1, 1, 0]), np.array([0, 0, 1, 1])
    logits = scoring.pair_logits(texts, videos, t, v)
    with torch.no_grad():
        one = scoring.model.matching_logits(scoring.model.encode(**scoring._batch([(texts[1], videos[1])])).text)
    assert abs(logits).min() > 0.05 and len(set(np.round(logits, 3))) == 4  # the four pairs are told apart
    assert logits[2] == pytest.approx(float(one[0]), rel=1e-4)  # pair 2 is (text 1, video 1); other padding: rounding only
    wide = ActBertScoring(scoring.model, scoring.tokenizer, store, batch_size=128)
    np.testing.assert_allclose(wide.pair_logits(texts, videos, t, v), logits, rtol=1e-4)


def test_two_towers_and_clip_features(scoring):
    store = scoring.store
    texts = scoring.tokenizer.encode_batch(["now cut the onion.", "now fold the dough."])
    text_vectors = scoring.embed_texts(texts)
    video_vectors = scoring.embed_videos([store.rows("video00")[:4], store.rows("video01")[2:3]])
    width = 2 * scoring.model.config.text_vocab_size
    assert text_vectors.shape == (2, width) and video_vectors.shape == (2, width)
    torch.testing.assert_close(text_vectors.norm(dim=-1), torch.ones(2))
    torch.testing.assert_close(video_vectors.norm(dim=-1), torch.ones(2))
    features = scoring.clip_features([store.rows("video00")[:3], np.zeros(0, np.int64)])
    assert [f.shape for f in features] == [(3, scoring.clip_feature_dim), (0, scoring.clip_feature_dim)]
