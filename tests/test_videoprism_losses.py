"""VideoPrism's objectives: the contrastive loss against a plain reference, its cross-rank gather
on two CPU gloo ranks, and the token shuffling before the stage-2 decoder."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.nn import functional as F

from videobert.models.videoprism import VideoPrismConfig
from videobert.models.videoprism.collator import VideoPrismCollator
from videobert.models.videoprism.contrastive import contrastive_loss
from videobert.models.videoprism.distillation import DistillationDecoder, draw_shuffle, draw_tube_mask


def plain_clip_loss(video: torch.Tensor, text: torch.Tensor, scale: float) -> torch.Tensor:
    """CLIP's symmetric InfoNCE written out: logits [B, B], partners on the diagonal."""
    logits = scale * F.normalize(text, dim=-1) @ F.normalize(video, dim=-1).t()
    targets = torch.arange(len(video))
    return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.t(), targets)) / 2


def embeddings(batch: int = 6, dim: int = 5, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, dim, generator=g), torch.randn(batch, dim, generator=g)


def test_contrastive_loss_equals_plain_reference():
    video, text = embeddings()
    scale = torch.tensor(7.5)
    loss, accuracy = contrastive_loss(video, text, scale)
    torch.testing.assert_close(loss, plain_clip_loss(video, text, 7.5))
    loss_with_keys, _ = contrastive_loss(video, text, scale, torch.arange(6))  # all texts distinct: the same loss
    torch.testing.assert_close(loss_with_keys, loss)
    perfect, perfect_accuracy = contrastive_loss(video, video.clone(), torch.tensor(100.0))
    assert float(perfect_accuracy) == 1.0 and float(perfect) < 1e-3 and 0 <= float(accuracy) <= 1


def test_pairs_with_the_same_text_are_not_negatives():
    video, text = embeddings()
    keys = torch.tensor([0, 1, 2, 1, 3, 4])  # pairs 1 and 3 read the same sentence
    loss, _ = contrastive_loss(video, text, torch.tensor(3.0), keys)
    logits = 3.0 * F.normalize(text, dim=-1) @ F.normalize(video, dim=-1).t()
    expected = []
    for row in range(6):
        others = [c for c in range(6) if c == row or keys[c] != keys[row]]
        target = others.index(row)
        expected.append((F.cross_entropy(logits[row, others][None], torch.tensor([target]))
                         + F.cross_entropy(logits[others, row][None], torch.tensor([target]))) / 2)
    torch.testing.assert_close(loss, torch.stack(expected).mean())
    with pytest.raises(ValueError, match="must both be"):
        contrastive_loss(video, text[:, :3], torch.tensor(1.0))


def _rank(rank: int, world: int, init_file: str, results) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        video, text = embeddings(batch=8)
        keys = torch.tensor([0, 1, 2, 3, 1, 5, 6, 0])
        rows = slice(rank * 4, rank * 4 + 4)
        local_video = video[rows].clone().requires_grad_(True)
        local_text = text[rows].clone().requires_grad_(True)
        scale = torch.tensor(4.0, requires_grad=True)
        loss, _ = contrastive_loss(local_video, local_text, scale, keys[rows])
        loss.backward()
        results.put((rank, float(loss.detach()), local_video.grad.numpy(), local_text.grad.numpy(), float(scale.grad)))
    finally:
        dist.destroy_process_group()


