"""`videobert eval caption` end to end on a tiny generated set: real feature files, a fitted hierarchical
k-means, a tiny VideoBERT checkpoint, a real video for the picture, YouCook II-format annotations with
bad segments in them; the outputs agree with each other and with the metrics recomputed."""

import json

import av
import numpy as np
import pytest
import torch
from PIL import Image

from videobert.cli import main
from videobert.features.store import write_video_features
from videobert.models.videobert import VideoBertConfig, VideoBertForPretraining
from videobert.tasks.captioning import METRICS, VARIANTS, Captioner, caption_metrics
from videobert.visual_words import HierarchicalKMeans

CAPTIONS = ["cut the onion", "pour the oil into the pan", "whisk the eggs"]
CLIP = 1.5


def write_video(path, seconds, fps=10, size=32):
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps, options={"preset": "ultrafast"})
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        for i in range(int(seconds * fps)):
            image = np.full((size, size, 3), (i * 7) % 255, dtype=np.uint8)
            image[:, : size // 2, 0] = 200
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory):
    """Training videos t1, t2 and validation video v1: each segment's clips are noisy copies of its caption's own
    feature direction, so the captions are learnable from the features."""
    root = tmp_path_factory.mktemp("caption")
    rng = np.random.default_rng(0)
    directions = rng.normal(size=(len(CAPTIONS), 1024)).astype(np.float32)
    plans = {"t1": [0, 1, 2, 0], "t2": [2, 1, 0, 1], "v1": [1, 0, 2]}  # caption of each 3-clip segment
    database, all_features = {}, []
    for video_id, plan in plans.items():
        features = np.concatenate([directions[c] + 0.1 * rng.normal(size=(3, 1024)) for c in plan]).astype(np.float32)
        times = np.stack([np.arange(len(features)) * CLIP, np.arange(len(features)) * CLIP + CLIP], axis=1)
        split = "validation" if video_id.startswith("v") else "training"
        write_video_features(root / "features" / split, video_id, features, times)
        all_features.append(features)
        annotations = [{"id": i, "segment": [i * 3 * CLIP, (i + 1) * 3 * CLIP], "sentence": CAPTIONS[c].capitalize() + "."}
                       for i, c in enumerate(plan)]
        database[video_id] = {"subset": split, "duration": len(features) * CLIP, "annotations": annotations}
    database["v1"]["annotations"] += [{"id": 3, "segment": [40.0, 40.2], "sentence": "nothing happens here"},  # no clips
                                      {"id": 4, "segment": [0.0, 4.5], "sentence": " "}]                   # empty reference
    database["v2"] = {"subset": "validation", "duration": 9.0, "annotations": [  # a video without features
        {"id": 0, "segment": [0, 4.5], "sentence": "cut the onion"}]}
    (root / "annotations.json").write_text(json.dumps({"database": database}))
    kmeans = HierarchicalKMeans(levels=2, branching=3, seed=0).fit(np.concatenate(all_features), progress=False)
    kmeans.save(root / "kmeans.safetensors")
    torch.manual_seed(0)
    VideoBertForPretraining(VideoBertConfig.tiny(num_visual_words=9)).save_pretrained(root / "model")
    (root / "videos").mkdir()
    write_video(root / "videos" / "v1.mp4", seconds=9 * CLIP)
    return root


def command(root, out, *extra):
    return ["eval", "caption", "--model", str(root / "model"), "--features", str(root / "features" / "training"),
            "--features", str(root / "features" / "validation"), "--kmeans", str(root / "kmeans.safetensors"),
            "--annotations", str(root / "annotations.json"), "--out", str(out), "--device", "cpu", *extra]


