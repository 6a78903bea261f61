"""Encoder attention keeps PyTorch's fused SDPA kernels eligible: no mask reaches
``scaled_dot_product_attention`` when nothing is padded, a padded batch still masks its padding, and
sequences packed into one row attend to themselves only.

Equality both ways: an all-ones mask gives exactly the output of no mask, and a padded batch gives
at its real positions the output of the unpadded sequences. On a GPU the flash kernel (which takes
no mask) must accept an unpadded batch, and the memory-efficient kernel a padded one.
"""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

import videobert.models.transformer as encoder_module
from videobert.models.videobert.config import VideoBertConfig
from videobert.models.transformer import Encoder

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)]


def make_encoder(device: str, dtype: torch.dtype = torch.float32) -> Encoder:
    torch.manual_seed(0)
    return Encoder(VideoBertConfig.tiny(hidden_size=128, num_attention_heads=2)).eval().to(device=device, dtype=dtype)


@pytest.fixture
def sdpa_masks(monkeypatch) -> list:
    """The ``attn_mask`` of every call to the real ``scaled_dot_product_attention``."""
    seen = []
    real = F.scaled_dot_product_attention

    def recording(*args, attn_mask=None, **kwargs):
        seen.append(attn_mask)
        return real(*args, attn_mask=attn_mask, **kwargs)

    monkeypatch.setattr(encoder_module.F, "scaled_dot_product_attention", recording)
    return seen


@pytest.mark.parametrize("device", DEVICES)
@torch.no_grad()
def test_all_ones_mask_reaches_sdpa_as_no_mask_and_changes_nothing(device, sdpa_masks):
    encoder = make_encoder(device)
    hidden = torch.randn(3, 16, 128, device=device)
    unmasked = encoder(hidden)
    ones = encoder(hidden, torch.ones(3, 16, dtype=torch.int64, device=device))
    assert sdpa_masks and all(mask is None for mask in sdpa_masks)
    assert torch.equal(ones, unmasked)


@pytest.mark.parametrize("device", DEVICES)
@torch.no_grad()
def test_padding_is_still_masked(device, sdpa_masks):
    encoder = make_encoder(device)
    hidden = torch.randn(2, 16, 128, device=device)
    mask = torch.ones(2, 16, dtype=torch.int64, device=device)
    mask[1, 11:] = 0
    padded = encoder(hidden, mask)
    assert all(m is not None and m.dtype == torch.bool for m in sdpa_masks)
    alone = encoder(hidden[1:, :11])  # the second sequence without its padding
    torch.testing.assert_close(padded[1, :11], alone[0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(padded[0], encoder(hidden[:1])[0], rtol=1e-5, atol=1e-5)


@pytest.mark.gpu
@torch.no_grad()
def test_fused_kernels_accept_the_encoders_calls():
    from torch.nn.attention import SDPBackend, sdpa_kernel

    encoder = make_encoder("cuda", torch.bfloat16)
    hidden = torch.randn(4, 64, 128, device="cuda", dtype=torch.bfloat16)
    ones = torch.ones(4, 64, dtype=torch.int64, device="cuda")
    with sdpa_kernel(SDPBackend.MATH):
        expected = encoder(hidden, ones)
    with sdpa_kernel(SDPBackend.FLASH_ATTENTION):  # raises "no available kernel" if a mask got through
        flash = encoder(hidden, ones)
    torch.testing.assert_close(flash, expected, rtol=5e-2, atol=5e-2)
    padded = ones.clone()
    padded[:, 40:] = 0
    with sdpa_kernel(SDPBackend.MATH):
        expected = encoder(hidden, padded)
    with sdpa_kernel(SDPBackend.EFFICIENT_ATTENTION):
        efficient = encoder(hidden, padded)
    torch.testing.assert_close(efficient[:, :40], expected[:, :40], rtol=5e-2, atol=5e-2)


@pytest.mark.parametrize("device", DEVICES)
@torch.no_grad()
def test_packed_sequences_attend_to_their_own_positions_only(device):
    encoder = make_encoder(device)
    hidden = torch.randn(1, 16, 128, device=device)
    example_index = torch.tensor([[0] * 9 + [1] * 5 + [-1] * 2], device=device)
    packed = encoder(hidden, example_index=example_index)
    torch.testing.assert_close(packed[0, :9], encoder(hidden[:, :9])[0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(packed[0, 9:14], encoder(hidden[:, 9:14])[0], rtol=1e-5, atol=1e-5)
