"""`videobert pipeline` and `VideoBertPipeline` (issue 16): a folder of generated videos (PyAV) with
VTT / SRT / JSON transcripts goes, through the README's command, to a bundle that answers one call
per question; a rerun resumes, other settings are refused; `videobert export --pipeline` writes the
same bundle from the run."""

import json
import re
import shlex
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

import videobert
from videobert.cli import build_parser, main
from videobert.features.store import iter_video_features
from videobert.pipeline.own_videos import OwnVideosConfig
from videobert.utils.config import from_dict
from videobert.video.synthetic import write_video
from videobert.visual_words import HierarchicalKMeans

from cli_refusal import assert_refused

README = Path(__file__).resolve().parents[1] / "README.md"
YOUTUBE = """WEBVTT
Kind: captions

00:00:00.100 --> 00:00:01.500 align:start position:0%
 
now<00:00:00.400><c> whisk</c><00:00:00.700><c> the</c><00:00:00.900><c> eggs</c>

00:00:01.500 --> 00:00:01.510 align:start position:0%
now whisk the eggs
 

00:00:02.500 --> 00:00:03.000 align:start position:0%
now whisk the eggs
add<00:00:02.700><c> the</c><00:00:02.800><c> flour</c>
"""
SMALL = {"random_weights": True, "size": 32, "fps": 8, "clip_frames": 8, "workers": 0, "levels": 2, "branching": 3,
         "pretrain": "tiny", "pretrain_overrides": ["steps=2", "batch_size=4", "micro_batch_size=2", "data.max_length=64",
                                                    "tensorboard=false"],
         "verbs": ["whisk", "add", "stir"], "objects": ["eggs", "flour", "bowl"]}


@pytest.fixture(scope="module")
def own(tmp_path_factory) -> Path:
    """Four videos of different codecs and sizes, three transcripts (YouTube VTT, SRT, JSON words),
    one transcript without a video; then the README's command on them."""
    root = tmp_path_factory.mktemp("own")
    videos, transcripts = root / "videos", root / "transcripts"
    videos.mkdir()
    transcripts.mkdir()
    write_video(videos / "eggs.mp4", fps=24, frames=72, width=64, height=48)
    write_video(videos / "flour.webm", codec="libvpx-vp9", fps=25, frames=75, width=48, height=64)
    write_video(videos / "bowl.mkv", fps=30, frames=90, width=64, height=48, textured=True)
    write_video(videos / "quiet.mp4", fps=24, frames=48, width=40, height=40)
    (transcripts / "eggs.vtt").write_text(YOUTUBE)
    (transcripts / "flour.srt").write_text("1\n00:00:00,500 --> 00:00:02,500\nstir the flour in the bowl\n")
    (transcripts / "bowl.json").write_text(json.dumps({"words": [
        {"word": "whisk", "start": 0.2, "end": 0.5}, {"word": "eggs", "start": 0.6, "end": 0.9},
        {"word": "add", "start": 2.2, "end": 2.4}, {"word": "flour", "start": 2.5, "end": 2.9}]}))
    (transcripts / "ghost.vtt").write_text("WEBVTT\n\n00:00.000 --> 00:01.000\nno such video\n")
    (root / "mine.yaml").write_text(yaml.safe_dump(SMALL))
    command = readme_command().replace("videos/", str(videos) + "/").replace("transcripts/", str(transcripts) + "/")
    command = command.replace("mine/", str(root / "mine") + "/").replace("mine.yaml", str(root / "mine.yaml"))
    assert main(shlex.split(command)[1:]) == 0
    return root


def readme_command() -> str:
    """The `videobert pipeline ...` line of the README's "Your own videos" section."""
    section = README.read_text().split("## Your own videos", 1)[1]
    return next(line for line in section.splitlines() if line.startswith("videobert pipeline "))


def test_readme_config_is_a_valid_pipeline_config():
    section = README.read_text().split("## Your own videos", 1)[1]
    example = yaml.safe_load(re.search(r"```yaml\n(.*?)```", section, re.S).group(1))
    config = from_dict(OwnVideosConfig, example)
    assert config.levels == 2 and config.weights.endswith("s3d-d76dad2f.pth") and not config.weights.startswith("~")
    build_parser().parse_args(shlex.split(readme_command())[1:])


def test_pipeline_goes_from_videos_to_a_bundle_and_a_zero_shot_report(own):
    mine = own / "mine"
    stages = [json.loads(line)["key"] for line in (mine / "stages.jsonl").read_text().splitlines()]
    assert stages == ["extract", "visual_words", "corpus", "pretrain", "export", "zero_shot"]
    info = json.loads((mine / "corpus" / "corpus.json").read_text())
    assert info["num_visual_words"] == 9 and info["transcript_errors"] == []
    assert sum(s["sentences"] for s in info["splits"].values()) >= 5  # the YouTube track gives two
    report = json.loads((mine / "zero_shot.json").read_text())
    assert sorted(report) == ["bowl", "eggs", "flour", "quiet"]
    assert {v for v, _ in report["eggs"]["verbs"]} == {"whisk", "add", "stir"}


