"""Forecasting, text-to-video and feature export with a real tiny VideoBertForPretraining."""

import json

import numpy as np
import pytest
import torch

from videobert.cli import main
from videobert.models.videobert import VideoBertConfig, VideoBertForPretraining
from videobert.tasks.export import SegmentInput, export_features, load_features
from videobert.tasks.forecasting import forecast_accuracy, forecast_next, forecast_targets, next_word_log_probs
from videobert.tasks.sources import save_video_words
from videobert.tasks.text_to_video import text_to_video
from videobert.text import WordPieceTokenizer
from videobert.vocab import UnifiedVocab

VOCAB = UnifiedVocab()


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return VideoBertForPretraining(VideoBertConfig.tiny()).eval()



@torch.no_grad()
def encode(model, ids, types):
    return model.encode(torch.tensor([ids]), torch.ones(1, len(ids), dtype=torch.long), torch.tensor([types]))[0]


def test_forecast_targets_by_hand():
    assert forecast_targets([[1, 2, 3, 4], [5, 6]], context=2) == [([1], 2), ([1, 2], 3), ([2, 3], 4), ([5], 6)]
    assert forecast_targets([[1, 2, 3, 4, 5]], context=3, min_context=2, stride=2) == [([1, 2], 3), ([2, 3, 4], 5)]
    with pytest.raises(ValueError):
        forecast_targets([[1, 2]], context=0)


def test_next_word_matches_a_hand_built_input(model):
    context = [4, 44, 444]
    ids = [VOCAB.cls_id, VOCAB.video_sep_id, *(VOCAB.visual_offset + w for w in context), VOCAB.mask_id, VOCAB.sep_id]
    expected = torch.log_softmax(model.visual_logits(encode(model, ids, [0] + [1] * (len(ids) - 1))[5]), dim=-1)
    got = next_word_log_probs(model, [context, [1]])  # batched with a shorter context: padding must not matter
    torch.testing.assert_close(got[0], expected, rtol=1e-4, atol=1e-5)
    top = forecast_next(model, context, k=3)
    assert [w for w, _ in top] == torch.topk(expected, 3).indices.tolist()
    assert all(0 < p < 1 for _, p in top) and top[0][1] >= top[1][1] >= top[2][1]


def test_long_context_keeps_the_most_recent_words(model):
    long = list(range(300))
    torch.testing.assert_close(next_word_log_probs(model, [long]), next_word_log_probs(model, [long[-124:]]))


def test_forecast_accuracy_matches_ranks(model):
    sequences = [[3, 9, 27, 81, 243], [7, 7, 7]]
    result = forecast_accuracy(model, sequences, ks=(1, 3, 100), context=2, batch_size=3)
    pairs = forecast_targets(sequences, context=2)
    lp = next_word_log_probs(model, [c for c, _ in pairs])
    ranks = [int((lp[i] > lp[i, t]).sum()) for i, (_, t) in enumerate(pairs)]
    assert result["num_targets"] == 6
    for k in (1, 3, 100):
        assert result[f"accuracy@{k}"] == pytest.approx(np.mean([r < k for r in ranks]))


def test_forecasting_a_word_the_head_favours():
    """Known answer: with a large visual-head bias on word 123, accuracy@1 is the share of targets equal to 123."""
    torch.manual_seed(2)
    model = VideoBertForPretraining(VideoBertConfig.tiny()).eval()
    with torch.no_grad():
        model.mvm_head.bias[123] = 50.0
    result = forecast_accuracy(model, [[1, 123, 2, 123], [123, 5]], ks=(1,))
    assert result["accuracy@1"] == pytest.approx(2 / 4)


def test_text_to_video(model, tokenizer):
    words = text_to_video(model, tokenizer, "cut the onion", num_words=6)
    assert len(words) == 6 and all(0 <= w < VOCAB.num_visual_words for w in words)
    assert text_to_video(model, tokenizer, "cut the onion", num_words=6) == words  # greedy: deterministic
    # one word: it is the argmax at the single mask of [CLS] text [>] [MASK] [SEP]
    text = tokenizer.encode_batch(["cut the onion"])[0]
    ids = [VOCAB.cls_id, *text, VOCAB.video_sep_id, VOCAB.mask_id, VOCAB.sep_id]
    hidden = encode(model, ids, [0] * (len(text) + 1) + [1] * 3)
    assert text_to_video(model, tokenizer, "cut the onion", num_words=1) == [int(model.visual_logits(hidden[-2]).argmax())]
    sampled = text_to_video(model, tokenizer, "cut the onion", num_words=6, words_per_step=2, temperature=1.0, seed=5)
    assert sampled == text_to_video(model, tokenizer, "cut the onion", num_words=6, words_per_step=2, temperature=1.0, seed=5)
    assert sampled != text_to_video(model, tokenizer, "cut the onion", num_words=6, words_per_step=2, temperature=1.0, seed=6)


