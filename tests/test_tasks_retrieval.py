"""Text-video retrieval: metrics against hand-worked cases, the scorers against the model's own
alignment head, the retrieval set's skips and duplicates, and the command end to end."""

import itertools
import json

import numpy as np
import pytest
import torch
from PIL import Image

from videobert.cli import main
from videobert.models.videobert import VideoBertConfig, VideoBertForPretraining
from videobert.tasks.annotations import Segment
from videobert.tasks.inputs import build_sequence, pack, subsample_evenly
from videobert.tasks.retrieval import answer_ranks, evaluate_retrieval, retrieval_metrics
from videobert.tasks.retrieval.data import build_retrieval_set
from videobert.tasks.retrieval.metrics import chance_recall_at
from videobert.tasks.retrieval.plots import segment_thumbnails
from videobert.models.videobert.pairs import PairTables, pair_batch
from videobert.models.videobert.scoring import VideoBertScoring
from videobert.tasks.retrieval.scorers import CrossEncoder, Rerank, TwoTower
from videobert.tasks.sources import save_video_words, segment_words
from videobert.video.synthetic import write_video
from clips import clip_times

MAX_LENGTH = 24  # short, so that long texts are cut and long videos thinned



@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return VideoBertForPretraining(VideoBertConfig.tiny(max_position_embeddings=MAX_LENGTH)).eval()


@pytest.fixture(scope="module")
def pairs_data():
    """Texts of 1 .. 25 WordPieces and videos of 1 .. 30 words: every pair shape, cut and thinned."""
    rng = np.random.default_rng(0)
    texts = [rng.integers(1000, 2000, n).tolist() for n in (1, 3, 8, 19, 25)]
    videos = [rng.integers(0, 500, n) for n in (1, 2, 5, 17, 30)]
    return texts, videos


def ordinary_sequence(vocab, text, words):
    """A pair built the way every other task builds one: build_sequence, the video thinned to the room left."""
    text = text[: MAX_LENGTH - 4]
    return build_sequence(vocab, text, vocab.visual_ids(subsample_evenly(words, MAX_LENGTH - 3 - len(text))).tolist())



# ----------------------------------------------------------------------------------- metrics
def test_metrics_hand_worked_with_ties():
    similarity = np.array([[0.9, 0.9, 0.1, 0.0],   # right 0.9 tied by a wrong one: rank 2
                           [0.5, 0.2, 0.5, 0.2],   # right 0.2: two above and one tie: rank 4
                           [0.1, 0.2, 0.3, 0.0],   # right best: rank 1
                           [0.4, 0.4, 0.4, 0.4]])  # all tied: the worst rank, 4
    assert answer_ranks(similarity).tolist() == [2, 4, 1, 4]
    result = retrieval_metrics(similarity, ks=(1, 2, 5))
    assert result["R@1"] == 0.25 and result["R@2"] == 0.5 and result["R@5"] == 1.0
    assert result["MedR"] == 3.0 and result["MeanR"] == 2.75
    assert result["chance_R@1"] == pytest.approx(0.25) and result["chance_R@2"] == pytest.approx(0.5)
    assert result["queries"] == result["candidates"] == 4


def test_metrics_several_right_answers():
    similarity = np.array([[0.9, 0.95, 0.95, 0.1],
                           [0.3, 0.2, 0.1, 0.0]])
    relevant = np.array([[True, False, True, False],    # best right 0.95 tied by wrong 0.95; the other right is no rival
                         [False, True, False, True]])   # best right 0.2 below one wrong: rank 2
    assert answer_ranks(similarity, relevant).tolist() == [2, 2]
    result = retrieval_metrics(similarity, relevant, ks=(1, 2, 3))
    assert (result["R@1"], result["R@2"], result["MedR"]) == (0.0, 1.0, 2.0)
    # two right among four: R@1 = 1/2 by chance, R@2 = 1 - (2/4)(1/3) = 5/6, R@3 = 1
    assert result["chance_R@1"] == pytest.approx(0.5)
    assert result["chance_R@2"] == pytest.approx(5 / 6)
    assert result["chance_R@3"] == pytest.approx(1.0)


def test_chance_recall_matches_every_ordering():
    relevant = np.array([[1, 0, 0, 0, 0], [1, 1, 0, 0, 0], [0, 1, 1, 1, 0]], dtype=bool)
    hits = np.zeros((3, 5))
    orders = list(itertools.permutations(range(5)))
    for order in orders:  # every ranking equally likely: what random scores give
        for k in range(1, 6):
            hits[:, k - 1] += relevant[:, list(order[:k])].any(axis=1)
    expected = (hits / len(orders)).mean(axis=0)
    np.testing.assert_allclose(chance_recall_at(relevant, np.arange(1, 6)), expected)
    np.testing.assert_allclose(chance_recall_at(relevant, [10]), [1.0])  # K past the candidates


