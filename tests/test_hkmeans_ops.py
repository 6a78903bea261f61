"""hkmeans_assign and centroid_update: every available backend against the plain PyTorch reference."""

import pytest
import torch

from videobert.ops import available_backends, centroid_update, hkmeans_assign
from videobert.ops.hkmeans import LloydStepCPU
from videobert.ops.hkmeans_reference import (
    centroid_update_reference,
    hkmeans_assign_reference,
    level_offsets,
)

from devices import CPU_ISAS, DTYPES, TRITON_DEVICE, backend_on, cpu_isa, skip_unavailable, skip_unsupported_dtype  # noqa: F401 (fixture)

AVAILABLE = available_backends()
# Every assignment backend on the device it runs on here: the C++ kernel on CPU tensors, Triton on
# CUDA tensors (interpreted on CPU tensors without a GPU), the CUDA kernel on CUDA tensors (skipped
# without a GPU). The reference is always computed on the CPU in fp32.
ASSIGN_CASES = [backend_on("cpu", "cpu"), backend_on("triton", TRITON_DEVICE), backend_on("cuda", "cuda")]


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
    x, tree = x.cpu(), tree.cpu()
    return hkmeans_assign_reference(x, tree, tree.pow(2).sum(1), levels, branching)


def assign(x, tree, levels, branching, backend, device):
    """``hkmeans_assign`` on ``device``; the path comes back on that device and is returned on the CPU."""
    skip_unavailable(backend)
    path = hkmeans_assign(x.to(device), tree.to(device), levels, branching, backend=backend)
    assert path.device.type == device
    return path.cpu()


@pytest.mark.parametrize("backend,device", ASSIGN_CASES)
@pytest.mark.parametrize("n,dim,levels,branching", [(1, 1, 1, 2), (33, 17, 2, 5), (130, 100, 3, 12), (64, 1000, 2, 12), (7, 33, 4, 3)])
def test_assign_matches_reference_fp32(backend, device, n, dim, levels, branching):
    tree = make_tree(levels, branching, dim)
    x = features_near(tree, n)
    expected = reference(x, tree, levels, branching)
    got = assign(x, tree, levels, branching, backend, device)
    assert got.dtype == torch.int64 and got.shape == (n, levels)
    assert torch.equal(got, expected)
    assert int(got[:, -1].max()) < branching**levels


@pytest.mark.parametrize("cpu_isa", CPU_ISAS, indirect=True)
def test_every_cpu_isa_variant_matches_reference(cpu_isa):
    """Each ISA variant of the C++ kernel (its own vector width and tile shape) on awkward shapes:
    dims below, at and past one vector, tiles cut short by a node's vector count, 12 children in
    passes of 6 or 4, and identical children (ties)."""
    import videobert._C

    assert videobert._C.cpu_isa().startswith(cpu_isa)
    for n, dim, levels, branching in [(1, 1, 1, 2), (33, 17, 2, 5), (130, 100, 3, 12), (64, 1000, 2, 12), (7, 33, 4, 3),
                                      (50, 8, 2, 7), (300, 1024, 2, 12)]:
        tree = make_tree(levels, branching, dim)
        x = features_near(tree, n)
        assert torch.equal(assign(x, tree, levels, branching, "cpu", "cpu"), reference(x, tree, levels, branching))
    test_ties_go_to_the_lower_index("cpu", "cpu")
    test_rows_holding_nan_or_inf_get_minus_one("cpu", "cpu")


def test_forcing_an_unknown_isa_variant_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("VIDEOBERT_ISA", "avx9000")
    tree = make_tree(2, 4, 8)
    with pytest.raises(ValueError, match="VIDEOBERT_ISA=avx9000: expected avx512, avx2 or baseline"):
        hkmeans_assign(torch.randn(3, 8), tree, 2, 4, backend="cpu")


@pytest.mark.parametrize("backend,device", [backend_on("reference", "cpu"), *ASSIGN_CASES])
def test_empty_input_gives_empty_output(backend, device):
    tree = make_tree(2, 4, 8)
    got = assign(torch.empty(0, 8), tree, 2, 4, backend, device)
    assert got.shape == (0, 2) and got.dtype == torch.int64


@pytest.mark.parametrize("backend,device", ASSIGN_CASES)
def test_non_contiguous_input(backend, device):
    tree = make_tree(2, 6, 24).to(device)
    padded_rows = features_near(tree.cpu(), 80).to(device).repeat(1, 2)[::2, :24]  # row stride 48, every other row
    column_major = features_near(tree.cpu(), 40).to(device).t().contiguous().t()
    strided_columns = features_near(tree.cpu(), 40).to(device).repeat_interleave(2, dim=1)[:, ::2]
    for x in (padded_rows, column_major, strided_columns):
        assert not x.is_contiguous()
        assert torch.equal(assign(x, tree, 2, 6, backend, device), reference(x.contiguous(), tree, 2, 6))