def test_text_to_video_fills_conditioned_on_earlier_choices(tokenizer):
    """With a head that strongly prefers word 77, the generated sequence is all 77s."""
    torch.manual_seed(3)
    model = VideoBertForPretraining(VideoBertConfig.tiny()).eval()
    with torch.no_grad():
        model.mvm_head.bias[77] = 50.0
    assert text_to_video(model, tokenizer, "stir", num_words=4, words_per_step=3) == [77] * 4


def test_export_features(tmp_path, model):
    segments = [SegmentInput("a", 0.0, 3.0, (1, 2, 3)), SegmentInput("a", 3.0, 4.5, (4,), (2000, 2001)),
                SegmentInput("b", 0.0, 6.0, (5, 6, 7, 8)), SegmentInput("b", 6.0, 7.5, tuple(range(200)))]
    paths = export_features(model, segments, tmp_path, segments_per_shard=3, batch_size=2)
    assert [p.name for p in paths] == ["features-00000.safetensors", "features-00001.safetensors"]
    tensors, meta = load_features(paths[0])
    assert meta == [{"video_id": "a", "start": 0.0, "end": 3.0}, {"video_id": "a", "start": 3.0, "end": 4.5},
                    {"video_id": "b", "start": 0.0, "end": 6.0}]
    assert tensors["offsets"].tolist() == [0, 6, 12, 19]  # [CLS] [>] v v v [SEP]; [CLS] t t [>] v [SEP]; ...
    # segment 1 by hand: video-text layout
    ids = [VOCAB.cls_id, 2000, 2001, VOCAB.video_sep_id, VOCAB.visual_offset + 4, VOCAB.sep_id]
    hidden = encode(model, ids, [0, 0, 0, 1, 1, 1])
    assert tensors["input_ids"][6:12].tolist() == ids
    torch.testing.assert_close(tensors["tokens"][6:12], hidden, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(tensors["pooled"][1], hidden[0], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(tensors["mean"][1], hidden[4], rtol=1e-4, atol=1e-5)  # the one visual token
    last, _ = load_features(paths[1])
    assert last["offsets"].tolist() == [0, 128]  # 200 words subsampled to fit 128 positions
    # resume: an existing shard is kept as it is
    before = paths[0].stat().st_mtime_ns
    export_features(model, segments, tmp_path, segments_per_shard=3, batch_size=2)
    assert paths[0].stat().st_mtime_ns == before


def test_cli_forecast_text_to_video_export(tmp_path, model):
    model.save_pretrained(tmp_path / "model")
    times = np.stack([np.arange(40) * 1.5, np.arange(40) * 1.5 + 1.5], axis=1)
    save_video_words(tmp_path / "w.npz", {"v1": (np.arange(40) % 13, times), "v2": (np.arange(40) % 5, times)})
    (tmp_path / "held.txt").write_text("v2\n")
    common = ["--model", str(tmp_path / "model"), "--device", "cpu"]
    assert main(["eval", "forecast", *common, "--video-words", str(tmp_path / "w.npz"), "--videos", str(tmp_path / "held.txt"),
                 "--context", "8", "--stride", "4", "--out", str(tmp_path / "forecast.json")]) == 0
    report = json.loads((tmp_path / "forecast.json").read_text())
    assert report["num_targets"] == 10 and set(report["examples"]) == {"v2"} and len(report["examples"]["v2"]["top3"]) == 3
    assert main(["eval", "text-to-video", *common, "--sentence", "cut the onion", "--sentence", "stir",
                 "--num-words", "3", "--out", str(tmp_path / "t2v")]) == 0
    assert [len(r["visual_words"]) for r in json.loads((tmp_path / "t2v" / "text_to_video.json").read_text())] == [3, 3]
    assert main(["eval", "export-features", *common, "--video-words", str(tmp_path / "w.npz"), "--segment-words", "16",
                 "--dtype", "float16", "--out", str(tmp_path / "feat")]) == 0
    tensors, meta = load_features(tmp_path / "feat" / "features-00000.safetensors")
    assert len(meta) == 6 and tensors["pooled"].dtype == torch.float16 and meta[2] == {"video_id": "v1", "start": 48.0, "end": 60.0}
    (tmp_path / "ann.json").write_text(json.dumps({"database": {"v1": {"subset": "validation", "duration": 60, "annotations": [
        {"segment": [3, 9], "sentence": "cut the onion"}, {"segment": [200, 300], "sentence": "no clips here"}]}}}))
    assert main(["eval", "export-features", *common, "--video-words", str(tmp_path / "w.npz"), "--annotations",
                 str(tmp_path / "ann.json"), "--with-text", "--out", str(tmp_path / "feat2")]) == 0
    tensors, meta = load_features(tmp_path / "feat2" / "features-00000.safetensors")
    text = WordPieceTokenizer().encode("cut the onion")
    words = [2, 3, 4, 5]  # clip centres 3.75 .. 8.25 s
    assert meta == [{"video_id": "v1", "start": 3.0, "end": 9.0}]
    assert tensors["input_ids"].tolist() == [VOCAB.cls_id, *text, VOCAB.video_sep_id,
                                             *(VOCAB.visual_offset + w for w in words), VOCAB.sep_id]
