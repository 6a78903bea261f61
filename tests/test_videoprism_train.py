"""VideoPrism through the shared DeepSpeed trainer on the CPU: stage 1 (contrastive, negatives
gathered across ranks: two gloo ranks match one process holding both ranks' pairs), then stage 2
from the stage-1 model as its frozen teacher, export, the task hooks on the result, and stage 3
(text alignment) on the frozen stage-2 encoder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from videobert.corpus import CorpusConfig, build_corpus
from videobert.models import get_family, load_model
from videobert.models.videoprism import VideoPrismConfig, VideoPrismForPretraining
from videobert.tasks.scoring import task_scoring
from videobert.text import Cue, WordPieceTokenizer
from videobert.train import launch, load_train_config, pretrain, read_metrics
from videobert.video.clip_store import ClipStore, write_clip_store
from videobert.video.synthetic import write_video

STEPS = 4
SIZES = ("model.overrides.image_size=16", "model.overrides.patch_size=8", "model.overrides.num_frames=4")
WORDS = "cut stir pour fold".split()


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> tuple[Path, Path]:
    """Six 9 s videos (6 clips of 1.5 s) with three spoken sentences each, a clip store of them
    (2 frames a clip at 16 px) and their corpus."""
    root = tmp_path_factory.mktemp("videoprism_run")
    paths = [write_video(root / f"video{v}.mp4", "libx264", fps=8, frames=72, width=32, height=32, textured=v % 2 == 1)
             for v in range(6)]
    write_clip_store(paths, root / "clips", frames_per_clip=2, size=16)
    store = ClipStore(root / "clips")
    videos = []
    for v, video_id in enumerate(store.video_ids):
        cues = [Cue(3.0 * i, 3.0 * i + 2.5, f"{WORDS[(v + i) % 4]} the {WORDS[i % 4]}.") for i in range(3)]
        videos.append((video_id, np.arange(6) % 12, store.times(video_id), cues))
    build_corpus(videos, root / "corpus", CorpusConfig(num_visual_words=12, heldout_fraction=0.0), WordPieceTokenizer())
    return root / "corpus", root / "clips"


def run_config(data, out: Path, *extra: str):
    corpus, clips = data
    return load_train_config(None, [
        "model.family=videoprism", f"data.corpus={corpus}", f"data.family.clips={clips}", "data.eval_split=", f"out={out}",
        f"steps={STEPS}", "batch_size=8", "optimizer.lr=1e-3", "schedule.warmup_steps=1", "schedule.decay=constant",
        f"save_every={STEPS}", "eval_every=0", "progress=false", "tensorboard=false", "deepspeed=zero2", *SIZES, *extra])


def losses(out: Path) -> list[float]:
    return [record["loss"] for record in read_metrics(out)]


@pytest.fixture(scope="module")
def stage1(data, tmp_path_factory):
    """One plain process holding all 8 pairs of a step in one micro-batch."""
    out = tmp_path_factory.mktemp("stage1")
    result = pretrain(run_config(data, out, "micro_batch_size=8"))
    assert result.stopped == "completed" and result.step == STEPS
    return result


def test_stage1_two_ranks_match_one_process_with_the_whole_batch(data, stage1, tmp_path):
    result = launch(run_config(data, tmp_path, "micro_batch_size=4"), num_procs=2, timeout=240)
    assert result.stopped == "completed"
    assert losses(tmp_path) == pytest.approx(losses(Path(stage1.out)), rel=1e-4)
    # the exported models embed alike. Not bit for bit: the two ranks sum gradients in another order, and
    # Adam's step on a near-zero gradient can round apart in a weight. Measured apart: 1e-6 on the
    # development VM, 1.4e-4 on a CI machine; a model one step short is 1.6 away (embeddings of norm 8).
    theirs, ours = (VideoPrismForPretraining.from_pretrained(r.model_dir).eval() for r in (stage1, result))
    store = ClipStore(data[1])
    frames = torch.from_numpy(store.frames(np.arange(8)).reshape(2, 8, 16, 16, 3)[:, ::2].copy())
    texts = {"text_ids": torch.tensor([[101, 2000, 102]]), "text_mask": torch.ones(1, 3, dtype=torch.long)}
    with torch.no_grad():
        torch.testing.assert_close(ours.embed_video(frames), theirs.embed_video(frames), rtol=0, atol=2e-3)
        torch.testing.assert_close(ours.embed_text(**texts), theirs.embed_text(**texts), rtol=0, atol=2e-3)


def test_stage2_distils_the_stage1_model_and_exports_without_it(data, stage1, tmp_path):
    config = run_config(data, tmp_path, "micro_batch_size=4", f"model.init_from={stage1.model_dir}", "model.overrides.stage=2")
    config.model.overrides = {"stage": 2, "mask_ratio": 0.5}  # the sizes come from the stage-1 model
    result = pretrain(config)
    assert result.stopped == "completed"
    records = read_metrics(tmp_path)
    assert records[-1]["loss"] < records[0]["loss"]
    student = load_model(result.model_dir)
    teacher = VideoPrismForPretraining.from_pretrained(stage1.model_dir)
    assert student.config.stage == 2 and student.config.mask_ratio == 0.5
    saved = load_file(str(Path(result.model_dir) / "model.safetensors"))
    assert set(saved) == set(student.state_dict())  # the teacher's weights are not the student's
    # the frozen parts (text tower, temperature) are the stage-1 model's; the encoder moved on
    torch.testing.assert_close(student.text.projection.weight, teacher.text.projection.weight)
    torch.testing.assert_close(student.log_logit_scale, teacher.log_logit_scale)
    assert not torch.equal(student.video.patch_projection.weight, teacher.video.patch_projection.weight)
    # the family's task hooks read the store's rows
    hooks = task_scoring(student, None, clips=data[1])
    store = ClipStore(data[1])
    videos = [store.rows(i) for i in store.video_ids[:3]]
    assert hooks.embed_videos(videos).shape == (3, student.config.hidden_size)
    features = hooks.clip_features(videos)
    assert [f.shape for f in features] == [(6, student.config.hidden_size)] * 3
    texts = [[2000, 2001], [2002]]
    logits = hooks.pair_logits(texts, videos, np.array([0, 1]), np.array([2, 0]))
    # pair k is text k with its own video: 1/T times the cosine of those two embeddings
    cosine = (hooks.embed_texts(texts) * hooks.embed_videos([videos[2], videos[0]])).sum(-1)
    np.testing.assert_allclose(logits, (student.logit_scale * cosine).double().numpy(), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="videoprism task hooks need clips=<clip store dir>"):
        task_scoring(student, None)


def test_a_stage2_run_naming_only_its_teacher_starts_from_it(data, stage1, tmp_path):
    """``data.family.teacher`` and no ``model.init_from``: the student starts from the teacher and
    takes its sizes (4 frames where the tiny preset has 8) and its vocabulary, which the corpus's
    must match."""
    family = get_family("videoprism")
    config = run_config(data, tmp_path, f"data.family.teacher={stage1.model_dir}")
    config.model.overrides = {"stage": 2, "mask_ratio": 0.5}
    model_config, teacher_weights = family.prepare(config)
    assert model_config.overrides == {"stage": 2, "mask_ratio": 0.5}
    assert teacher_weights == Path(stage1.model_dir) / "model.safetensors"
    student = family.build_model(model_config, teacher_weights, config.seed)
    teacher = VideoPrismForPretraining.from_pretrained(stage1.model_dir)
    assert student.config == teacher.config.replace(stage=2, mask_ratio=0.5)
    assert family._num_frames(config) == 4 != VideoPrismConfig.tiny().num_frames
    examples = iter(family.dataset_factory(config, "train")(0, 1))
    batch = family.collator(config, student)([next(examples) for _ in range(2)])
    assert torch.isfinite(student(**batch)["loss"])
    # the vocabulary checked against the corpus is the teacher's
    VideoPrismForPretraining(VideoPrismConfig.tiny(text={"vocab_size": 99})).save_pretrained(tmp_path / "teacher99")
    other = run_config(data, tmp_path, f"data.family.teacher={tmp_path / 'teacher99'}")
    other.model.overrides = {"stage": 2}
    with pytest.raises(ValueError, match="text_vocab_size=30522 but the model's text tower reads 99"):
        family.prepare(other)


def test_a_stage2_run_refuses_a_teacher_that_is_not_stage1(data, stage1, tmp_path):
    family = get_family("videoprism")
    config = run_config(data, tmp_path, "model.overrides.stage=2")
    with pytest.raises(ValueError, match="needs a trained stage-1 model"):
        family.prepare(config)
    stage2 = VideoPrismForPretraining.for_distillation(VideoPrismForPretraining.from_pretrained(stage1.model_dir))
    stage2.save_pretrained(tmp_path / "stage2")
    config = run_config(data, tmp_path, f"model.init_from={stage1.model_dir}", f"data.family.teacher={tmp_path / 'stage2'}")
    config.model.overrides = {"stage": 2}
    model_config, teacher_weights = family.prepare(config)
    with pytest.raises(ValueError, match=r"the teacher .*stage2 is a stage-2 model; stage 2 distils a stage-1 model"):
        family.build_model(model_config, teacher_weights, config.seed)
    bad = run_config(data, tmp_path, "model.overrides.text.vocab_size=99")
    with pytest.raises(ValueError, match="text_vocab_size=30522 but the model's text tower reads 99"):
        family.prepare(bad)


def test_stage3_aligns_text_to_the_frozen_stage2_encoder(data, stage1, tmp_path):
    """Stage 3 from a stage-2 model on two ranks: the exported model's encoder is the stage-2
    model's to the bit, its pooler, text tower and temperature moved, its decoder left behind."""
    stage2 = VideoPrismForPretraining.for_distillation(VideoPrismForPretraining.from_pretrained(stage1.model_dir))
    stage2.save_pretrained(tmp_path / "stage2")
    config = run_config(data, tmp_path / "run", "micro_batch_size=4", f"model.init_from={tmp_path / 'stage2'}")
    config.model.overrides = {"stage": 3}  # the sizes come from the stage-2 model
    result = launch(config, num_procs=2, timeout=240)
    assert result.stopped == "completed"
    aligned = load_model(result.model_dir)
    assert aligned.config.stage == 3 and aligned.decoder is None
    assert not any(key.startswith("decoder.") for key in load_file(str(Path(result.model_dir) / "model.safetensors")))
    for key, value in stage2.video.state_dict().items():
        assert torch.equal(aligned.video.state_dict()[key], value), key
    for trained in ("pooler.query", "text.projection.weight", "log_logit_scale"):
        assert not torch.equal(aligned.state_dict()[trained], stage2.state_dict()[trained]), trained
    assert "contrastive_accuracy" in read_metrics(tmp_path / "run")[-1]


@pytest.mark.parametrize("init_from", ["", "bert:/nowhere"])
def test_a_stage3_run_needs_a_trained_encoder(data, tmp_path, init_from):
    family = get_family("videoprism")
    config = run_config(data, tmp_path, "model.overrides.stage=3")
    config.model.init_from = init_from
    with pytest.raises(ValueError, match="a stage-3 \\(text alignment\\) run freezes a trained video encoder"):
        family.build_model(config.model, None, config.seed)
