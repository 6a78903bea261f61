"""Regions beside the S3D features: the 5-d location, the store's checks (a clip without regions,
a box outside the frame), torchvision's Faster R-CNN with random weights through the detector
interface on a real video, the demo's stand-in detector, and action labels from verbs."""

import numpy as np
import pytest

from videobert.demo.detector import SceneDetector, pooled_crop
from videobert.demo.scenes import Placement, object_box, render_frame
from videobert.demo.synthetic import SyntheticConfig, encode_video, make_scripts
from videobert.features.regions import extract_regions, read_video_regions, region_locations, write_video_regions
from videobert.features.regions.detector import frames_at
from videobert.features.store import write_video_features
from videobert.models.actbert.clips import ClipStore
from videobert.text.actions import ActionVocab, verb_lemmas
from videobert.utils.fingerprint import StaleOutputError
from videobert.utils.io import write_json_atomic

from actbert_data import video_regions


def test_location_encoding():
    locations = region_locations(np.array([[10, 20, 50, 60], [0, 0, 200, 100]]), width=200, height=100)
    np.testing.assert_allclose(locations, [[0.05, 0.2, 0.25, 0.6, 0.2 * 0.4], [0, 0, 1, 1, 1]], rtol=1e-6)
    assert locations.dtype == np.float32