def test_metrics_bad_input():
    with pytest.raises(ValueError, match="non-empty"):
        retrieval_metrics(np.zeros((0, 3)))
    with pytest.raises(ValueError, match="square"):
        retrieval_metrics(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="NaN"):
        retrieval_metrics(np.array([[0.0, np.nan], [1.0, 0.0]]))
    with pytest.raises(ValueError, match=r"queries \[1\] have no right answer"):
        retrieval_metrics(np.zeros((2, 2)), np.array([[True, False], [False, False]]))


# ----------------------------------------------------------------------------------- scorers
def test_pair_batch_equals_build_sequence_and_pack(model, pairs_data):
    texts, videos = pairs_data
    vocab = model.config.vocab
    tables = PairTables.build(model, texts, videos)
    t, v = np.divmod(np.arange(len(texts) * len(videos)), len(videos))
    batch = pair_batch(tables, vocab, torch.as_tensor(t), torch.as_tensor(v))
    expected = pack([ordinary_sequence(vocab, texts[i], videos[j]) for i, j in zip(t, v)], vocab.pad_id)
    for key in expected:
        assert torch.equal(batch[key], expected[key]), key
    assert batch["attention_mask"].sum(dim=1).max() == MAX_LENGTH  # some pairs fill the model's length


def test_cross_encoder_scores_are_the_alignment_logits(model, pairs_data):
    texts, videos = pairs_data
    vocab = model.config.vocab
    scores = CrossEncoder(VideoBertScoring(model, None, batch_size=4)).score(texts, videos)
    assert scores.text_to_video.shape == (5, 5) and scores.pairs_scored == 25
    np.testing.assert_array_equal(scores.video_to_text, scores.text_to_video.T)
    with torch.no_grad():
        for i, j in [(0, 0), (1, 3), (3, 4), (4, 1)]:
            batch = pack([ordinary_sequence(vocab, texts[i], videos[j])], vocab.pad_id)
            logit = model.alignment_logits(model.encode(**batch))[0]
            assert scores.text_to_video[i, j] == pytest.approx(float(logit), abs=1e-5)
    # batching by length changes nothing but the padding
    t, v = np.divmod(np.arange(25), 5)
    unsorted = VideoBertScoring(model, None, batch_size=3).pair_logits(texts, videos, t, v, sort_by_length=False)
    np.testing.assert_allclose(unsorted.reshape(5, 5), scores.text_to_video, atol=1e-5)


def test_rerank_with_k_n_is_the_cross_encoder(model, pairs_data):
    texts, videos = pairs_data
    cross = CrossEncoder(VideoBertScoring(model, None, batch_size=4)).score(texts, videos)
    rerank = Rerank(VideoBertScoring(model, None, batch_size=4), k=len(videos)).score(texts, videos)
    np.testing.assert_array_equal(rerank.text_to_video, cross.text_to_video)
    np.testing.assert_array_equal(rerank.video_to_text, cross.video_to_text)
    assert rerank.pairs_scored == 25


def test_rerank_orders_the_shortlist_by_the_cross_encoder(model, pairs_data):
    texts, videos = pairs_data
    k = 2
    first = TwoTower(VideoBertScoring(model, None)).similarity(texts, videos)
    cross = CrossEncoder(VideoBertScoring(model, None, batch_size=4)).score(texts, videos).text_to_video
    rerank = Rerank(VideoBertScoring(model, None, batch_size=4), k=k).score(texts, videos)
    assert rerank.pairs_scored <= 2 * k * 5
    for direction, final, shortlist_by, exact in ((0, rerank.text_to_video, first, cross),
                                                  (1, rerank.video_to_text, first.T, cross.T)):
        for row in range(5):
            order = np.argsort(-final[row], kind="stable")
            shortlist = np.argsort(-shortlist_by[row], kind="stable")[:k]
            assert set(order[:k]) == set(shortlist), (direction, row)
            assert list(order[:k]) == sorted(shortlist, key=lambda c: -exact[row, c])
            np.testing.assert_allclose(final[row, shortlist], exact[row, shortlist], atol=1e-5)
            rest = order[k:]
            assert list(rest) == sorted(rest, key=lambda c: -shortlist_by[row, c])