@pytest.mark.parametrize("backend,device", [backend_on("reference", "cpu"), *ASSIGN_CASES])
def test_ties_go_to_the_lower_index(backend, device):
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
    path = assign(x, tree, 2, branching, backend, device)
    assert not (path[:, 0] == 9).any()
    assert (path[-4:-1, 1] == 3 * branching + 5).all() and path[-1, 1] == 3 * branching
    assert not torch.isin(path[:, 1], torch.tensor([3 * branching + 7, 3 * branching + 11])).any()


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")  # Triton's interpreter on row 90
@pytest.mark.parametrize("backend,device", [backend_on("reference", "cpu"), *ASSIGN_CASES])
def test_rows_holding_nan_or_inf_get_minus_one(backend, device):
    """Every level of a row with NaN, +inf or -inf (also inf and -inf together, which cancel in a
    sum) is -1; a finite row whose float32 dot products overflow keeps a real path, and every
    other row is the reference's."""
    levels, branching, dim = 3, 12, 100
    tree = make_tree(levels, branching, dim)
    x = features_near(tree, 120)
    x[5, 3] = float("nan")
    x[17, 0] = float("inf")
    x[40, -1] = float("-inf")
    x[41, 0], x[41, 1] = float("inf"), float("-inf")
    x[90] = 3e37  # finite; x.c overflows float32
    bad = torch.zeros(120, dtype=torch.bool)
    bad[[5, 17, 40, 41]] = True
    got = assign(x, tree, levels, branching, backend, device)
    assert torch.equal((got == -1).all(dim=1), bad)
    assert (got[~bad] >= 0).all()
    good = ~bad
    good[90] = False
    assert torch.equal(got[good], reference(x[good], tree, levels, branching))


@pytest.mark.parametrize("backend,device", ASSIGN_CASES)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_features(backend, device, dtype):
    skip_unsupported_dtype(backend, device, dtype)
    tree = make_tree(3, 7, 48)
    x = features_near(tree, 200).to(dtype)
    expected = reference(x, tree, 3, 7)  # the reference reads the same 16-bit values and computes in fp32 too
    got = assign(x, tree, 3, 7, backend, device)
    # identical inputs and fp32 accumulation: only near-ties may differ (summation order)
    assert (got == expected).all(dim=1).float().mean() >= 0.99


def test_inputs_on_another_device_are_clear_errors():
    """Raw pointers of the wrong device would crash the kernels: every tensor's device is checked first
    (a meta tensor stands in for "another device" on a CPU-only host)."""
    tree = make_tree(2, 4, 8)
    x = features_near(tree, 5)
    with pytest.raises(ValueError, match="hkmeans_assign: centroid_norms is on meta, but the input is on cpu"):
        hkmeans_assign(x, tree, 2, 4, centroid_norms=torch.empty(20, device="meta"), backend="cpu")
    with pytest.raises(ValueError, match="hkmeans_assign: centroids is on meta"):
        hkmeans_assign(x, tree.to("meta"), 2, 4)
    with pytest.raises(ValueError, match="centroid_update: labels is on meta"):
        centroid_update(x, torch.zeros(5, dtype=torch.int64, device="meta"), 3)
    with pytest.raises(ValueError, match="centroids and norms must be float32"):  # the op itself checks too
        torch.ops.videobert.hkmeans_assign(x, tree, tree.pow(2).sum(1).double(), 2, 4, "cpu")
    with pytest.raises(ValueError, match="backend 'cuda' cannot read tensors on cpu"):
        torch.ops.videobert.hkmeans_assign(x, tree, tree.pow(2).sum(1), 2, 4, "cuda")
    if AVAILABLE["cpu"]:
        step = LloydStepCPU(x, 4)
        with pytest.raises(ValueError, match="LloydStepCPU: centres is on meta"):
            step(tree[:4].to("meta"), tree[:4].pow(2).sum(1))


@pytest.mark.gpu
def test_cuda_features_with_cpu_centroids_raise_instead_of_crashing():
    tree = make_tree(2, 4, 8)
    x = features_near(tree, 5).cuda()
    for backend in ("cuda", "triton"):
        if AVAILABLE[backend]:
            with pytest.raises(ValueError, match="centroid_norms is on cpu, but the input is on cuda"):
                hkmeans_assign(x, tree.cuda(), 2, 4, centroid_norms=tree.pow(2).sum(1), backend=backend)
            with pytest.raises(ValueError, match="centroids is on cpu"):
                hkmeans_assign(x, tree, 2, 4, backend=backend)
            with pytest.raises(ValueError, match="centroid_norms is on cpu"):  # the op called directly checks too
                torch.ops.videobert.hkmeans_assign(x, tree.cuda(), tree.pow(2).sum(1), 2, 4, backend)


def test_bad_inputs_are_clear_errors():
    tree = make_tree(2, 4, 8)
    with pytest.raises(ValueError, match="centroids must be float32 \\[20, 9\\]"):
        hkmeans_assign(torch.randn(3, 9), tree, 2, 4)
    with pytest.raises(ValueError, match="features must be"):
        hkmeans_assign(torch.randn(3, 8).double(), tree, 2, 4)
    with pytest.raises(ValueError, match="unknown backend"):
        hkmeans_assign(torch.randn(3, 8), tree, 2, 4, backend="gpu")
    if AVAILABLE["cpu"]:
        points = torch.randn(6, 8)
        points[4, 2] = float("nan")
        with pytest.raises(ValueError, match="points row 4 contains NaN or inf"):
            LloydStepCPU(points, 3)


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
@pytest.mark.parametrize("dtype", DTYPES)
def test_gpu_backends_match_reference_at_the_papers_size(backend, dtype):
    """4 levels x 12 children (20,736 words), D = 1024: the size extraction runs at."""
    skip_unavailable(backend)
    tree = make_tree(4, 12, 1024)
    x = features_near(tree, 3000).to(dtype)
    expected = reference(x, tree, 4, 12)
    got = assign(x, tree, 4, 12, backend, "cuda")
    agree = (got == expected).all(dim=1).float().mean()
    assert agree == 1.0 if dtype == torch.float32 else agree >= 0.99