def test_bundle_answers_one_call_per_question(own):
    pipe = videobert.VideoBertPipeline.from_pretrained(own / "mine" / "pipeline")
    video = own / "videos" / "flour.webm"
    words, times = pipe.video_words(video)
    # exactly the visual words the corpus was built from
    tree = HierarchicalKMeans.load(own / "mine" / "visual_words.safetensors")
    features, extracted_times = next((f, t) for v, f, t in iter_video_features(own / "mine" / "features") if v == "flour")
    np.testing.assert_array_equal(words, tree.assign(features))
    np.testing.assert_allclose(times, extracted_times)
    hidden = pipe.model.config.hidden_size
    for vector in (pipe.embed_video(video), pipe.embed_text("stir the flour")):
        assert vector.shape == (hidden,) and float(vector.norm()) == pytest.approx(1.0, abs=1e-5)
    score = pipe.alignment_score(video, "stir the flour in the bowl")
    assert 0.0 < score < 1.0
    ranked = pipe.zero_shot(video, ["whisk", "add", "stir"], ["eggs", "flour", "bowl"], top_k=2)
    assert len(ranked["verbs"]) == 2 and len(ranked["objects"]) == 2
    assert sum(p for _, p in pipe.zero_shot(video, ["whisk", "add", "stir"], ["eggs"], top_k=5)["verbs"]) == pytest.approx(1.0)


def test_rerun_resumes_and_other_settings_are_refused(own, caplog):
    import logging

    command = ["pipeline", "--videos", str(own / "videos"), "--transcripts", str(own / "transcripts"),
               "--out", str(own / "mine"), "--config", str(own / "mine.yaml")]
    caplog.set_level(logging.INFO)
    assert main(command) == 0
    assert caplog.text.count("done in an earlier run") == 6
    assert_refused([*command, "fps=10"], caplog, r"config.fps: 8.0 -> 10.0\); rerun with --overwrite")


def test_export_pipeline_command_writes_the_same_bundle(own, tmp_path):
    assert main(["export", str(own / "mine" / "pretrain"), str(tmp_path / "bundle"), "--pipeline"]) == 0
    ours = videobert.VideoBertPipeline.from_pretrained(tmp_path / "bundle")
    theirs = videobert.VideoBertPipeline.from_pretrained(own / "mine" / "pipeline")
    assert ours.clip == theirs.clip and ours.s3d == theirs.s3d and ours.s3d.identity == "random(seed=0)"
    video = own / "videos" / "eggs.mp4"
    torch.testing.assert_close(ours.embed_video(video), theirs.embed_video(video))


def test_export_pipeline_takes_a_captioner(own, tmp_path):
    """`--captioner` puts a captioner trained on the run's features (here the s3d variant, a few steps) into the
    bundle: its caption of a video is the captioner's caption of that video's extracted features."""
    from videobert.tasks.captioning import CaptionerTrainConfig, train_captioner

    extracted = {v: f for v, f, _ in iter_video_features(own / "mine" / "features")}
    config = CaptionerTrainConfig(steps=3, batch_size=2, hidden_size=16, num_heads=2, intermediate_size=32, max_caption_words=6)
    captioner = train_captioner(list(extracted.values()), [f"add the {v}" for v in extracted], config).captioner
    captioner.save_pretrained(tmp_path / "captioners" / "s3d")
    run, bundle = str(own / "mine" / "pretrain"), str(tmp_path / "bundle")
    assert main(["export", run, bundle, "--pipeline", "--captioner", str(tmp_path / "captioners" / "s3d")]) == 0
    pipe = videobert.VideoBertPipeline.from_pretrained(bundle)
    assert pipe.captioner_variant == "s3d"
    assert pipe.caption(own / "videos" / "eggs.mp4", beam_size=2) == captioner.generate([extracted["eggs"]], beam_size=2)[0]
    with pytest.raises(FileNotFoundError, match="no config.json; give a captioner directory written by `videobert eval"):
        main(["export", run, bundle, "--pipeline", "--captioner", str(tmp_path / "captioners")])
    with pytest.raises(ValueError, match="--captioner goes with --pipeline"):
        main(["export", run, bundle, "--captioner", str(tmp_path / "captioners" / "s3d")])


def test_bundle_refuses_other_s3d_weights(own, tmp_path):
    from videobert.features import S3D
    from videobert.pipeline import S3DSource

    torch.save(S3D().state_dict(), tmp_path / "s3d.pth")
    source = S3DSource.of(tmp_path / "s3d.pth")
    torch.save(S3D().state_dict(), tmp_path / "other.pth")
    with pytest.raises(ValueError, match="is not that of the S3D weights"):
        source.load(tmp_path / "other.pth", torch.device("cpu"))
    with pytest.raises(FileNotFoundError, match="no pipeline.json"):
        videobert.VideoBertPipeline.from_pretrained(own / "mine" / "pretrain" / "model")


def test_a_failing_stage_names_itself(tmp_path, caplog):
    (tmp_path / "videos").mkdir()
    (tmp_path / "videos" / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(3000))
    command = ["pipeline", "--videos", str(tmp_path / "videos"), "--out", str(tmp_path / "out"), "random_weights=true",
               "size=32", "fps=8", "clip_frames=8", "workers=0"]
    assert main(command) == 1
    assert "stage 'extract' failed" in caplog.text and "broken" in caplog.text
    record = json.loads((tmp_path / "out" / "stages.jsonl").read_text().splitlines()[-1])
    assert (record["key"], record["status"]) == ("extract", "failed")
    with pytest.raises(ValueError, match="set weights .*s3d-d76dad2f.pth.* or random_weights"):
        main(command[:5])