def test_two_tower_is_the_cosine_of_single_modality_cls_states(model, pairs_data):
    texts, videos = pairs_data
    vocab = model.config.vocab
    with torch.no_grad():
        text_ids, _ = build_sequence(vocab, texts[1], None)
        text = model.encode(torch.tensor([text_ids]))[0, 0]
        video_ids, types = build_sequence(vocab, None, vocab.visual_ids(videos[3]).tolist())
        video = model.encode(torch.tensor([video_ids]), token_type_ids=torch.tensor([types]))[0, 0]
    similarity = TwoTower(VideoBertScoring(model, None, batch_size=2)).similarity(texts, videos)
    assert similarity.shape == (5, 5)
    assert similarity[1, 3] == pytest.approx(float(torch.cosine_similarity(text, video, dim=0)), abs=1e-5)
    assert np.abs(similarity).max() <= 1 + 1e-6
    scores = TwoTower(VideoBertScoring(model, None)).score(texts, videos)
    np.testing.assert_array_equal(scores.video_to_text, scores.text_to_video.T)
    assert scores.pairs_scored == 0


# ----------------------------------------------------------------------------------- retrieval set
def test_retrieval_set_skips_and_groups_duplicate_sentences(tokenizer):
    table = {"v1": (np.arange(20), clip_times(20)), "v2": (np.arange(10) + 50, clip_times(10))}
    segments = [Segment("v1", 0, 6, "Cut the onion."),
                Segment("v1", 6, 12, "pour the water"),
                Segment("v2", 0, 6, "cut  the ONION."),     # the same WordPieces as the first: one text
                Segment("v2", 6, 6.2, "stir"),               # no clip centre inside: skipped
                Segment("v3", 0, 6, "stir"),                 # no such video: skipped
                Segment("v2", 6, 12, "  ")]                  # no WordPiece: skipped
    data = build_retrieval_set(segments, table, tokenizer)
    assert data.skipped == {"missing_video": 1, "no_clips": 1, "empty_sentence": 1}
    assert data.sentences == ["Cut the onion.", "pour the water"]
    assert data.text_of.tolist() == [0, 1, 0] and data.duplicate_segments == 2
    assert data.relevance.tolist() == [[True, False, True], [False, True, False]]
    np.testing.assert_array_equal(data.words[1], np.arange(4, 8))  # clip centres 6.75 .. 11.25 s


def test_too_few_segments_is_a_clear_error(model, tokenizer):
    with pytest.raises(ValueError, match=r"need at least 2 segments.*got 0 of 0"):
        evaluate_retrieval(model, tokenizer, [], {})
    table = {"v1": (np.arange(4), clip_times(4))}
    with pytest.raises(ValueError, match=r"got 1 of 2 \(skipped: \{'missing_video': 1"):
        evaluate_retrieval(model, tokenizer, [Segment("v1", 0, 6, "cut"), Segment("v9", 0, 6, "stir")], table)


def test_evaluate_reports_agree_with_the_scores(model, tokenizer):
    table = {"v1": (np.arange(40) * 7 % 500, clip_times(40)), "v2": (np.arange(30) % 97, clip_times(30))}
    segments = [Segment("v1", 0, 10, "cut the onions"), Segment("v1", 10, 30, "sprinkle salt on the egg"),
                Segment("v2", 0, 20, "stir the flour and water"), Segment("v2", 20, 45, "cut the onions"),
                Segment("v1", 30, 60, "pour the oil into the pan")]
    result = evaluate_retrieval(model, tokenizer, segments, table, mode="cross", batch_size=3)
    assert (result["segments"], result["sentences"], result["duplicate_segments"]) == (5, 4, 2)
    texts = tokenizer.encode_batch(["cut the onions", "sprinkle salt on the egg", "stir the flour and water",
                                    "pour the oil into the pan"])
    words = [segment_words(*table[s.video_id], s.start, s.end) for s in segments]
    scores = CrossEncoder(VideoBertScoring(model, None)).score(texts, words).text_to_video
    relevant = np.array([[1, 0, 0, 1, 0], [0, 1, 0, 0, 0], [0, 0, 1, 0, 0], [0, 0, 0, 0, 1]], dtype=bool)
    expected = retrieval_metrics(scores, relevant)
    for key in ("R@1", "R@5", "MedR", "MeanR", "chance_R@1"):
        assert result["text_to_video"][key] == pytest.approx(expected[key]), key
    assert result["text_to_video"]["chance_R@1"] == pytest.approx((2 / 5 + 3 / 5) / 4)
    assert result["video_to_text"]["candidates"] == 4 and result["video_to_text"]["queries"] == 5
    assert result["texts"][0]["answers"] == [0, 3]
    assert result["texts"][0]["top5"] == np.argsort(-scores[0], kind="stable").tolist()
    assert [q["rank"] for q in result["texts"]] == answer_ranks(scores, relevant).tolist()


