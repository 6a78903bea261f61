"""VideoBertForPretraining: config, batch forward, losses, accuracies, heads, save/load, visual embeddings."""

from __future__ import annotations

import json

import pytest
import torch
from torch.nn import functional as F

from videobert.corpus import MaskingCollator
from videobert.models.videobert import LossWeights, VideoBertConfig, VideoBertForPretraining
from videobert.vocab import TEXT_ONLY, VIDEO_ONLY, VIDEO_TEXT

WORDS = 144


def tiny(**overrides) -> VideoBertForPretraining:
    torch.manual_seed(0)
    return VideoBertForPretraining(VideoBertConfig.tiny(num_visual_words=WORDS, **overrides))


def make_batch(vocab, seed: int = 0) -> dict[str, torch.Tensor]:
    """Three sequences laid out as vocab.py says: video-text, text-only (padded), video-only (padded)."""
    g = torch.Generator().manual_seed(seed)
    text = lambda n: torch.randint(1000, 30000, (n,), generator=g)  # noqa: E731
    video = lambda n: torch.randint(0, WORDS, (n,), generator=g) + vocab.visual_offset  # noqa: E731
    sep, cls, vsep = torch.tensor([vocab.sep_id]), torch.tensor([vocab.cls_id]), torch.tensor([vocab.video_sep_id])
    rows = [
        (torch.cat([cls, text(7), vsep, video(6), sep]), [0] * 8 + [1] * 8, VIDEO_TEXT),
        (torch.cat([cls, text(9), sep]), [0] * 11, TEXT_ONLY),
        (torch.cat([cls, vsep, video(10), sep]), [0] + [1] * 12, VIDEO_ONLY),
    ]
    length = 16
    input_ids = torch.zeros(3, length, dtype=torch.int64)
    token_types, attention = torch.zeros_like(input_ids), torch.zeros_like(input_ids)
    for i, (ids, types, _) in enumerate(rows):
        input_ids[i, : len(ids)] = ids
        token_types[i, : len(ids)] = torch.tensor(types)
        attention[i, : len(ids)] = 1
    mlm = torch.full_like(input_ids, -100)
    mvm = torch.full_like(input_ids, -100)
    for i, j in [(0, 2), (0, 5), (1, 3), (1, 8)]:
        mlm[i, j] = input_ids[i, j]
        input_ids[i, j] = vocab.mask_id
    for i, j in [(0, 10), (2, 4), (2, 9)]:
        mvm[i, j] = input_ids[i, j] - vocab.visual_offset
        input_ids[i, j] = vocab.mask_id
    return {"input_ids": input_ids, "token_type_ids": token_types, "attention_mask": attention, "mlm_labels": mlm,
            "mvm_labels": mvm, "alignment_labels": torch.tensor([1, -100, -100]),
            "stream": torch.tensor([r[2] for r in rows])}


def test_config_presets_and_json_round_trip(tmp_path):
    config = VideoBertConfig.tiny(num_visual_words=WORDS, loss_weights=LossWeights(mvm=0.5))
    again = VideoBertConfig.from_json(config.to_json())
    assert again == config and isinstance(again.loss_weights, LossWeights)
    (tmp_path / "c.json").write_text(config.to_json())
    assert VideoBertConfig.from_json(tmp_path / "c.json") == config
    assert VideoBertConfig.base().hidden_size == 768 and VideoBertConfig.large().num_hidden_layers == 24
    assert VideoBertConfig.base().num_visual_words == 12**4
    with pytest.raises(ValueError, match="unknown config key"):
        VideoBertConfig.from_dict({**json.loads(config.to_json()), "hiden_size": 3})
    with pytest.raises(ValueError, match="multiple of num_attention_heads"):
        VideoBertConfig.tiny(hidden_size=66)


