"""HierarchicalKMeans: fitting, assignment, small nodes, bad input, save/load."""

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from videobert.visual_words import HierarchicalKMeans

from devices import TRITON_DEVICE, backend_on, skip_unavailable


def clustered(n: int, dim: int, clusters: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim)) * 4
    return (centres[rng.integers(clusters, size=n)] + rng.normal(size=(n, dim))).astype(np.float32)


@pytest.fixture(scope="module")
def data() -> np.ndarray:
    return clustered(3000, 19, 40)


@pytest.fixture(scope="module")
def tree(data) -> HierarchicalKMeans:
    return HierarchicalKMeans(levels=3, branching=5, seed=3, max_points_per_centroid=64).fit(data, progress=False)


def test_fit_shapes_and_layout(tree, data):
    assert [tuple(c.shape) for c in tree.level_centroids] == [(5, 19), (25, 19), (125, 19)]
    assert tree.leaf_centroids.shape == (125, 19) and tree.leaf_centroids.dtype == torch.float32
    path = tree.assign(data, return_path=True)
    assert path.shape == (3000, 3) and path.dtype == np.int64
    # the node at level l+1 is a child of the node at level l
    assert (path[:, 1] // 5 == path[:, 0]).all() and (path[:, 2] // 5 == path[:, 1]).all()
    assert np.array_equal(tree.assign(data), path[:, -1])


def test_fit_is_deterministic_and_seed_matters(tree, data):
    again = HierarchicalKMeans(levels=3, branching=5, seed=3, max_points_per_centroid=64).fit(data, progress=False)
    assert torch.equal(again.centroids, tree.centroids)
    other = HierarchicalKMeans(levels=3, branching=5, seed=4, max_points_per_centroid=64).fit(data, progress=False)
    assert not torch.equal(other.centroids, tree.centroids)


def test_fit_finds_the_clusters():
    # 5 well separated blobs and branching 5: the first level must split them exactly
    blobs = clustered(1000, 8, 5, seed=1)
    tree = HierarchicalKMeans(levels=1, branching=5, seed=0).fit(blobs, progress=False)
    ids = tree.assign(blobs)
    # every point lies within a blob's spread (unit normal, 8-d) of its word's centroid
    dist = np.linalg.norm(blobs - tree.leaf_centroids.numpy()[ids], axis=1)
    assert dist.max() < 8 and len(np.unique(ids)) == 5


def test_leaf_centroids_are_means_of_their_points_when_nodes_use_all_points(data):
    tree = HierarchicalKMeans(levels=2, branching=4, seed=0, max_points_per_centroid=10**6, tol=0.0, max_iter=100).fit(data, progress=False)
    path = tree.assign(data, return_path=True)
    level0 = tree.level_centroids[0].numpy()
    for word in np.unique(path[:, 0]):
        assert np.allclose(data[path[:, 0] == word].mean(axis=0), level0[word], atol=1e-4)


def test_small_nodes_keep_the_id_space_and_copies_are_never_assigned():
    data = np.array([[0, 0], [10, 0], [0, 10]], dtype=np.float32)  # 3 points, branching 4
    tree = HierarchicalKMeans(levels=2, branching=4, seed=0).fit(data, progress=False)
    assert tree.leaf_centroids.shape == (16, 2)
    probe = np.random.default_rng(0).normal(size=(500, 2)).astype(np.float32) * 20
    ids = tree.assign(probe)
    assert ids.max() < 16
    used = np.unique(ids)
    assert len(used) == 3  # only the children that hold real points are ever chosen
    level0, leaves = tree.level_centroids[0].numpy(), tree.leaf_centroids.numpy()
    assert np.array_equal(level0[3], level0[0])  # the 4th child of the root copies child 0
    for word in range(16):
        if word not in used and word // 4 != 3:  # below a used node, an unused leaf copies a lower sibling
            assert any(np.array_equal(leaves[word], s) for s in leaves[(word // 4) * 4 : word])
    assert (leaves[12:16] == level0[3]).all()  # a node without points: copies of its own centroid


def test_memmap_input_without_loading_it(tmp_path, data):
    path = tmp_path / "features.npy"
    np.save(path, data)
    mm = np.load(path, mmap_mode="r")
    tree = HierarchicalKMeans(levels=2, branching=4, seed=1, chunk_rows=700).fit(mm, progress=False)
    same = HierarchicalKMeans(levels=2, branching=4, seed=1, chunk_rows=700).fit(torch.from_numpy(data), progress=False)
    assert torch.equal(tree.centroids, same.centroids)
    assert np.array_equal(tree.assign(mm), same.assign(data))


@pytest.mark.parametrize("backend,device", [backend_on("reference", "cpu"), backend_on("cpu", "cpu"),
                                            backend_on("triton", TRITON_DEVICE), backend_on("cuda", "cuda")])
def test_assign_tensor_backends_agree(tree, data, backend, device):
    skip_unavailable(backend)
    x = torch.from_numpy(data[:300]).to(device)
    ids = tree.assign(x, backend=backend)
    assert isinstance(ids, torch.Tensor) and ids.dtype == torch.int64 and ids.device == x.device
    assert torch.equal(ids.cpu(), torch.from_numpy(tree.assign(data[:300])))


def test_a_bad_row_is_named_by_its_place_in_the_whole_matrix(tree, data, monkeypatch):
    monkeypatch.setattr(tree, "chunk_rows", 16)  # the bad row sits in the fifth chunk
    bad = data[:100].copy()
    bad[77, 0] = -np.inf
    for features in (bad, torch.from_numpy(bad)):
        with pytest.raises(ValueError, match="features row 77 contains NaN or inf"):
            tree.assign(features)


def test_bad_inputs(tree, data):
    bad = data[:10].copy()
    bad[7, 3] = np.nan
    with pytest.raises(ValueError, match="row 7 contains NaN or inf"):
        tree.assign(bad)
    bad[7, 3] = np.inf
    with pytest.raises(ValueError, match="row 7"):
        HierarchicalKMeans(levels=1, branching=2).fit(bad, progress=False)
    with pytest.raises(ValueError, match="dimension 18, but the tree was fitted on dimension 19"):
        tree.assign(data[:, :18])
    with pytest.raises(TypeError, match="dtype"):
        tree.assign(data.astype(np.float64))
    with pytest.raises(TypeError, match="dtype"):
        HierarchicalKMeans().fit(np.zeros((4, 3), dtype=np.int32))
    with pytest.raises(ValueError, match="2-D"):
        tree.assign(data[0])
    with pytest.raises(ValueError, match="empty"):
        HierarchicalKMeans().fit(np.zeros((0, 3), dtype=np.float32))
    with pytest.raises(RuntimeError, match="not fitted"):
        HierarchicalKMeans().assign(data)


def test_finiteness_check_is_exact_where_a_row_sum_overflows_or_cancels():
    """The check sums each row first: finite values whose sum overflows must pass, and a row
    whose inf values cancel in the sum (inf + -inf) or sit beside huge finite ones must not."""
    from videobert.visual_words.features_input import check_finite

    rows = torch.zeros(6, 5)
    rows[1] = 3e38                                    # finite, but its float32 sum is inf
    rows[2, 0], rows[2, 1] = -3e38, -3e38             # finite, sum -inf
    check_finite(rows, 0)
    for bad in (float("inf"), float("-inf"), float("nan")):
        broken = rows.clone()
        broken[4, 2] = bad
        with pytest.raises(ValueError, match="row 14 contains NaN or inf"):
            check_finite(broken, 10)
    cancelling = rows.clone()
    cancelling[5, 0], cancelling[5, 1] = float("inf"), float("-inf")
    with pytest.raises(ValueError, match="row 5 contains"):
        check_finite(cancelling, 0)
    beside_huge = rows.clone()
    beside_huge[1, 4] = float("inf")                  # a suspect row (its sum overflowed) that really is bad
    with pytest.raises(ValueError, match="row 1 contains"):
        check_finite(beside_huge, 0)
    check_finite(rows.half()[:1], 0)


def test_empty_input_gives_empty_output(tree):
    assert tree.assign(np.zeros((0, 19), dtype=np.float32)).shape == (0,)
    assert tree.assign(torch.zeros(0, 19), return_path=True).shape == (0, 3)


def test_save_load_round_trip(tree, data, tmp_path):
    path = tmp_path / "words.safetensors"
    tree.save(path)
    loaded = HierarchicalKMeans.load(path)
    assert (loaded.levels, loaded.branching, loaded.dim, loaded.seed) == (3, 5, 19, 3)
    assert torch.equal(loaded.centroids, tree.centroids)
    assert np.array_equal(loaded.assign(data), tree.assign(data))


def test_load_rejects_corrupt_and_mismatched_files(tree, tmp_path):
    good = tmp_path / "good.safetensors"
    tree.save(good)
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(good.read_bytes()[:200])
    with pytest.raises(ValueError, match="truncated.safetensors: not a readable safetensors file"):
        HierarchicalKMeans.load(truncated)
    with pytest.raises(FileNotFoundError, match="missing.safetensors"):
        HierarchicalKMeans.load(tmp_path / "missing.safetensors")
    foreign = tmp_path / "foreign.safetensors"
    save_file({"weight": torch.zeros(2, 2)}, str(foreign))
    with pytest.raises(ValueError, match="not a visual-word tree"):
        HierarchicalKMeans.load(foreign)
    levels = {f"level_{i}": c.contiguous() for i, c in enumerate(tree.level_centroids)}
    meta = {"format": "videobert.visual_words.hkmeans", "version": "1", "levels": "3", "branching": "5", "dim": "19", "seed": "0"}
    wrong_shape = tmp_path / "wrong_shape.safetensors"
    save_file({**levels, "level_1": torch.zeros(24, 19)}, str(wrong_shape), metadata=meta)
    with pytest.raises(ValueError, match=r"level_1 is torch.float32 \(24, 19\), expected float32 \(25, 19\)"):
        HierarchicalKMeans.load(wrong_shape)
    future = tmp_path / "future.safetensors"
    save_file(levels, str(future), metadata={**meta, "version": "99"})
    with pytest.raises(ValueError, match="version 99"):
        HierarchicalKMeans.load(future)
    nan = tmp_path / "nan.safetensors"
    save_file({**levels, "level_0": torch.full((5, 19), float("nan"))}, str(nan), metadata=meta)
    with pytest.raises(ValueError, match="NaN"):
        HierarchicalKMeans.load(nan)


@pytest.mark.gpu
def test_assign_cuda_tensors(tree, data):
    x = torch.from_numpy(data).cuda()
    ids = tree.assign(x)
    assert ids.is_cuda and torch.equal(ids.cpu(), torch.from_numpy(tree.assign(data)))
    assert torch.equal(tree.assign(x.half()).cpu(), tree.assign(x.half().cpu()))  # cuda vs cpu, same fp16 inputs