def test_negatives_are_gathered_across_two_cpu_ranks(tmp_path):
    """Two gloo ranks of 4 pairs each train as one process with the 8 pairs: the ranks' mean loss
    is the full loss, and each rank's rows get the full gradient (DeepSpeed averages ranks, so the
    per-rank gradient of a row is the world size times the full batch's)."""
    video, text = embeddings(batch=8)
    keys = torch.tensor([0, 1, 2, 3, 1, 5, 6, 0])
    full_video, full_text = video.clone().requires_grad_(True), text.clone().requires_grad_(True)
    scale = torch.tensor(4.0, requires_grad=True)
    full, _ = contrastive_loss(full_video, full_text, scale, keys)
    full.backward()

    context = mp.get_context("spawn")
    results = context.Queue()
    processes = [context.Process(target=_rank, args=(r, 2, str(tmp_path / "init"), results)) for r in range(2)]
    for p in processes:
        p.start()
    got = sorted(results.get(timeout=120) for _ in processes)
    for p in processes:
        p.join(timeout=60)
        assert p.exitcode == 0
    losses = [g[1] for g in got]
    assert losses[0] != pytest.approx(losses[1])  # each rank scores its own rows
    assert np.mean(losses) == pytest.approx(float(full.detach()), rel=1e-5)
    torch.testing.assert_close(torch.from_numpy(np.concatenate([g[2] for g in got])), 2 * full_video.grad, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(torch.from_numpy(np.concatenate([g[3] for g in got])), 2 * full_text.grad, rtol=1e-4, atol=1e-6)
    assert sum(g[4] for g in got) == pytest.approx(2 * float(scale.grad), rel=1e-4)


def test_shuffle_is_a_permutation_that_hides_positions():
    """The decoder receives each visible slot's token from a random position: over many examples a
    slot holds its own token about 1 / (T·V) of the time, so order alone tells it nothing; the
    tokens are all there, once each."""
    config = VideoPrismConfig.tiny(stage=2, text={"vocab_size": 50})
    decoder = DistillationDecoder(config)
    rng = np.random.default_rng(0)
    visible = torch.tensor(np.stack([draw_tube_mask(rng, config.spatial_tokens, config.masked_positions) for _ in range(400)]))
    count = config.num_frames * visible.shape[1]
    order = torch.tensor(np.stack([draw_shuffle(rng, count) for _ in range(400)]))
    tokens = torch.arange(count, dtype=torch.float32).view(1, config.num_frames, -1, 1).expand(400, -1, -1, config.hidden_size)
    shuffled = decoder.shuffle(tokens, order)[..., 0]
    assert torch.equal(shuffled.sort(dim=1).values, torch.arange(count, dtype=torch.float32).expand(400, -1))
    in_place = (shuffled == torch.arange(count)).float().mean()
    assert float(in_place) < 3 / count
    # the visible slots carry the shuffled tokens, the masked ones the mask token
    slots = decoder.slots(tokens[:1], visible[:1], order[:1])
    positions = (torch.arange(config.num_frames)[:, None] * config.spatial_tokens + visible[0][None]).flatten()
    torch.testing.assert_close(slots[0, positions], decoder.shuffle(tokens[:1], order[:1])[0])
    masked = torch.ones(slots.shape[1], dtype=torch.bool)
    masked[positions] = False
    assert torch.equal(slots[0, masked], decoder.mask_token.detach().expand(int(masked.sum()), -1))


def test_the_decoder_sees_the_tokens_only_through_their_shuffled_slots():
    """The decoder's predictions are a function of what sits in each slot: the tokens given in
    ``order`` predict exactly what the same tokens, shuffled beforehand and given in their own order,
    predict (nothing else tells it where a token was encoded); given unshuffled, the same tokens
    give other predictions at nearly every visible slot."""
    config = VideoPrismConfig.tiny(stage=2, text={"vocab_size": 50})
    torch.manual_seed(0)
    decoder = DistillationDecoder(config).eval()
    for parameter in (decoder.positions, decoder.mask_token):
        torch.nn.init.normal_(parameter, std=0.02)  # as the model initialises them (they start at zero)
    visible = torch.from_numpy(draw_tube_mask(np.random.default_rng(1), config.spatial_tokens, config.masked_positions))[None]
    count = config.num_frames * visible.shape[1]
    tokens = torch.randn(1, config.num_frames, visible.shape[1], config.hidden_size)
    identity = torch.arange(count)[None]
    order = torch.from_numpy(draw_shuffle(np.random.default_rng(2), count))[None]
    with torch.no_grad():
        shuffled = decoder(tokens, visible, order)
        pre_shuffled = decoder(decoder.shuffle(tokens, order).view_as(tokens), visible, identity)
        unshuffled = decoder(tokens, visible, identity)
    assert shuffled.shape == (1, config.num_frames, config.spatial_tokens, config.hidden_size)
    torch.testing.assert_close(pre_shuffled, shuffled)
    differs = (shuffled - unshuffled)[0][:, visible[0]].abs().amax(-1) > 1e-3  # [T, V]
    assert float(differs.float().mean()) > 0.9


def test_collator_draws_masks_and_orders_from_each_examples_seed():
    config = VideoPrismConfig.tiny(stage=2, text={"vocab_size": 50})
    clip = np.zeros((config.num_frames, config.image_size, config.image_size, 3), np.uint8)
    collate = VideoPrismCollator(config)
    a = collate([{"frames": clip, "seed": 5}, {"frames": clip, "seed": 6}])
    b = collate([{"frames": clip, "seed": 6}])
    assert torch.equal(a["visible"][1], b["visible"][0]) and torch.equal(a["shuffle"][1], b["shuffle"][0])
    assert not torch.equal(a["visible"][0], a["visible"][1])
    assert a["visible"].shape == (2, config.spatial_tokens - config.masked_positions)
    assert a["attention_mask"].shape == a["shuffle"].shape == (2, config.num_frames * a["visible"].shape[1])