def test_forward_losses_and_accuracies_per_stream():
    model = tiny(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    batch = make_batch(model.config.vocab)
    out = model(**batch)
    assert set(out) == {"loss", "mlm_loss", "mvm_loss", "alignment_loss", "mlm_accuracy/video_text", "mlm_accuracy/text",
                        "mvm_accuracy/video_text", "mvm_accuracy/video", "alignment_accuracy"}
    # The same numbers computed the plain way: full logits, PyTorch cross-entropy.
    hidden = model.encode(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
    mlm = F.cross_entropy(model.text_logits(hidden).flatten(0, 1), batch["mlm_labels"].flatten())
    mvm = F.cross_entropy(model.visual_logits(hidden).flatten(0, 1), batch["mvm_labels"].flatten())
    align = F.binary_cross_entropy_with_logits(model.alignment_logits(hidden)[:1], torch.ones(1))
    torch.testing.assert_close(out["mlm_loss"], mlm)
    torch.testing.assert_close(out["mvm_loss"], mvm)
    torch.testing.assert_close(out["alignment_loss"], align)
    torch.testing.assert_close(out["loss"], mlm + mvm + align)
    predictions = model.visual_logits(hidden).argmax(-1)
    expected_video = (predictions[2, [4, 9]] == batch["mvm_labels"][2, [4, 9]]).float().mean()
    torch.testing.assert_close(out["mvm_accuracy/video"], expected_video)


def test_packed_rows_give_the_padded_batch_losses_and_gradients():
    """The same examples padded and packed (videobert.corpus.packing): the same losses, accuracies
    per stream and gradients (dropout off: it draws its masks over the layout)."""
    model = tiny(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    g = torch.Generator().manual_seed(1)
    streams = [VIDEO_TEXT, TEXT_ONLY, VIDEO_ONLY] * 4
    examples = [{"stream": s, "seed": i, "aligned": (i % 2) if s == VIDEO_TEXT else -100,
                 "text_ids": torch.randint(1000, 30000, (int(torch.randint(1, 30, (), generator=g)),), generator=g).tolist() if s != VIDEO_ONLY else [],
                 "visual_words": torch.randint(0, WORDS, (int(torch.randint(1, 20, (), generator=g)),), generator=g).tolist() if s != TEXT_ONLY else []}
                for i, s in enumerate(streams)]
    results = []
    for pack in (False, True):
        batch = MaskingCollator(model.config.vocab, max_length=64, mask_prob=0.3, pack_sequences=pack)(examples)
        model.zero_grad()
        out = model(**batch)
        out["loss"].backward()
        results.append((batch, {k: v.detach() for k, v in out.items()}, [p.grad.clone() for p in model.parameters()]))
    (padded, expected, expected_grads), (packed, got, grads) = results
    assert packed["input_ids"].numel() < 0.75 * padded["input_ids"].numel()
    assert set(got) == set(expected) and {"mlm_accuracy/video_text", "mvm_accuracy/video", "alignment_loss"} <= set(got)
    for key in expected:
        torch.testing.assert_close(got[key], expected[key], rtol=1e-5, atol=1e-6)
    for grad, expected_grad in zip(grads, expected_grads):
        torch.testing.assert_close(grad, expected_grad, rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="both position_ids and example_index"):
        model(**{k: v for k, v in packed.items() if k != "position_ids"})


def test_backward_reaches_every_parameter_and_omits_absent_objectives():
    model = tiny(loss_weights=LossWeights(mlm=2.0, mvm=0.0, alignment=1.0))
    batch = make_batch(model.config.vocab)
    batch["mlm_labels"][:] = -100  # no masked text in this batch
    out = model(**batch)
    assert "mlm_loss" not in out and "mlm_accuracy/text" not in out and "mvm_loss" in out
    torch.testing.assert_close(out["loss"], out["alignment_loss"])  # mvm weight 0, no mlm rows
    out["loss"].backward()
    missing = [name for name, p in model.named_parameters() if p.grad is None]
    assert not missing, f"parameters without gradient: {missing}"


@pytest.mark.parametrize("visual", [{}, {"visual_embeddings_from_centroids": True},
                                    {"visual_embeddings_from_centroids": True, "freeze_visual_embeddings": True}])
def test_training_step_flops_count_the_matmuls_torch_counts(visual):
    """The MFU numerator against torch's FLOP counter on one forward + backward (heads in plain
    PyTorch, which the counter can see into; the one sequence of the batch has no padding). In
    training mode: the counter sees attention's matmuls only where dropout sends SDPA down its math path."""
    from torch.utils.flop_counter import FlopCounterMode

    from videobert.models.videobert.flops import training_step_flops

    model = tiny(head_backend="reference", **visual).train()
    batch = {name: value[:1] for name, value in make_batch(model.config.vocab).items()}
    assert bool(batch["attention_mask"].all())
    with FlopCounterMode(display=False) as counter:
        model(**batch)["loss"].backward()
    assert counter.get_total_flops() == pytest.approx(training_step_flops(model.config, batch), rel=1e-3)


def test_fused_heads_train_like_the_reference_heads():
    fused, reference = tiny(head_backend="cpu"), tiny(head_backend="reference")
    reference.load_state_dict(fused.state_dict())
    fused.eval(), reference.eval()
    batch = make_batch(fused.config.vocab)
    fused(**batch)["loss"].backward()
    reference(**batch)["loss"].backward()
    for (name, a), (_, b) in zip(fused.named_parameters(), reference.named_parameters()):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-4, atol=1e-6, msg=name)


def test_decoders_are_tied_to_input_embeddings():
    model = tiny()
    hidden = torch.randn(2, 3, model.config.hidden_size)
    with torch.no_grad():
        text_before, visual_before = model.text_logits(hidden), model.visual_logits(hidden)
        model.embeddings.text_embeddings.weight[7] += 5.0
        model.embeddings.visual_embeddings.weight[3] += 5.0
        text_changed = (model.text_logits(hidden) != text_before).any(0).any(0)
        visual_changed = (model.visual_logits(hidden) != visual_before).any(0).any(0)
    assert text_before.shape == (2, 3, 30522) and visual_before.shape == (2, 3, WORDS)
    assert text_changed.nonzero().flatten().tolist() == [7]
    assert visual_changed.nonzero().flatten().tolist() == [3]
    names = {name for name, _ in model.named_parameters()}
    assert not any("decoder" in n for n in names)
    untied = tiny(tie_word_embeddings=False)
    assert {"mlm_head.decoder", "mvm_head.decoder"} <= {n for n, _ in untied.named_parameters()}


def test_padding_does_not_change_real_tokens():
    model = tiny().eval()
    batch = make_batch(model.config.vocab)
    ids, mask = batch["input_ids"][1:2], batch["attention_mask"][1:2]
    real = int(mask.sum())
    with torch.no_grad():
        padded = model.encode(ids, mask, batch["token_type_ids"][1:2])[0, :real]
        trimmed = model.encode(ids[:, :real], None, batch["token_type_ids"][1:2, :real])[0]
    torch.testing.assert_close(padded, trimmed, rtol=1e-5, atol=1e-5)


def test_save_and_load_round_trip(tmp_path):
    model = tiny()
    model.config.visual_projection = "learned"
    model.init_visual_embeddings(torch.randn(WORDS, 32), freeze=True)
    model.save_pretrained(tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["config.json", "model.safetensors"]
    loaded = VideoBertForPretraining.from_pretrained(tmp_path / "m").eval()
    model.eval()
    batch = make_batch(model.config.vocab)
    with torch.no_grad():
        a, b = model(**batch), loaded(**batch)
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key])
    assert loaded.config.visual_embeddings_from_centroids and not loaded.embeddings.visual_embeddings.projection.weight.requires_grad


@pytest.mark.parametrize("projection", ["learned", "fixed"])
def test_visual_embeddings_from_centroids_keep_neighbourhoods(projection):
    model = tiny(visual_projection=projection)
    g = torch.Generator().manual_seed(3)
    centroids = torch.randn(WORDS, 96, generator=g)
    centroids[1] = centroids[0] + 0.01 * torch.randn(96, generator=g)  # word 1 looks like word 0
    model.init_visual_embeddings(centroids)
    weight = model.embeddings.visual_embeddings.weight.detach()
    distances = torch.cdist(weight[:1], weight[1:])[0]
    assert int(distances.argmin()) == 0  # word 1 is word 0's nearest neighbour among the embeddings
    text_std = model.embeddings.text_embeddings.weight.detach().std()
    assert 0.3 < float(weight.std() / text_std) < 3
    trainable = [p for p in model.embeddings.visual_embeddings.parameters() if p.requires_grad]
    assert trainable
    batch = make_batch(model.config.vocab)
    model(**batch)["loss"].backward()
    assert all(p.grad is not None for p in trainable)


def test_frozen_visual_embeddings_get_no_gradient():
    model = tiny(visual_projection="fixed")
    model.init_visual_embeddings(torch.randn(WORDS, 64), freeze=True)
    assert not any(p.requires_grad for p in model.embeddings.visual_embeddings.parameters())
    with pytest.raises(ValueError, match="leaf_centroids must be"):
        model.init_visual_embeddings(torch.randn(WORDS + 1, 64))


def test_bad_ids_are_clear_errors():
    model = tiny()
    with pytest.raises(ValueError, match="input_ids must lie in"):
        model.encode(torch.tensor([[101, model.config.vocab.size]]))
    with pytest.raises(ValueError, match="max_position_embeddings"):
        model.encode(torch.zeros(1, 129, dtype=torch.int64))
