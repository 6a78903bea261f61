"""`VideoBertPipeline.caption` (issue 16): real videos (PyAV), real S3D extraction (random weights),
a fitted tree, a tiny VideoBERT and real captioners trained by the captioning task
(`run_captioning`, needs Java like every captioning run). The pipeline's captions of a video equal
the task's captions of the same segments, for every variant; a saved bundle keeps its captioner;
a bundle without one says how to get one."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from videobert.features.extract import ExtractConfig, extract_features
from videobert.features.store import iter_video_features
from videobert.models.videobert import VideoBertConfig, VideoBertForPretraining
from videobert.pipeline import S3DSource, VideoBertPipeline
from videobert.tasks.annotations import read_youcook_annotations
from videobert.tasks.captioning import (VARIANTS, Captioner, CaptionerTrainConfig, CaptioningSettings,
                                        load_video_clips, run_captioning)
from videobert.text import WordPieceTokenizer
from videobert.video import ClipSpec
from videobert.video.synthetic import write_video
from videobert.visual_words import HierarchicalKMeans

CLIP = ClipSpec(fps=8, clip_frames=8, size=32)  # 1 s clips; a 48-frame video at 8 fps has 6
BEAM = 3
# Training videos: flat gradient frames (a) and a panning noise texture (b), two annotated halves each;
# held-out: one of each kind, c in two halves, d whole.
TRAIN = {"a.mp4": (False, ["whisk the eggs", "stir the eggs slowly"]),
         "b.mkv": (True, ["cut the onion", "slice the bread thinly"])}
HELDOUT = {"c.mp4": (False, [(0.0, 3.0), (3.0, 6.0)]), "d.mkv": (True, [(0.0, 6.0)])}


@pytest.fixture(scope="module")
def captioned(tmp_path_factory):
    """(pipeline without a captioner, captioning output directory, videos directory)."""
    root = tmp_path_factory.mktemp("pipeline_caption")
    videos = root / "videos"
    videos.mkdir()
    database = {}
    for name, (textured, captions) in TRAIN.items():
        write_video(videos / name, fps=8, frames=48, width=48, height=40, textured=textured)
        database[name.split(".")[0]] = {"subset": "training", "duration": 6.0, "annotations": [
            {"id": i, "segment": [3.0 * i, 3.0 * i + 3.0], "sentence": c} for i, c in enumerate(captions)]}
    for name, (textured, spans) in HELDOUT.items():
        write_video(videos / name, fps=8, frames=48, width=48, height=40, textured=textured)
        database[name.split(".")[0]] = {"subset": "validation", "duration": 6.0, "annotations": [
            {"id": i, "segment": list(span), "sentence": "a reference"} for i, span in enumerate(spans)]}
    (root / "annotations.json").write_text(json.dumps({"database": database}))
    summary = extract_features(ExtractConfig(videos=str(videos), out=str(root / "features"), size=CLIP.size,
                                             fps=CLIP.fps, clip_frames=CLIP.clip_frames, workers=0, device="cpu",
                                             progress=False))
    assert not summary.failed and len(summary.done) == 4
    features = np.concatenate([f for _, f, _ in iter_video_features(root / "features")]).astype(np.float32)
    tree = HierarchicalKMeans(levels=2, branching=3, seed=0).fit(features, progress=False)
    torch.manual_seed(0)
    model = VideoBertForPretraining(VideoBertConfig.tiny(num_visual_words=tree.num_words)).eval()
    tokenizer = WordPieceTokenizer()
    segments = read_youcook_annotations(root / "annotations.json")
    train = [s for s in segments if s.subset == "training"]
    heldout = [s for s in segments if s.subset == "validation"]
    settings = CaptioningSettings(beam_size=BEAM, train=CaptionerTrainConfig(
        steps=60, batch_size=4, lr=3e-3, dropout=0.0, hidden_size=32, num_heads=2, intermediate_size=64, max_caption_words=8))
    run_captioning(model, tokenizer, load_video_clips(root / "features", tree), train, heldout, root / "captioning", settings)
    pipeline = VideoBertPipeline(model, tokenizer, tree, CLIP, S3DSource.of(None, seed=0))
    return pipeline, root / "captioning", videos


def task_captions(out_dir) -> dict[str, dict[str, str]]:
    """``{segment id: {variant: caption}}`` from the captioning task's captions.json."""
    return {row["segment_id"]: row["generated"] for row in json.loads((out_dir / "captions.json").read_text())}


