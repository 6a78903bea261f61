"""Zero-shot classification with a real tiny VideoBertForPretraining (random weights) and the real tokenizer."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from videobert.cli import main
from videobert.models.videobert import VideoBertConfig, VideoBertForPretraining
from videobert.tasks.annotations import Segment
from videobert.tasks.sources import save_video_words
from videobert.tasks.zero_shot import ZeroShotClassifier
from videobert.text import write_subset_vocab
from videobert.vocab import UnifiedVocab
from clips import clip_times

VERBS = ["cut", "add", "sprinkle", "stir", "whisk", "pour"]
OBJECTS = ["onion", "olive oil", "salt", "egg", "flour", "water"]



@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return VideoBertForPretraining(VideoBertConfig.tiny()).eval()



@torch.no_grad()
def slot_log_probs(model, ids, types, positions):
    hidden = model.encode(torch.tensor([ids]), torch.ones(1, len(ids), dtype=torch.long), torch.tensor([types]))
    return torch.log_softmax(model.text_logits(hidden[0, positions]), dim=-1)


def test_mean_scoring_matches_a_hand_built_input(model, tokenizer):
    """'sprinkle' has three WordPieces: three masks at the verb slot, score = mean piece log-prob."""
    vocab = UnifiedVocab()
    pieces = tokenizer.encode_batch(["sprinkle"])[0]
    assert len(pieces) == 3
    prefix, the = tokenizer.encode_batch(["now let me show you how to", "the"])
    video = [5, 17, 17, 300]
    ids = [vocab.cls_id, *prefix, *[vocab.mask_id] * 3, *the, vocab.mask_id, vocab.video_sep_id,
           *(vocab.visual_offset + w for w in video), vocab.sep_id]
    types = [0] * (1 + len(prefix) + 3 + len(the) + 1) + [1] * (len(video) + 2)
    at = 1 + len(prefix)
    lp = slot_log_probs(model, ids, types, list(range(at, at + 3)))
    expected = lp[torch.arange(3), torch.tensor(pieces)].mean()

    classifier = ZeroShotClassifier(model, tokenizer, VERBS, OBJECTS)
    verb_scores, object_scores = classifier.score([np.array(video)])
    assert verb_scores.shape == (1, len(VERBS)) and object_scores.shape == (1, len(OBJECTS))
    torch.testing.assert_close(verb_scores[0, VERBS.index("sprinkle")], expected, rtol=1e-5, atol=1e-5)

    # the language prior: the same text, no video, all token types 0
    prior_ids = ids[: at + 3 + len(the) + 1] + [vocab.sep_id]
    lp = slot_log_probs(model, prior_ids, [0] * len(prior_ids), list(range(at, at + 3)))
    prior_verbs, _ = classifier.score([None])
    torch.testing.assert_close(prior_verbs[0, VERBS.index("sprinkle")],
                               lp[torch.arange(3), torch.tensor(pieces)].mean(), rtol=1e-5, atol=1e-5)


def test_first_piece_scoring(model, tokenizer):
    vocab = UnifiedVocab()
    prefix, the = tokenizer.encode_batch(["now let me show you how to", "the"])
    ids = [vocab.cls_id, *prefix, vocab.mask_id, *the, vocab.mask_id, vocab.video_sep_id, vocab.visual_offset + 9, vocab.sep_id]
    types = [0] * (len(prefix) + len(the) + 3) + [1] * 3
    object_at = 1 + len(prefix) + 1 + len(the)
    lp = slot_log_probs(model, ids, types, [object_at])[0]
    _, object_scores = ZeroShotClassifier(model, tokenizer, VERBS, OBJECTS, scoring="first").score([np.array([9])])
    first_pieces = [p[0] for p in tokenizer.encode_batch(OBJECTS)]
    torch.testing.assert_close(object_scores[0], lp[first_pieces], rtol=1e-5, atol=1e-5)


def test_evaluate_reports_agree_with_scores(model, tokenizer):
    table = {"v1": (np.arange(40) * 7 % 500, clip_times(40)), "v2": (np.arange(300) % 97, clip_times(300))}
    segments = [Segment("v1", 0, 10, "cut the onions"), Segment("v1", 10, 30, "sprinkle salt on the egg"),
                Segment("v2", 0, 400, "stir the flour and water"),  # 267 words: subsampled to fit 128 positions
                Segment("v1", 3, 3.1, "pour water"),                # no clip centre inside
                Segment("v3", 0, 5, "add salt"),                    # video not in the table
                Segment("v1", 0, 5, "nothing to see")]              # no label
    classifier = ZeroShotClassifier(model, tokenizer, VERBS, OBJECTS, batch_size=2)
    result = classifier.evaluate(segments, table)
    assert result.num_segments == 3
    assert result.skipped == {"missing_video": 1, "no_clips": 1, "no_label": 1}
    verb_scores, object_scores = classifier.score([table["v1"][0][:7], table["v1"][0][7:20], table["v2"][0][:267]])
    assert not torch.allclose(verb_scores[0], verb_scores[1])  # the video changes the prediction
    verb_labels, object_labels = [0, 2, 3], [0, 2, 4]
    ranks = [int((verb_scores[i] > verb_scores[i, l]).sum()) for i, l in enumerate(verb_labels)]
    assert result.verb["video"].top1 == pytest.approx(np.mean([r < 1 for r in ranks]))
    assert result.verb["video"].top5 == pytest.approx(np.mean([r < 5 for r in ranks]))
    ranks = [int((object_scores[i] > object_scores[i, l]).sum()) for i, l in enumerate(object_labels)]
    assert result.object["video"].top1 == pytest.approx(np.mean([r < 1 for r in ranks]))
    assert set(result.verb["video"].per_class) == {"cut", "sprinkle", "stir"}
    prior_verbs, _ = classifier.score([None])
    prior_ranks = [int((prior_verbs[0] > prior_verbs[0, l]).sum()) for l in verb_labels]
    assert result.verb["prior"].top5 == pytest.approx(np.mean([r < 5 for r in prior_ranks]))
    assert [p["verb"] for p in result.predictions] == ["cut", "sprinkle", "stir"]
    assert len(result.predictions[0]["verb_top"]) == 5


def test_a_model_that_always_says_whisk(tokenizer):
    """Known answer: a text-head bias on 'whisk' makes it every segment's top verb, with and without video."""
    torch.manual_seed(1)
    model = VideoBertForPretraining(VideoBertConfig.tiny()).eval()
    with torch.no_grad():
        model.mlm_head.bias[tokenizer.encode_batch(["whisk"])[0][0]] = 50.0
    table = {"v": (np.arange(20), clip_times(20))}
    segments = [Segment("v", 0, 9, "whisk the egg"), Segment("v", 9, 20, "whisk flour"), Segment("v", 0, 20, "cut onion")]
    result = ZeroShotClassifier(model, tokenizer, VERBS, OBJECTS).evaluate(segments, table)
    for report in (result.verb["video"], result.verb["prior"]):
        assert report.top1 == pytest.approx(2 / 3)
        assert report.per_class["whisk"].top1 == 1.0 and report.per_class["cut"].top1 == 0.0
    assert all(p["verb_top"][0] == "whisk" for p in result.predictions)


