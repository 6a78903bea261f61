"""`videobert demo` end to end at its small size: every stage with the library's real components,
its outputs, resuming, and a failing stage that names itself."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from PIL import Image

from videobert.demo.config import demo_config
from videobert.demo.pipeline import DemoPipeline
from videobert.demo.stages import StageFailed

STAGES = ["generate", "extract", "visual_words", "corpus", "pretrain", "evaluate", "caption", "pictures"]


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    config = demo_config("small", seed=0)
    config.num_ranks = 1  # one process keeps the test short; the two-rank launch is the full demo's default
    report = DemoPipeline(out, config).run()
    return out, config, report


def test_demo_writes_report_with_accuracies_beside_chance(small_run):
    out, config, report = small_run
    on_disk = json.loads((out / "report.json").read_text())
    assert on_disk == json.loads(json.dumps(report))
    for slot, classes in (("verb", 8), ("object", 6)):
        r = report["zero_shot"][slot]
        assert 0 <= r["top1"] <= r["top5"] <= 1
        assert math.isclose(r["chance_top1"], 1 / classes, rel_tol=1e-3) and math.isclose(r["chance_top5"], 5 / classes, rel_tol=1e-3)
        assert 0 <= r["prior_top1"] <= 1
    assert report["zero_shot"]["segments"] > 0
    assert 0 <= report["alignment"]["accuracy"] <= 1 and report["alignment"]["chance"] == 0.5
    retrieval = report["retrieval"]
    assert retrieval["mode"] == "two-tower" and retrieval["text"] == "narration" and retrieval["segments"] >= 2
    for direction in ("text_to_video", "video_to_text"):
        r = retrieval[direction]
        assert 0 <= r["R@1"] <= r["R@5"] <= r["R@10"] <= 1 and 1 <= r["MedR"] and 0 < r["chance_R@1"] < 1
    captioning = report["captioning"]
    assert captioning["segments"]["eval"] > 0 and captioning["segments"]["train"] > captioning["segments"]["eval"]
    for name in ("s3d", "videobert", "videobert+s3d", "most_common_caption"):
        assert 0 <= captioning[name]["BLEU-4"] <= captioning[name]["BLEU-1"] <= 1 and captioning[name]["CIDEr"] >= 0, name
    assert captioning["s3d"]["per_seed"]["CIDEr"] == [captioning["s3d"]["CIDEr"]]  # the small demo trains one seed
    assert list(report["stage_seconds"]) == STAGES and all(t >= 0 for t in report["stage_seconds"].values())
    assert report["resumed_stages"] == []
    assert report["visual_words"]["words_possible"] == config.num_visual_words
    assert report["corpus"]["splits"]["train"]["videos"] == config.data.n_train


def test_demo_outputs_exist(small_run):
    out, _, report = small_run
    model_dir = out / report["outputs"]["model"]
    assert (model_dir / "config.json").exists() and (model_dir / "model.safetensors").exists()
    # the model reads the demo's own WordPiece ids: its vocabulary goes with it, and fits it
    vocab = (out / "data" / "vocab.txt").read_text(encoding="utf-8")
    assert (model_dir / "vocab.txt").read_text(encoding="utf-8") == vocab
    assert json.loads((model_dir / "config.json").read_text())["text_vocab_size"] == len(vocab.splitlines()) < 200
    assert any((out / report["outputs"]["tensorboard"]).rglob("events.out.tfevents*"))
    for key in ("loss_curves", "zero_shot", "zero_shot_per_class", "retrieval", "captions", "all_words", "heldout_video",
                "top_word"):
        with Image.open(out / report["outputs"][key]) as image:
            assert image.format == "PNG" and image.width >= 100 and image.height >= 60, key
            assert len(np.unique(np.asarray(image.convert("L")))) > 10, f"{key} is blank"
    zero_shot = json.loads((out / "eval" / "zero_shot.json").read_text())
    assert zero_shot["num_segments"] == report["zero_shot"]["segments"]


def test_demo_writes_a_pipeline_bundle_of_its_model(small_run):
    from videobert.pipeline import VideoBertPipeline

    out, _, _ = small_run
    bundle = VideoBertPipeline.from_pretrained(out / "pipeline")
    video = sorted((out / "data" / "heldout" / "videos").iterdir())[0]
    with np.load(out / "visual_words" / "words.npz") as table:  # what the demo's stages assigned
        np.testing.assert_array_equal(bundle.video_words(video)[0], table[f"{video.stem}/words"])
    assert 0.0 < bundle.alignment_score(video, "spin the square") < 1.0


def test_rerun_resumes_every_finished_stage(small_run):
    out, config, first = small_run
    again = DemoPipeline(out, config).run()
    assert again["resumed_stages"] == STAGES
    assert again["stage_seconds"] == first["stage_seconds"]
    assert again["zero_shot"] == first["zero_shot"]


def test_other_settings_need_fresh(small_run):
    out, config, _ = small_run
    with pytest.raises(ValueError, match="--fresh"):
        DemoPipeline(out, demo_config("small", seed=1)).run()


def test_failing_stage_names_itself_and_fresh_starts_over(tmp_path):
    config = demo_config("small", seed=0)
    config.s3d_weights = str(tmp_path / "missing-s3d.pth")
    pipeline = DemoPipeline(tmp_path / "run", config)
    with pytest.raises(StageFailed, match="stage 'extract' failed.*missing-s3d.pth") as caught:
        pipeline.run()
    assert caught.value.stage == "extract"
    records = [json.loads(line) for line in (tmp_path / "run" / "stages.jsonl").read_text().splitlines()]
    assert [(r["key"], r["status"]) for r in records] == [("generate", "done"), ("extract", "failed")]
    # --fresh removes the earlier outputs (and the new run fails again at the same stage)
    with pytest.raises(StageFailed):
        pipeline.run(fresh=True)
    records = [json.loads(line) for line in (tmp_path / "run" / "stages.jsonl").read_text().splitlines()]
    assert [(r["key"], r["status"]) for r in records] == [("generate", "done"), ("extract", "failed")]


def test_videoprism_demo_runs_its_three_stages_and_the_ablation(tmp_path):
    """The small VideoPrism demo: stage 1, stage 2, stage 3 (the scored model) and stage 3 on the
    stage-1 encoder, each in its own directory; the ablation scores all four on the held-out split."""
    config = demo_config("small", seed=0)
    config.family, config.num_ranks = "videoprism", 1
    report = DemoPipeline(tmp_path, config).run()
    pretrain = report["pretrain"]
    assert pretrain["model_dir"] == "pretrain/model" and report["outputs"]["model"] == "pretrain/model"
    stages = {key: json.loads((tmp_path / stage["model_dir"] / "config.json").read_text())["stage"]
              for key, stage in pretrain["stages"].items()}
    assert stages == {"1": 1, "2": 2, "3": 3, "3 on stage 1": 3}
    assert pretrain["stages"]["2"]["model_dir"].startswith("pretrain_stage2/")
    assert set(pretrain["ablation"]) == {"stage1", "stage1+2", "stage1+2+3", "stage1+3"}
    for scores in pretrain["ablation"].values():
        assert set(scores) == {"verb_top1", "object_top1", "text_to_video_R@1"}
        assert all(0 <= value <= 1 for value in scores.values())
    with Image.open(tmp_path / report["outputs"]["loss_curves"]) as image:  # the stage-3 run's loss and accuracy
        assert len(np.unique(np.asarray(image.convert("L")))) > 10
    # the demo's own scoring is of the stage-3 model: the ablation's figure for it is the report's
    assert pretrain["ablation"]["stage1+2+3"]["verb_top1"] == pytest.approx(report["zero_shot"]["verb"]["top1"], abs=1e-4)