def test_caption_equals_the_captioning_tasks_caption_of_the_same_segment(captioned):
    pipeline, out, videos = captioned
    expected = task_captions(out)
    # the check can tell inputs apart: the trained captioners do not say one thing for everything
    assert len({caption for row in expected.values() for caption in row.values()}) > 1
    for variant in VARIANTS:
        pipeline.set_captioner(Captioner.from_pretrained(out / "captioners" / variant))  # variant told by the width
        assert pipeline.captioner_variant == variant
        halves = pipeline.caption_segments(videos / "c.mp4", segment_clips=3, beam_size=BEAM)
        assert [(h.start, h.end) for h in halves] == [(0.0, 3.0), (3.0, 6.0)]
        assert [h.caption for h in halves] == [expected["c#0"][variant], expected["c#1"][variant]], variant
        assert pipeline.caption(videos / "d.mkv", beam_size=BEAM) == expected["d#0"][variant], variant
    # segments of 4 clips: the last one is shorter
    quarters = pipeline.caption_segments(videos / "c.mp4", segment_clips=4)
    assert [(s.start, s.end) for s in quarters] == [(0.0, 4.0), (4.0, 6.0)]
    with pytest.raises(ValueError, match="segment_clips must be at least 1"):
        pipeline.caption_segments(videos / "c.mp4", segment_clips=0)


def test_a_saved_bundle_keeps_its_captioner(captioned, tmp_path):
    pipeline, out, videos = captioned
    pipeline.set_captioner(Captioner.from_pretrained(out / "captioners" / "videobert+s3d"), "videobert+s3d")
    pipeline.save_pretrained(tmp_path / "bundle")
    assert json.loads((tmp_path / "bundle" / "pipeline.json").read_text())["captioner"] == \
        {"path": "captioner", "variant": "videobert+s3d"}
    loaded = VideoBertPipeline.from_pretrained(tmp_path / "bundle")
    assert loaded.captioner_variant == "videobert+s3d"
    for key, value in pipeline.captioner.state_dict().items():
        torch.testing.assert_close(loaded.captioner.state_dict()[key], value, rtol=0, atol=0)
    video = videos / "c.mp4"
    assert loaded.caption(video, beam_size=BEAM) == pipeline.caption(video, beam_size=BEAM)
    assert loaded.caption_segments(video, 2, beam_size=1) == pipeline.caption_segments(video, 2, beam_size=1)


def test_a_loaded_bundle_saves_into_its_own_directory(captioned, tmp_path):
    """What the demo's caption stage does: load the bundle, add a captioner, save it where it was
    (its tokenizer file is read from the directory being rewritten)."""
    pipeline, out, videos = captioned
    pipeline.save_pretrained(tmp_path / "bundle")
    tokenizer_file = tmp_path / "bundle" / Path(pipeline.tokenizer.path).name  # vocab.txt or tokenizer.json
    vocab = tokenizer_file.read_bytes()
    loaded = VideoBertPipeline.from_pretrained(tmp_path / "bundle")
    loaded.set_captioner(Captioner.from_pretrained(out / "captioners" / "videobert+s3d"), "videobert+s3d")
    loaded.save_pretrained(tmp_path / "bundle")
    assert tokenizer_file.read_bytes() == vocab
    again = VideoBertPipeline.from_pretrained(tmp_path / "bundle")
    assert again.caption(videos / "c.mp4", beam_size=BEAM) == loaded.caption(videos / "c.mp4", beam_size=BEAM)


def test_without_a_captioner_caption_says_how_to_get_one(captioned, tmp_path):
    pipeline, out, videos = captioned
    pipeline.set_captioner(Captioner.from_pretrained(out / "captioners" / "s3d"))
    pipeline.save_pretrained(tmp_path / "bundle")
    bare = VideoBertPipeline(pipeline.model, pipeline.tokenizer, pipeline.tree, pipeline.clip, pipeline.s3d)
    bare.save_pretrained(tmp_path / "bundle")  # the same directory: the old captioner goes
    assert not (tmp_path / "bundle" / "captioner").exists()
    loaded = VideoBertPipeline.from_pretrained(tmp_path / "bundle")
    assert loaded.captioner is None
    with pytest.raises(RuntimeError, match=r"no captioner: train one with `videobert eval caption.*--captioner"):
        loaded.caption(videos / "c.mp4")


def test_a_captioner_of_other_features_is_refused(captioned):
    pipeline, out, _ = captioned
    captioner = Captioner.from_pretrained(out / "captioners" / "videobert")
    with pytest.raises(ValueError, match="reads 128-wide features but this pipeline's s3d features are 1024 wide"):
        pipeline.set_captioner(captioner, "s3d")
    with pytest.raises(ValueError, match="unknown captioning variant 'i3d'"):
        pipeline.set_captioner(captioner, "i3d")
    other = VideoBertPipeline(VideoBertForPretraining(VideoBertConfig.tiny(num_visual_words=9, hidden_size=32,
                                                                           num_attention_heads=2)),
                              pipeline.tokenizer, pipeline.tree, pipeline.clip, pipeline.s3d)
    with pytest.raises(ValueError, match="trained on another model's features"):
        other.set_captioner(captioner)