def test_nothing_to_evaluate(model, tokenizer):
    with pytest.raises(ValueError, match="no segment could be evaluated"):
        ZeroShotClassifier(model, tokenizer, VERBS, OBJECTS).evaluate([Segment("x", 0, 1, "cut onion")], {})


def test_cli_zero_shot(tmp_path, model):
    model.save_pretrained(tmp_path / "model")
    (tmp_path / "verbs.txt").write_text("\n".join(VERBS) + "\n")
    (tmp_path / "objects.txt").write_text("\n".join(OBJECTS) + "\n")
    (tmp_path / "ann.json").write_text(json.dumps({"database": {
        "vid1": {"subset": "validation", "duration": 30.0, "annotations": [
            {"id": 0, "segment": [0, 12], "sentence": "Cut the onion."},
            {"id": 1, "segment": [12, 30], "sentence": "Pour the olive oil."}]},
        "vid2": {"subset": "training", "duration": 9.0, "annotations": [
            {"id": 0, "segment": [0, 9], "sentence": "stir the egg"}]}}}))
    save_video_words(tmp_path / "words.npz", {"vid1": (np.arange(20) * 3, clip_times(20)),
                                              "vid2": (np.arange(6), clip_times(6))})
    out = tmp_path / "out"
    assert main(["eval", "zero-shot", "--model", str(tmp_path / "model"), "--annotations", str(tmp_path / "ann.json"),
                 "--subset", "validation", "--verbs", str(tmp_path / "verbs.txt"), "--objects", str(tmp_path / "objects.txt"),
                 "--video-words", str(tmp_path / "words.npz"), "--out", str(out), "--device", "cpu"]) == 0
    report = json.loads((out / "zero_shot.json").read_text())
    assert report["num_segments"] == 2
    assert set(report["verb"]["video"]["per_class"]) == {"cut", "pour"}
    assert set(report["object"]["prior"]["per_class"]) == {"onion", "olive oil"}
    with Image.open(out / "zero_shot.png") as image:
        assert image.format == "PNG" and image.width > 400 and image.height > 400


def test_cli_reads_the_tokenizer_saved_with_the_model(tmp_path):
    """A model trained on a cut-down vocabulary (the demo's) carries its vocab.txt; the CLI uses it,
    and a tokenizer of the wrong size is refused before anything runs."""
    sentences = ["cut the onion.", "pour the olive oil.", f"now let me show you how to {' '.join(VERBS)} the {' '.join(OBJECTS)}."]
    subset = write_subset_vocab(sentences, tmp_path / "vocab.txt")
    torch.manual_seed(0)
    VideoBertForPretraining(VideoBertConfig.tiny(text_vocab_size=subset.vocab_size)).save_pretrained(tmp_path / "model")
    (tmp_path / "verbs.txt").write_text("\n".join(VERBS) + "\n")
    (tmp_path / "objects.txt").write_text("\n".join(OBJECTS) + "\n")
    (tmp_path / "ann.json").write_text(json.dumps({"database": {"vid1": {"subset": "validation", "duration": 12.0, "annotations": [
        {"id": 0, "segment": [0, 12], "sentence": "Cut the onion."}]}}}))
    save_video_words(tmp_path / "words.npz", {"vid1": (np.arange(8), clip_times(8))})
    args = ["eval", "zero-shot", "--model", str(tmp_path / "model"), "--annotations", str(tmp_path / "ann.json"),
            "--verbs", str(tmp_path / "verbs.txt"), "--objects", str(tmp_path / "objects.txt"),
            "--video-words", str(tmp_path / "words.npz"), "--device", "cpu"]
    with pytest.raises(ValueError, match=r"30522 ids but the model .* reads 1\d\d"):
        main(args + ["--out", str(tmp_path / "bert")])  # the model directory has no vocab.txt yet: BERT's is the default
    (tmp_path / "model" / "vocab.txt").write_bytes((tmp_path / "vocab.txt").read_bytes())
    assert main(args + ["--out", str(tmp_path / "own")]) == 0
    assert json.loads((tmp_path / "own" / "zero_shot.json").read_text())["num_segments"] == 1
