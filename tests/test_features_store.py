"""The feature store: per-video files, the iterator, the memory-mapped matrix and its index."""

import numpy as np
import pytest

from videobert.features.store import (FeatureIndex, feature_path, finished_video_ids, iter_video_features,
                                      load_feature_index, load_feature_matrix, write_video_features)


def write(out, video_id, n, seed):
    rng = np.random.default_rng(seed)
    features = rng.standard_normal((n, 1024)).astype(np.float32)
    times = np.stack([np.arange(n) * 1.5, np.arange(n) * 1.5 + 1.5], axis=1)
    write_video_features(out, video_id, features, times, {"video": f"{video_id}.mp4"})
    return features, times


def test_iterate_and_matrix(tmp_path):
    written = {vid: write(tmp_path, vid, n, i) for i, (vid, n) in enumerate([("b", 3), ("a", 2), ("c", 0), ("d", 4)])}
    (tmp_path / ".d.safetensors.tmp").write_bytes(b"partial")  # a write in progress is not a video
    seen = list(iter_video_features(tmp_path))
    assert [vid for vid, _, _ in seen] == ["a", "b", "c", "d"]
    for vid, features, times in seen:
        assert features.dtype == np.float32 and times.dtype == np.float64
        np.testing.assert_array_equal(features, written[vid][0])
        np.testing.assert_array_equal(times, written[vid][1])

    matrix = load_feature_matrix(tmp_path)
    assert isinstance(matrix, np.memmap) and matrix.shape == (9, 1024) and matrix.dtype == np.float32
    index = load_feature_index(tmp_path)
    assert isinstance(index, FeatureIndex)
    assert index.video_ids == ["a", "b", "c", "d"] and index.offsets.tolist() == [0, 2, 5, 5, 9]
    np.testing.assert_array_equal(matrix[2:5], written["b"][0])
    np.testing.assert_array_equal(index.times[5:9], written["d"][1])
    assert [index.video_of_row(r) for r in (0, 1, 2, 4, 5, 8)] == ["a", "a", "b", "b", "d", "d"]
    with pytest.raises(ValueError):
        matrix[0, 0] = 1.0  # read-only


def test_matrix_follows_new_videos(tmp_path):
    write(tmp_path, "a", 2, 0)
    assert load_feature_matrix(tmp_path).shape == (2, 1024)
    features, _ = write(tmp_path, "b", 5, 1)
    matrix = load_feature_matrix(tmp_path)
    assert matrix.shape == (7, 1024)
    np.testing.assert_array_equal(matrix[2:], features)
    assert len([p for p in (tmp_path / ".matrix").iterdir() if p.suffix == ".f32"]) == 1  # stale cache gone


def test_empty_directory_and_bad_shapes(tmp_path):
    assert load_feature_matrix(tmp_path).shape == (0, 1024)
    assert finished_video_ids(tmp_path) == []
    with pytest.raises(ValueError, match="x: features"):
        write_video_features(tmp_path, "x", np.zeros((3, 1024)), np.zeros((2, 2)))
    assert not feature_path(tmp_path, "x").exists()