def test_store_round_trip_and_a_clip_without_regions(tmp_path):
    times = np.stack([np.arange(6) * 1.5, np.arange(6) * 1.5 + 1.5], axis=1)
    regions = video_regions("v", times, np.random.default_rng(0))
    write_video_regions(tmp_path / "regions", regions)
    write_video_features(tmp_path, "v", np.ones((6, 24), np.float32), times)
    back = read_video_regions(tmp_path / "regions", "v")
    np.testing.assert_array_equal(back.boxes, regions.boxes)
    assert back.class_names == regions.class_names and back.clip_offsets[1] == 0  # clip 0 has no regions
    store = ClipStore([tmp_path])
    features, locations, probs, clips, is_object = store.regions(np.array([0, 1]))
    count_1 = int(regions.clip_offsets[2] - regions.clip_offsets[1])
    assert clips.tolist() == [0, 1] + [1] * count_1 and is_object.tolist() == [False, False] + [True] * count_1
    np.testing.assert_array_equal(features[0], store.frame_features[0])  # clip 0: its whole frame only
    # standardised per dimension over the store's clips (regions and whole frames together)
    np.testing.assert_allclose(store.actions.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(np.concatenate([store.frame_features, store.region_features]).std(0), 1, atol=1e-4)
    np.testing.assert_array_equal(locations[0], [0, 0, 1, 1, 1])


def test_a_box_outside_the_frame_is_refused_naming_video_and_clip(tmp_path):
    times = np.stack([np.arange(6) * 1.5, np.arange(6) * 1.5 + 1.5], axis=1)
    regions = video_regions("cooking_07", times, np.random.default_rng(0))
    row = int(regions.clip_offsets[3])  # the first region of clip 3
    regions.boxes[row] = [40, 10, 70, 30]  # x2 = 70 > width 64
    with pytest.raises(ValueError, match=r"video 'cooking_07' clip 3: box .* outside the 64 x 48 frame"):
        write_video_regions(tmp_path, regions)
    assert not list(tmp_path.iterdir())


def test_regions_of_other_clips_than_the_features_are_refused(tmp_path):
    times = np.stack([np.arange(6) * 1.5, np.arange(6) * 1.5 + 1.5], axis=1)
    write_video_regions(tmp_path / "regions", video_regions("v", times, np.random.default_rng(0)))
    write_video_features(tmp_path, "v", np.ones((5, 24), np.float32), times[:5])
    with pytest.raises(ValueError, match="video 'v': its regions .* other clips"):
        ClipStore([tmp_path])


@pytest.fixture(scope="module")
def demo_video(tmp_path_factory):
    """One synthetic video (PyAV-encoded), its script, and S3D-store clip times for it."""
    root = tmp_path_factory.mktemp("video")
    config = SyntheticConfig(n_train=1, n_heldout=0, segments_per_video=(2, 2), segment_seconds=(3.0, 3.0))
    script = make_scripts(config)[0]
    encode_video(root / "videos" / script.file_name, script)
    write_json_atomic(root / "scripts.json", {"config": {}, "videos": [__import__("dataclasses").asdict(script)]})
    n = 2  # clips: Faster R-CNN with random weights takes seconds a frame on a CPU
    times = np.stack([np.arange(n) * 1.5, np.arange(n) * 1.5 + 1.5], axis=1) + script.segments[0].start
    write_video_features(root / "features", script.video_id, np.zeros((n, 8), np.float32), times)
    return root, script, times


def test_faster_rcnn_with_random_weights_through_the_detector_interface(demo_video, tmp_path):
    from videobert.features.regions.faster_rcnn import FEATURE_DIM, FasterRCNNDetector

    root, script, times = demo_video
    detector = FasterRCNNDetector(num_classes=5, max_regions=3, score_threshold=0.0, min_size=96, max_size=128, seed=0)
    summary = extract_regions(root / "videos", root / "features", detector, tmp_path)
    assert summary == {"done": 1, "skipped": 0, "failed": {}}
    regions = read_video_regions(tmp_path, script.video_id)  # read_video_regions checks every box is inside the frame
    assert (regions.frame_width, regions.frame_height) == (script.width, script.height)
    assert regions.features.shape[1] == regions.frame_features.shape[1] == FEATURE_DIM
    assert regions.class_probs.shape[1] == 5 and np.allclose(regions.class_probs.sum(1), 1, atol=1e-5)
    assert len(regions.times) == len(times) and np.all(np.diff(regions.clip_offsets) <= 3) and len(regions.boxes) > 0
    assert extract_regions(root / "videos", root / "features", detector, tmp_path)["skipped"] == 1  # a rerun resumes
    with pytest.raises(StaleOutputError, match="detector"):  # another detector's regions never mix in
        extract_regions(root / "videos", root / "features", SceneDetector(root / "scripts.json"), tmp_path)


class BlankDetector:
    """No boxes, a constant whole-frame feature: the cheapest detector (for the plumbing)."""

    name, class_names, feature_dim, settings = "blank", ["background", "thing"], 4, {}

    def detect(self, frame, video_id, time):
        from videobert.features.regions import Detections

        return Detections(np.zeros((0, 4)), np.zeros((0, 4)), np.zeros((0, 2)), np.ones(4))


def test_ranks_share_the_videos_as_extraction_does_and_a_failed_video_is_left_out(demo_video, tmp_path):
    import shutil

    root, script, times = demo_video
    videos, features = tmp_path / "videos", tmp_path / "features"
    videos.mkdir()
    for video_id in ("a", "b", "c", "d"):
        shutil.copy(root / "videos" / script.file_name, videos / f"{video_id}.mp4")
    (videos / "c.mp4").write_bytes(b"not a video")
    for video_id in ("a", "b", "c"):  # d has no features (its S3D extraction failed): passed over
        write_video_features(features, video_id, np.ones((len(times), 8), np.float32), times)
    # rank r of 2 takes videos r, r + 2 of [a, b, c, d], as S3D extraction shards the same list
    first = extract_regions(videos, features, BlankDetector(), rank=0, world_size=2)
    second = extract_regions(videos, features, BlankDetector(), rank=1, world_size=2)
    assert (first["done"], list(first["failed"]), second) == (1, ["c"], {"done": 1, "skipped": 0, "failed": {}})
    regions = features / "regions"
    assert sorted(p.name for p in regions.glob("manifest*")) == ["manifest.rank00000-of-00002.jsonl",
                                                                 "manifest.rank00001-of-00002.jsonl"]
    assert "c" in (regions / "manifest.rank00000-of-00002.jsonl").read_text()
    store = ClipStore([features])  # c's failure is in rank 0's manifest: left out, the rest read
    assert store.video_ids == ["a", "b"] and store.skipped_videos == ["c"]


def test_stand_in_detector_boxes_the_drawn_object_and_reads_its_pixels(demo_video):
    root, script, times = demo_video
    detector = SceneDetector(root / "scripts.json")
    segment = script.segments[0]
    t = segment.start + 0.4
    frame = frames_at(root / "videos" / script.file_name, [t])[0]
    found = detector.detect(frame, script.video_id, t)
    assert found.class_probs.argmax(1).tolist() == [detector.class_names.index(segment.noun)]
    drawn = render_frame(script.width, script.height, script.background, segment.noun, segment.verb, 0.4,
                         Placement(segment.x, segment.y, segment.angle))
    ys, xs = np.nonzero((drawn != np.array(script.background)).any(-1))
    x1, y1, x2, y2 = found.boxes[0]
    assert x1 <= xs.min() + 1 and y1 <= ys.min() + 1 and x2 >= xs.max() - 1 and y2 >= ys.max() - 1
    # the features are the box's pixels: repainting the box changes them, repainting outside does not
    np.testing.assert_array_equal(found.features[0], pooled_crop(frame, tuple(found.boxes[0]), detector.crop_size))
    outside = frame.copy()
    outside[:, : max(0, int(x1) - 1)] = 0
    np.testing.assert_array_equal(detector.detect(outside, script.video_id, t).features, found.features)
    inside = frame.copy()
    inside[int(y1):int(y2), int(x1):int(x2)] = 255
    assert not np.allclose(detector.detect(inside, script.video_id, t).features, found.features)
    assert len(detector.detect(frame, script.video_id, script.duration + 1.0).boxes) == 0  # nothing on stage


def test_object_box_is_none_while_a_flashing_object_is_off():
    assert object_box(96, 96, "star", "flash", 0.15, Placement(0.5, 0.5, 0.0)) is None
    assert object_box(96, 96, "star", "flash", 0.05, Placement(0.5, 0.5, 0.0)) is not None


def test_action_labels_from_verbs():
    vocab = ActionVocab.from_list(["spinning", "push", "cut"])
    assert vocab.actions == ["spin", "push", "cut"]
    assert vocab.label("now let me show you how to spin the square.") == 0  # framing verbs passed over
    assert vocab.label("this is how you push the circle.") == 1
    assert vocab.label("okay.") == -100
    assert verb_lemmas("she was cutting the square") == ["cut", "square"]  # a noun that can be a verb counts
    frequent = ActionVocab.most_frequent(["cut the onion", "cut it", "stir the soup", "now stir", "pour milk"], 2)
    assert frequent.actions == ["cut", "stir"]
    with pytest.raises(ValueError, match="duplicates"):
        ActionVocab(["cut", "cut"])


def test_extract_regions_needs_detector_weights_or_random_weights(tmp_path):
    import argparse

    from videobert.features.regions.cli import extract_regions_for

    args = argparse.Namespace(videos=str(tmp_path), out=str(tmp_path), detector_weights=None, random_weights=False,
                              max_regions=10, seed=0, device="auto", overwrite=False)
    with pytest.raises(SystemExit, match="--detector-weights FILE"):
        extract_regions_for(args)