# ----------------------------------------------------------------------------------- command
@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory, model, tokenizer):
    """A saved model, YouCook II-format annotations, a video-word table and real video files."""
    root = tmp_path_factory.mktemp("retrieval")
    model.save_pretrained(root / "model")
    sentences = ["cut the onion", "pour the olive oil", "stir the egg", "whisk the flour", "add salt", "cut the onion"]
    database = {}
    table = {}
    rng = np.random.default_rng(1)
    for v in range(3):
        anns = [{"id": i, "segment": [6.0 * i, 6.0 * i + 6], "sentence": sentences[2 * v + i]} for i in range(2)]
        database[f"vid{v}"] = {"subset": "validation", "duration": 12.0, "annotations": anns}
        table[f"vid{v}"] = (rng.integers(0, 500, 8), clip_times(8))
        write_video(root / f"vid{v}.mp4", fps=2, frames=24, width=48, height=32)
    database["vid3"] = {"subset": "validation", "duration": 6.0, "annotations": [  # no visual words: skipped
        {"id": 0, "segment": [0, 6], "sentence": "add pepper"}]}
    database["train0"] = {"subset": "training", "duration": 6.0, "annotations": [
        {"id": 0, "segment": [0, 6], "sentence": "stir the egg"}]}
    (root / "ann.json").write_text(json.dumps({"database": database}))
    table["train0"] = (np.arange(4), clip_times(4))
    save_video_words(root / "words.npz", table)
    return root


def test_cli_retrieval_end_to_end(tiny_set):
    root = tiny_set
    out = root / "out"
    assert main(["eval", "retrieval", "--model", str(root / "model"), "--annotations", str(root / "ann.json"),
                 "--subset", "validation", "--video-words", str(root / "words.npz"), "--videos-dir", str(root),
                 "--mode", "rerank", "--k", "2", "--out", str(out), "--device", "cpu"]) == 0
    report = json.loads((out / "retrieval.json").read_text())
    assert (report["mode"], report["k"], report["text"]) == ("rerank", 2, "annotations")
    assert (report["segments"], report["sentences"], report["duplicate_segments"]) == (6, 5, 2)
    assert report["skipped"] == {"missing_video": 1, "no_clips": 0, "empty_sentence": 0}
    for direction in ("text_to_video", "video_to_text"):
        r = report[direction]
        assert 0 <= r["R@1"] <= r["R@5"] <= r["R@10"] == 1.0 and 1 <= r["MedR"] <= r["candidates"]
    with Image.open(out / "retrieval.png") as image:
        assert image.format == "PNG" and image.height > 700  # recall plot and query rows
        with_queries = image.height
    # without videos: the recall plot alone
    assert main(["eval", "retrieval", "--model", str(root / "model"), "--annotations", str(root / "ann.json"),
                 "--subset", "validation", "--video-words", str(root / "words.npz"),
                 "--out", str(root / "plain"), "--device", "cpu"]) == 0
    with Image.open(root / "plain" / "retrieval.png") as image:
        assert 200 < image.height < with_queries
        assert len(np.unique(np.asarray(image.convert("L")))) > 10
    plain = json.loads((root / "plain" / "retrieval.json").read_text())
    assert (plain["mode"], plain["k"], plain["pairs_scored"]) == ("two-tower", None, 0)  # the default


def test_thumbnails_come_from_the_segments_middle_frame(tiny_set):
    result = json.loads((tiny_set / "out" / "retrieval.json").read_text())
    result["videos"].append({"video_id": "gone", "start": 0.0, "end": 6.0})
    thumbs = segment_thumbnails(result, [0, 1, len(result["videos"]) - 1], tiny_set, size=32)
    assert sorted(thumbs) == [0, 1]  # the missing video is left out, the rest drawn
    assert thumbs[0].shape == (32, 32, 3) and thumbs[0].dtype == np.uint8
    assert not np.array_equal(thumbs[0], thumbs[1])  # frames 6 (3 s) and 18 (9 s) of a moving picture


def test_cli_alignment(tiny_set):
    root = tiny_set
    assert main(["eval", "alignment", "--model", str(root / "model"), "--annotations", str(root / "ann.json"),
                 "--video-words", str(root / "words.npz"), "--out", str(root / "align"), "--device", "cpu"]) == 0
    report = json.loads((root / "align" / "alignment.json").read_text())
    assert report["pairs"] == 2 * 7 and report["chance"] == 0.5 and report["text"] == "annotations"
    assert 0 <= report["accuracy"] <= 1
