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

STAGES = ["generate", "extract", "visual_words", "corpus", "pretrain", "evaluate", "pictures"]


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
    for key in ("loss_curves", "zero_shot", "zero_shot_per_class", "all_words", "heldout_video", "top_word"):
        with Image.open(out / report["outputs"][key]) as image:
            assert image.format == "PNG" and image.width >= 100 and image.height >= 60, key
            assert len(np.unique(np.asarray(image.convert("L")))) > 10, f"{key} is blank"
    zero_shot = json.loads((out / "eval" / "zero_shot.json").read_text())
    assert zero_shot["num_segments"] == report["zero_shot"]["segments"]


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


def test_alignment_reads_the_narration_spoken_during_each_segment(tmp_path):
    from videobert.demo.evaluate import narrated
    from videobert.tasks.annotations import Segment

    (tmp_path / "v1.vtt").write_text("WEBVTT\n\n00:00:00.000 --> 00:00:01.000\nokay.\n\n"
                                     "00:00:01.000 --> 00:00:05.000\nnow let me show you how to spin the ring.\n")
    segments = [Segment("v1", 0.8, 5.2, "spin the orange ring"), Segment("v1", 6.0, 8.0, "push the red square"),
                Segment("v2", 0.0, 2.0, "lift the green triangle")]
    out = narrated(segments, tmp_path)
    # the longest overlap wins; no sentence inside the span, or no transcript: left out
    assert [(s.video_id, s.start, s.sentence) for s in out] == [("v1", 0.8, "now let me show you how to spin the ring.")]
