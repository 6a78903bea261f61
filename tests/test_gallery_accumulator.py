"""The bounded exemplar accumulator: k nearest clips per visual word, batch by batch."""

import numpy as np
import pytest

from videobert.visual_words.gallery import ExemplarGallery, centroid_distances


def thumbs_for(ids, size=4):
    """A thumbnail that encodes its clip's global index, so it can be traced."""
    out = np.zeros((len(ids), size, size, 3), dtype=np.uint8)
    out[..., 0] = (np.asarray(ids) % 251)[:, None, None]
    out[..., 1] = (np.asarray(ids) // 251)[:, None, None]
    return out


def random_batches(seed=0, n=600, batches=6, words=9):
    rng = np.random.default_rng(seed)
    w = rng.integers(0, words, n)
    d = rng.random(n)
    t = np.stack([np.arange(n) * 1.5, np.arange(n) * 1.5 + 1.5], axis=1)
    return w, d, t, np.array_split(np.arange(n), batches)


def fill(gallery, w, d, t, parts, video="vid"):
    for part in parts:
        keep = gallery.candidates(w[part], d[part])
        gallery.add(w[part][keep], d[part][keep], thumbs_for(part[keep]), video, t[part][keep])
    return gallery


def test_keeps_the_k_nearest_per_word_like_brute_force():
    w, d, t, parts = random_batches()
    gallery = fill(ExemplarGallery(num_words=10, k=3, size=4), w, d, t, parts)
    assert gallery.words() == sorted(set(w.tolist()))
    for word in range(10):
        expected = np.argsort(d + (w != word) * 10)[: min(3, int((w == word).sum()))]
        found = gallery.exemplars(word)
        assert [e.distance for e in found] == pytest.approx(d[expected].tolist())
        assert [e.start for e in found] == t[expected, 0].tolist()
        np.testing.assert_array_equal(np.stack([e.thumbnail for e in found]) if found else np.zeros((0, 4, 4, 3)),
                                      thumbs_for(expected))
    assert gallery.thumbnail(9) is None  # never seen


def test_candidates_are_a_superset_and_prune():
    gallery = ExemplarGallery(num_words=2, k=2, size=4)
    gallery.add(np.array([0, 0]), np.array([1.0, 2.0]), thumbs_for([0, 1]), "v", np.zeros((2, 2)))
    mask = gallery.candidates(np.array([0, 0, 1]), np.array([3.0, 1.5, 99.0]))
    assert mask.tolist() == [False, True, True]  # farther than the 2nd-nearest of word 0 is pruned; word 1 is empty
    assert gallery.candidates(np.array([], dtype=int), np.array([])).shape == (0,)


def test_merge_equals_one_pass():
    w, d, t, parts = random_batches(seed=1)
    whole = fill(ExemplarGallery(10, 2, 4), w, d, t, parts)
    a = fill(ExemplarGallery(10, 2, 4), w, d, t, parts[:3])
    b = fill(ExemplarGallery(10, 2, 4), w, d, t, parts[3:])
    a.merge(b)
    for word in range(10):
        assert [e.distance for e in a.exemplars(word)] == [e.distance for e in whole.exemplars(word)]
    with pytest.raises(ValueError, match="differ"):
        a.merge(ExemplarGallery(10, 2, 8))


def test_save_load_round_trip(tmp_path):
    w, d, t, parts = random_batches(seed=2)
    gallery = fill(ExemplarGallery(10, 3, 4), w, d, t, parts, video="video one")
    gallery.save(tmp_path / "g.safetensors")
    back = ExemplarGallery.load(tmp_path / "g.safetensors")
    assert (back.num_words, back.k, back.size) == (10, 3, 4)
    for word in range(10):
        for x, y in zip(gallery.exemplars(word), back.exemplars(word), strict=True):
            assert (x.distance, x.video_id, x.start, x.end) == (y.distance, y.video_id, y.start, y.end)
            np.testing.assert_array_equal(x.thumbnail, y.thumbnail)
    ExemplarGallery(5, 1, 4).save(tmp_path / "empty.safetensors")
    assert ExemplarGallery.load(tmp_path / "empty.safetensors").words() == []


def test_bad_inputs():
    gallery = ExemplarGallery(4, 2, 4)
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        gallery.candidates(np.array([4]), np.array([0.0]))
    with pytest.raises(ValueError, match="uint8"):
        gallery.add(np.array([1]), np.array([0.0]), np.zeros((1, 5, 5, 3), np.uint8), "v", np.zeros((1, 2)))
    with pytest.raises(ValueError):
        ExemplarGallery(0)


def test_centroid_distances_by_hand():
    centroids = np.array([[0.0, 0.0], [1.0, 1.0]], dtype=np.float32)
    features = np.array([[3.0, 4.0], [1.0, 2.0]], dtype=np.float32)
    assert centroid_distances(features, np.array([0, 1]), centroids).tolist() == [25.0, 1.0]
