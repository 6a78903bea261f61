"""videobert.ops.masked_token_loss: every backend against the full-logits reference."""

from __future__ import annotations

import pytest
import torch

import videobert.ops.masked_token_loss_fused as fused
from videobert.ops import masked_token_loss
from videobert.ops.masked_token_loss_fused import masked_token_loss_fused
from videobert.ops.masked_token_loss_reference import masked_token_loss_reference

from devices import TRITON_DEVICE, backend_on, skip_unsupported_dtype

BACKENDS = ["cpu", "triton"]
# Each backend on the devices it runs on here: the chunked PyTorch path ("cpu") on CPU and CUDA
# tensors, Triton on CUDA tensors (interpreted on CPU tensors without a GPU).
CASES = [backend_on("cpu", "cpu"), backend_on("cpu", "cuda"), backend_on("triton", TRITON_DEVICE)]
HALF_CASES = [backend_on("cpu", "cuda"), backend_on("triton", TRITON_DEVICE)]
# Relative to the largest value, against the fp32 reference: (loss, gradients).
HALF_TOLERANCE = {torch.float16: (2e-3, 2e-2), torch.bfloat16: (1e-2, 6e-2)}


def make_head(hidden: int, vocab: int, dtype: torch.dtype = torch.float32, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    tensors = [torch.randn(hidden, hidden, generator=g) * 0.3, torch.randn(hidden, generator=g) * 0.1,
               1 + 0.2 * torch.randn(hidden, generator=g), 0.1 * torch.randn(hidden, generator=g),
               torch.randn(vocab, hidden, generator=g) * 0.5, torch.randn(vocab, generator=g)]
    return [t.to(dtype).requires_grad_() for t in tensors]


def make_labels(shape: tuple[int, ...], vocab: int, masked: float, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, vocab, shape, generator=g)
    labels[torch.rand(shape, generator=g) >= masked] = -100
    return labels


def run(hidden, labels, head, backend, **kwargs):
    out = masked_token_loss(hidden, labels, *head, backend=backend, **kwargs)
    grads = torch.autograd.grad(out.loss, [hidden, *head])
    return out, grads


def on(device, tensors, dtype=None):
    """Fresh leaf copies of ``tensors`` on ``device`` (in ``dtype``), requiring grad when floating point."""
    moved = [t.detach().to(device=device, dtype=dtype if t.is_floating_point() and dtype else t.dtype) for t in tensors]
    return [t.requires_grad_() if t.is_floating_point() else t for t in moved]


def assert_close_relative(actual, expected, rtol):
    actual, expected = actual.detach().cpu().double(), expected.detach().cpu().double()
    scale = expected.abs().max().clamp_min(1e-30)
    assert ((actual - expected).abs().max() / scale).item() <= rtol


@pytest.fixture
def small_chunks(monkeypatch):
    """Force several vocabulary chunks (and a ragged last one) on small test shapes."""
    monkeypatch.setattr(fused, "CHUNK_ELEMENTS", 1)  # -> chunks of the 256-entry minimum
    if TRITON_DEVICE:
        import videobert.ops.triton.masked_token_loss as triton_loss

        monkeypatch.setattr(triton_loss, "GRAD_CHUNK_ELEMENTS", 1)


@pytest.mark.parametrize("backend,device", CASES)
@pytest.mark.parametrize("shape,hidden_size,vocab,masked", [
    ((3, 11), 40, 601, 0.3),   # ragged everything, 3 chunks of 256 on the cpu path
    ((1, 1), 24, 37, 1.0),     # one row
    ((70,), 48, 300, 0.9),     # rows span several Triton row blocks
])
def test_matches_reference_fp32(backend, device, shape, hidden_size, vocab, masked, small_chunks):
    hidden = torch.randn(*shape, hidden_size, requires_grad=True)
    labels = make_labels(shape, vocab, masked)
    head = make_head(hidden_size, vocab)
    expected, expected_grads = run(hidden, labels, head, "reference")
    hidden_d, labels_d, *head_d = on(device, [hidden, labels, *head])
    actual, actual_grads = run(hidden_d, labels_d, head_d, backend)
    assert actual.loss.device.type == device
    assert actual.rows.tolist() == (labels.reshape(-1) != -100).nonzero().squeeze(1).tolist()
    assert_close_relative(actual.loss, expected.loss, 1e-5)
    assert torch.equal(actual.predictions.cpu(), expected.predictions)
    for a, e in zip(actual_grads, expected_grads):
        assert_close_relative(a, e, 1e-5)


@pytest.mark.parametrize("backend,device", HALF_CASES)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_matches_fp32_reference(backend, device, dtype, small_chunks):
    skip_unsupported_dtype(backend, device, dtype)
    torch.manual_seed(0)
    hidden32 = torch.randn(4, 9, 64)
    labels = make_labels((4, 9), 333, 0.5)
    head32 = make_head(64, 333)
    # the reference in fp32 on the values the half-precision run sees (rounded to dtype)
    rounded = [t.detach().to(dtype).float().requires_grad_() for t in (hidden32, *head32)]
    expected, expected_grads = run(rounded[0], labels, rounded[1:], "reference")
    hidden16, labels_d, *head16 = on(device, [hidden32, labels, *head32], dtype)
    actual, actual_grads = run(hidden16, labels_d, head16, backend)
    loss_tol, grad_tol = HALF_TOLERANCE[dtype]
    assert actual.loss.dtype == torch.float32
    assert_close_relative(actual.loss, expected.loss, loss_tol)
    for a, e in zip(actual_grads, expected_grads):
        assert a.dtype == dtype
        assert_close_relative(a, e, grad_tol)


@pytest.mark.parametrize("backend,device", [backend_on("reference", "cpu"), *CASES])
def test_no_masked_rows_gives_zero_loss_and_zero_gradients(backend, device):
    hidden, labels, *head = on(device, [torch.randn(2, 5, 16), torch.full((2, 5), -100), *make_head(16, 50)])
    out, grads = run(hidden, labels, head, backend)
    assert out.loss.item() == 0.0 and out.rows.numel() == 0 and out.predictions.numel() == 0
    assert all(g is not None and torch.count_nonzero(g) == 0 for g in grads)


@pytest.mark.parametrize("backend,device", [backend_on("cpu", "cuda"), backend_on("triton", TRITON_DEVICE)])
def test_gradients_are_deterministic(backend, device, small_chunks):
    """The same inputs give the same gradient bits (the Triton bias gradient sums per-program
    partials in a fixed order instead of adding fp32 atomics)."""
    hidden, labels, *head = on(device, [torch.randn(100, 32), make_labels((100,), 300, 0.9), *make_head(32, 300)])
    first = run(hidden, labels, head, backend)[1]
    second = run(hidden, labels, head, backend)[1]
    for a, b in zip(first, second):
        assert torch.equal(a, b)


def test_gradcheck_two_pass_cpu_path_fp64(small_chunks):
    """The vocabulary-chunked backward (recomputing logits) against finite differences."""
    hidden = torch.randn(5, 6, dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([3, 2, 0, 299, 7])
    head = make_head(6, 300, torch.float64)
    two_pass = fused.ChunkedTorchVocab(precompute_grads=False)

    def loss(*inputs):
        return masked_token_loss_fused(inputs[0], labels, *inputs[1:], vocab_ops=two_pass)[0]

    assert torch.autograd.gradcheck(loss, (hidden, *head), eps=1e-6, atol=1e-7)


def test_precomputed_gradients_match_two_pass_and_refuse_a_second_backward(small_chunks):
    hidden = torch.randn(9, 16, dtype=torch.float64, requires_grad=True)
    labels = torch.randint(0, 300, (9,))
    head = make_head(16, 300, torch.float64)
    inputs = [hidden, *head]
    one_pass = masked_token_loss_fused(hidden, labels, *head)[0] * 0.37
    grads_a = torch.autograd.grad(one_pass, inputs, retain_graph=True)
    two_pass = masked_token_loss_fused(hidden, labels, *head, vocab_ops=fused.ChunkedTorchVocab(precompute_grads=False))[0] * 0.37
    grads_b = torch.autograd.grad(two_pass, inputs)
    for a, b in zip(grads_a, grads_b):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    with pytest.raises(RuntimeError, match="backward once per forward"):
        torch.autograd.grad(one_pass, inputs)


@pytest.mark.parametrize("backend,device", CASES)
def test_non_contiguous_input_and_sum_reduction(backend, device):
    hidden = torch.randn(16, 6, 3).permute(2, 1, 0).requires_grad_()  # [3, 6, 16], non-contiguous
    labels = make_labels((3, 6), 90, 0.6)
    head = make_head(16, 90)
    expected, expected_grads = run(hidden, labels, head, "reference", reduction="sum")
    hidden_d = torch.randn(16, 6, 3, device=device).permute(2, 1, 0).detach()
    hidden_d.copy_(hidden.detach()).requires_grad_()
    assert not hidden_d.is_contiguous()
    labels_d, *head_d = on(device, [labels, *head])
    actual, actual_grads = run(hidden_d, labels_d, head_d, backend, reduction="sum")
    assert_close_relative(actual.loss, expected.loss, 1e-5)
    for a, e in zip(actual_grads, expected_grads):
        assert_close_relative(a, e, 1e-5)


def test_fused_function_agrees_with_reference_directly():
    x = torch.randn(7, 12, dtype=torch.float64, requires_grad=True)
    labels = torch.randint(0, 41, (7,))
    head = make_head(12, 41, torch.float64)
    loss_a, pred_a = masked_token_loss_reference(x, labels, *head)
    loss_b, pred_b = masked_token_loss_fused(x, labels, *head)
    torch.testing.assert_close(loss_a, loss_b, rtol=1e-12, atol=0)
    assert torch.equal(pred_a, pred_b)


def test_bad_input_is_a_clear_error():
    hidden = torch.randn(2, 3, 8)
    head = make_head(8, 10)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 10\)"):
        masked_token_loss(hidden, torch.full((2, 3), 10), *head)
    with pytest.raises(ValueError, match="labels shape"):
        masked_token_loss(hidden, torch.zeros(2, 4, dtype=torch.int64), *head)
    with pytest.raises(ValueError, match="decoder_bias has shape"):
        masked_token_loss(hidden, torch.zeros(2, 3, dtype=torch.int64), *head[:5], torch.zeros(11))
    with pytest.raises(ValueError, match="unknown backend"):
        masked_token_loss(hidden, torch.zeros(2, 3, dtype=torch.int64), *head, backend="magic")
    with pytest.raises(TypeError, match="int64"):
        masked_token_loss(hidden, torch.zeros(2, 3, dtype=torch.int32), *head)
    with pytest.raises(ValueError, match="labels are on meta, hidden on cpu"):
        masked_token_loss(hidden, torch.zeros(2, 3, dtype=torch.int64, device="meta"), *head)


def test_autotune_prunes_tiles_larger_than_the_problem():
    triton_loss = pytest.importorskip("videobert.ops.triton.masked_token_loss")
    small = triton_loss._prune_tiles(triton_loss.TILE_CONFIGS, {"n": 5, "vocab": 40, "hidden": 24})
    assert small == [triton_loss.FIXED_TILES]  # only the 32 x 64 x 32 tile fits a tiny head
    large = triton_loss._prune_tiles(triton_loss.TILE_CONFIGS, {"n": 9000, "vocab": 30522, "hidden": 768})
    assert large == triton_loss.TILE_CONFIGS


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_autotuned_triton_tiles_match_reference(dtype, monkeypatch):
    """The autotuned kernels (the default on a GPU; the other tests pin one tile) at a size where
    every tile config is tried."""
    triton_loss = pytest.importorskip("videobert.ops.triton.masked_token_loss")
    monkeypatch.setenv("VIDEOBERT_TRITON_AUTOTUNE", "1")
    hidden = torch.randn(700, 128)
    labels = make_labels((700,), 3001, 0.8)
    head = make_head(128, 3001)
    rounded = [t.detach().to(dtype).float().requires_grad_() for t in (hidden, *head)]
    expected, expected_grads = run(rounded[0], labels, rounded[1:], "reference")
    hidden_d, labels_d, *head_d = on("cuda", [hidden, labels, *head], dtype)
    actual, actual_grads = run(hidden_d, labels_d, head_d, "triton")
    assert triton_loss._forward_tuned.best_config.kwargs in [config.kwargs for config in triton_loss.TILE_CONFIGS]
    loss_tol, grad_tol = (1e-5, 1e-4) if dtype == torch.float32 else HALF_TOLERANCE[dtype]
    assert_close_relative(actual.loss, expected.loss, loss_tol)
    for a, e in zip(actual_grads, expected_grads):
        assert_close_relative(a, e, grad_tol)
