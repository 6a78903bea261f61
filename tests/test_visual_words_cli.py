"""`videobert visual-words fit/assign` and `videobert info` through the real command dispatcher."""

import json

import numpy as np
import pytest

from videobert.cli import main
from videobert.visual_words import HierarchicalKMeans


def features(n: int, dim: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(12, dim))[rng.integers(12, size=n)] * 3 + rng.normal(size=(n, dim))).astype(np.float32)


def test_fit_then_assign_npy(tmp_path, capsys):
    data = features(600, 10)
    np.save(tmp_path / "feats.npy", data)
    tree_path, ids_path = tmp_path / "words.safetensors", tmp_path / "ids.npy"
    assert main(["visual-words", "fit", "--features", str(tmp_path / "feats.npy"), "--out", str(tree_path),
                 "--levels", "2", "--branching", "4", "--seed", "7", "--no-progress"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["rows"] == 600 and report["words"] == 16
    assert main(["visual-words", "assign", "--model", str(tree_path), "--features", str(tmp_path / "feats.npy"),
                 "--out", str(ids_path)]) == 0
    ids = np.load(ids_path)
    tree = HierarchicalKMeans.load(tree_path)
    assert tree.seed == 7 and np.array_equal(ids, tree.assign(data))
    assert main(["visual-words", "assign", "--model", str(tree_path), "--features", str(tmp_path / "feats.npy"),
                 "--out", str(tmp_path / "path.npy"), "--path", "--backend", "reference"]) == 0
    assert np.array_equal(np.load(tmp_path / "path.npy")[:, -1], ids)


def test_fit_on_feature_directory(tmp_path, capsys):
    store = pytest.importorskip("videobert.features.store")
    feats_dir = tmp_path / "feats"
    parts = [features(50, 1024, seed=s) for s in range(3)]
    for i, part in enumerate(parts):
        times = np.stack([np.arange(len(part)) * 1.5, np.arange(1, len(part) + 1) * 1.5], axis=1)
        store.write_video_features(feats_dir, f"video{i}", part, times)
    tree_path = tmp_path / "words.safetensors"
    assert main(["visual-words", "fit", "--features", str(feats_dir), "--out", str(tree_path),
                 "--levels", "2", "--branching", "3", "--no-progress"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["rows"] == 150
    assert main(["visual-words", "assign", "--model", str(tree_path), "--features", str(feats_dir),
                 "--out", str(tmp_path / "ids.npy")]) == 0
    assert np.array_equal(np.load(tmp_path / "ids.npy"), HierarchicalKMeans.load(tree_path).assign(np.concatenate(parts)))


def test_bad_feature_paths_are_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.npy"):
        main(["visual-words", "fit", "--features", str(tmp_path / "nothing.npy"), "--out", str(tmp_path / "w")])
    (tmp_path / "feats.txt").write_text("1 2 3")
    with pytest.raises(ValueError, match="expected a .npy"):
        main(["visual-words", "fit", "--features", str(tmp_path / "feats.txt"), "--out", str(tmp_path / "w")])


def test_info_lists_backends(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    for name in ("reference", "cpu", "cuda", "triton"):
        assert f"  {name}" in out
    # the machine line every benchmark prints: the CPU as /proc/cpuinfo names it, and the kernel variant
    from videobert.ops.cli import cpu_model

    machine = next(line for line in out.splitlines() if line.startswith("machine: "))
    assert f"CPU {cpu_model()}," in machine and "kernel variant " in machine
    with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
        name = next(line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name"))
    assert cpu_model().startswith(name)