def test_caption_command_end_to_end(tiny_set, tmp_path):
    out = tmp_path / "out"
    assert main(command(tiny_set, out, "--steps", "40", "--caption-batch-size", "8", "--seeds", "0,1", "--beam-size", "2",
                        "--videos-dir", str(tiny_set / "videos"))) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    captions = json.loads((out / "captions.json").read_text())
    assert metrics["segments"] == {"train": 8, "eval": 3}
    assert metrics["skipped"]["eval"] == {"missing_video": 1, "no_clips": 1, "empty_reference": 1}
    assert [c["segment_id"] for c in captions] == ["v1#0", "v1#1", "v1#2"]
    assert [c["references"] for c in captions] == [["Pour the oil into the pan."], ["Cut the onion."], ["Whisk the eggs."]]
    references = {c["segment_id"]: c["references"] for c in captions}
    for variant in VARIANTS:
        result = metrics[variant]
        assert result["seeds"] == [0, 1] and all(len(result["per_seed"][m]) == 2 for m in METRICS)
        for m in METRICS:
            assert result[m] == pytest.approx(np.median(result["per_seed"][m]))
        # the first seed's scores are those of its captions in captions.json
        first = caption_metrics(references, {c["segment_id"]: c["generated"][variant] for c in captions})
        assert [first[m] for m in METRICS] == pytest.approx([result["per_seed"][m][0] for m in METRICS], abs=1e-12)
    assert metrics["training"]["videobert+s3d"]["input_dim"] == 2 * 64 + 1024
    baseline = metrics["most_common_caption"]
    assert baseline["caption"] in ("cut the onion", "pour the oil into the pan")  # 3 times each in training
    recomputed = caption_metrics(references, {k: baseline["caption"] for k in references})
    assert [recomputed[m] for m in METRICS] == pytest.approx([baseline[m] for m in METRICS], abs=1e-12)
    # the saved s3d captioner gives the same captions from the clips' features
    from videobert.features.store import read_video_features

    features, _ = read_video_features(tiny_set / "features" / "validation", "v1")
    captioner = Captioner.from_pretrained(out / "captioners" / "s3d")
    assert captioner.generate([features[3 * i : 3 * i + 3] for i in range(3)], beam_size=2) == \
        [c["generated"]["s3d"] for c in captions]
    with Image.open(out / "captions.png") as image:
        assert image.format == "PNG" and image.width >= 400 and image.height >= 3 * 64
        pixels = np.asarray(image.convert("RGB"))
    assert (np.abs(pixels[..., 0].astype(int) - pixels[..., 2]) > 100).any()  # the video's red half is in the frames
    # a rerun reuses every finished captioner (6 = 3 variants x 2 seeds) and reports the same figures
    runs = {p.name: p.stat().st_mtime_ns for p in (out / "runs").iterdir()}
    assert len(runs) == 6
    assert main(command(tiny_set, out, "--steps", "40", "--caption-batch-size", "8", "--seeds", "0,1", "--beam-size", "2")) == 0
    assert {p.name: p.stat().st_mtime_ns for p in (out / "runs").iterdir()} == runs
    again = json.loads((out / "metrics.json").read_text())
    assert {v: again[v] for v in VARIANTS} == {v: metrics[v] for v in VARIANTS}


def test_caption_command_names_a_missing_subset(tiny_set, tmp_path):
    with pytest.raises(ValueError, match=r"no annotated segment in subset 'testing'; its subsets: 'training' \(8\), "
                                         r"'validation' \(6\)"):
        main(command(tiny_set, tmp_path / "out", "--eval-subset", "testing", "--steps", "1"))


def test_nothing_to_caption_is_a_clear_error(tiny_set, tmp_path):
    from videobert.models.videobert import VideoBertForPretraining
    from videobert.tasks.annotations import Segment
    from videobert.tasks.captioning import run_captioning
    from videobert.text import WordPieceTokenizer

    model = VideoBertForPretraining.from_pretrained(tiny_set / "model")
    segments = [Segment("t1", 0.0, 4.5, "cut the onion", "training"), Segment("v9", 0.0, 4.5, "cut it", "validation")]
    with pytest.raises(ValueError, match=r"0 training \(skipped \{'missing_video': 1"):
        run_captioning(model, WordPieceTokenizer(), {}, segments[:1], segments[1:], tmp_path)
