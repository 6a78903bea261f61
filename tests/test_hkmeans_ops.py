"""hkmeans_assign and centroid_update: every available backend against the plain PyTorch reference."""

import pytest
import torch

from videobert.ops import available_backends, centroid_update, hkmeans_assign
from videobert.ops.hkmeans_reference import (
    centroid_update_reference,
    hkmeans_assign_reference,
    level_offsets,
)

AVAILABLE = available_backends()
CPU_BACKENDS = ["cpu", "triton"]  # both must be present: _C is built by every install, triton runs interpreted


def make_tree(levels: int, branching: int, dim: int, seed: int = 0) -> torch.Tensor:
    """A tree whose children sit near their parent, like a fitted one (so descent is meaningful)."""
    g = torch.Generator().manual_seed(seed)
    parents = torch.zeros(1, dim)
    rows = []
    for level in range(levels):
        children = parents.repeat_interleave(branching, 0) + torch.randn(parents.shape[0] * branching, dim, generator=g) / (level + 1)
        rows.append(children)
        parents = children
    return torch.cat(rows)


def features_near(tree: torch.Tensor, n: int, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    picks = torch.randint(tree.shape[0], (n,), generator=g)
    return tree[picks] + 0.5 * torch.randn(n, tree.shape[1], generator=g)


def reference(x, tree, levels, branching):
    return hkmeans_assign_reference(x, tree, tree.pow(2).sum(1), levels, branching)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("n,dim,levels,branching", [(1, 1, 1, 2), (33, 17, 2, 5), (130, 100, 3, 12), (64, 1000, 2, 12), (7, 33, 4, 3)])
def test_assign_matches_reference_fp32(backend, n, dim, levels, branching):
    tree = make_tree(levels, branching, dim)
    x = features_near(tree, n)
    expected = reference(x, tree, levels, branching)
    got = hkmeans_assign(x, tree, levels, branching, backend=backend)
    assert got.dtype == torch.int64 and got.shape == (n, levels)
    assert torch.equal(got, expected)
    assert int(got[:, -1].max()) < branching**levels


@pytest.mark.parametrize("backend", ["reference"] + CPU_BACKENDS)
def test_empty_input_gives_empty_output(backend):
    tree = make_tree(2, 4, 8)
    got = hkmeans_assign(torch.empty(0, 8), tree, 2, 4, backend=backend)
    assert got.shape == (0, 2) and got.dtype == torch.int64


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_non_contiguous_input(backend):
    tree = make_tree(2, 6, 24)
    padded_rows = features_near(tree, 80).repeat(1, 2)[::2, :24]  # row stride 48, every other row
    column_major = features_near(tree, 40).t().contiguous().t()
    strided_columns = features_near(tree, 40).repeat_interleave(2, dim=1)[:, ::2]
    for x in (padded_rows, column_major, strided_columns):
        assert not x.is_contiguous()
        assert torch.equal(hkmeans_assign(x, tree, 2, 6, backend=backend), reference(x.contiguous(), tree, 2, 6))


@pytest.mark.parametrize("backend", ["reference"] + CPU_BACKENDS)
def test_ties_go_to_the_lower_index(backend):
    dim, branching = 20, 12
    tree = make_tree(2, branching, dim)
    # root children 3 and 9 are identical, and so are their whole subtrees
    tree[9] = tree[3]
    tree[branching + 9 * branching : branching + 10 * branching] = tree[branching + 3 * branching : branching + 4 * branching]
    # inside node 3, children 5 and 7 (and 0 and 11) are identical
    base = branching + 3 * branching
    tree[base + 7] = tree[base + 5]
    tree[base + 11] = tree[base + 0]
    x = torch.cat([tree[3:4] + 0.01 * torch.randn(50, dim), tree[base + 5 : base + 6].repeat(3, 1), tree[base : base + 1]])
    path = hkmeans_assign(x, tree, 2, branching, backend=backend)
    assert not (path[:, 0] == 9).any()
    assert (path[-4:-1, 1] == 3 * branching + 5).all() and path[-1, 1] == 3 * branching
    assert not torch.isin(path[:, 1], torch.tensor([3 * branching + 7, 3 * branching + 11])).any()


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_half_precision_features(backend):  # bf16 only on a GPU: the Triton interpreter gets it wrong
    dtype = torch.float16
    tree = make_tree(3, 7, 48)
    x = features_near(tree, 200).to(dtype)
    expected = reference(x, tree, 3, 7)  # the reference reads fp16 and computes in fp32 too
    got = hkmeans_assign(x, tree, 3, 7, backend=backend)
    # identical inputs and fp32 accumulation: only near-ties may differ (summation order)
    assert (got == expected).all(dim=1).float().mean() >= 0.99


def test_bad_inputs_are_clear_errors():
    tree = make_tree(2, 4, 8)
    with pytest.raises(ValueError, match="centroids must be float32 \\[20, 9\\]"):
        hkmeans_assign(torch.randn(3, 9), tree, 2, 4)
    with pytest.raises(ValueError, match="features must be"):
        hkmeans_assign(torch.randn(3, 8).double(), tree, 2, 4)
    with pytest.raises(ValueError, match="unknown backend"):
        hkmeans_assign(torch.randn(3, 8), tree, 2, 4, backend="gpu")


def test_fake_tensor_shapes():
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode():
        tree = torch.empty(level_offsets(3, 5)[-1], 16)
        path = torch.ops.videobert.hkmeans_assign(torch.empty(11, 16), tree, tree.pow(2).sum(1), 3, 5, "cpu")
        sums, counts = torch.ops.videobert.centroid_update(torch.empty(11, 16), torch.zeros(11, dtype=torch.int64), 5, "cpu")
    assert path.shape == (11, 3) and path.dtype == torch.int64
    assert sums.shape == (5, 16) and sums.dtype == torch.float64 and counts.shape == (5,)


@pytest.mark.parametrize("backend", ["reference"] + (["cpu"] if AVAILABLE["cpu"] else []))
@pytest.mark.parametrize("n,dim,k", [(0, 5, 3), (1, 1, 1), (257, 70, 12), (1000, 129, 5)])
def test_centroid_update_matches_reference(backend, n, dim, k):
    g = torch.Generator().manual_seed(n)
    x = torch.randn(n, dim, generator=g)
    labels = torch.randint(k, (n,), generator=g)
    sums, counts = centroid_update(x, labels, k, backend=backend)
    exp_sums, exp_counts = centroid_update_reference(x, labels, k)
    assert torch.equal(counts, exp_counts) and counts.sum() == n
    torch.testing.assert_close(sums, exp_sums, rtol=1e-12, atol=1e-12)
    xt = torch.randn(dim, n, generator=g).t()  # non-contiguous
    torch.testing.assert_close(centroid_update(xt, labels, k, backend=backend)[0], centroid_update_reference(xt, labels, k)[0])


def test_centroid_update_rejects_bad_labels():
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\)"):
        centroid_update(torch.randn(4, 2), torch.tensor([0, 1, 3, 0]), 3)
    with pytest.raises(ValueError, match="labels must be int64"):
        centroid_update(torch.randn(4, 2), torch.tensor([0, 1, 2, 0], dtype=torch.int32), 3)


@pytest.mark.gpu
@pytest.mark.parametrize("backend", ["cuda", "triton"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_gpu_backends_match_reference(backend, dtype):
    if not AVAILABLE[backend]:
        pytest.skip(f"{backend} backend not available")
    tree = make_tree(4, 12, 1000).cuda()
    x = features_near(tree.cpu(), 3000).to(dtype).cuda()
    expected = reference(x, tree, 4, 12)
    got = hkmeans_assign(x, tree, 4, 12, backend=backend)
    agree = (got == expected).all(dim=1).float().mean()
    assert agree == 1.0 if dtype == torch.float32 else agree >= 0.99
    assert hkmeans_assign(x[:0], tree, 4, 12, backend=backend).shape == (0, 4)
