"""Real DeepSpeed runs of the tiny model on a real corpus (built by build_corpus from generated
arrays) on the CPU: one process vs two gloo ranks (ZeRO-2, ZeRO-3), exact resumption, SIGTERM,
non-finite losses, and export to a from_pretrained directory.

All runs share one schedule that does not depend on ``steps`` (warm-up, then constant), so a run of
any length follows the reference's trajectory for the steps they share.
"""

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from videobert.corpus import CorpusConfig, PretrainingDataset, build_corpus
from videobert.models.videobert import VideoBertConfig, VideoBertForPretraining
from videobert.text import Cue
from videobert.train import NonFiniteLossError, launch, load_train_config, pretrain, read_metrics
from videobert.train.data import RankData
from videobert.train.distributed import child_environment
from videobert.models.videobert.family import FAMILY

REPO = Path(__file__).resolve().parents[1]
STEPS = 6
WORDS = "the cook cuts onions and adds salt then stirs the pan slowly with a wooden spoon until golden".split()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """10 videos of 40 clips (1.5 s) with 9 spoken sentences each; about 30% held out."""
    rng = np.random.default_rng(0)

    def videos():
        for v in range(10):
            times = np.stack([np.arange(40) * 1.5, np.arange(40) * 1.5 + 1.5], axis=1)
            cues = [Cue(start=6.0 * i, end=6.0 * i + 5.0, text=" ".join(rng.choice(WORDS, 6)) + ".") for i in range(9)]
            yield f"video{v:02d}", rng.integers(0, 12**4, 40), times, cues

    out = tmp_path_factory.mktemp("corpus")
    info = build_corpus(videos(), out, CorpusConfig(heldout_fraction=0.3))
    assert info["splits"]["train"]["videos"] and info["splits"]["heldout"]["videos"]
    return out


def overrides(corpus: Path, out: Path, *extra: str) -> list[str]:
    return [f"data.corpus={corpus}", f"out={out}", f"steps={STEPS}", "batch_size=8", "micro_batch_size=4",
            "data.max_length=64", "optimizer.lr=1e-3", "schedule.warmup_steps=2", "schedule.decay=constant",
            "save_every=2", "eval_every=3", "eval_batches=1", "progress=false", "deepspeed=zero2", *extra]


def config(corpus: Path, out: Path, *extra: str):
    return load_train_config("tiny", overrides(corpus, out, *extra))


def losses(out: Path, kind: str = "train") -> list[float]:
    return [record["loss"] for record in read_metrics(out, kind)]


@pytest.fixture(scope="module")
def reference(corpus, tmp_path_factory):
    """One plain process (world size 1, 2 accumulation steps), never interrupted."""
    out = tmp_path_factory.mktemp("reference")
    result = pretrain(config(corpus, out))
    assert result.stopped == "completed" and result.step == STEPS
    return result


def test_one_process_run_learns_logs_and_exports(reference):
    train = read_metrics(reference.out)
    assert [r["step"] for r in train] == list(range(1, STEPS + 1))
    assert all(math.isfinite(r["loss"]) and r["tokens_per_s"] > 0 for r in train)
    assert [r["lr"] for r in train[:3]] == pytest.approx([5e-4, 1e-3, 1e-3])
    assert train[-1]["loss"] < train[0]["loss"]  # lr 1e-3 on a tiny corpus: the loss falls within 6 steps
    assert [r["step"] for r in read_metrics(reference.out, "eval")] == [3, 6]
    assert any(Path(reference.out, "tensorboard").iterdir())
    assert (Path(reference.model_dir) / "config.json").exists()


def shared_allreduce_buffers() -> set[str]:
    """The names DeepSpeed's shared-memory collectives give their per-rank buffers (66 MB each)."""
    return {path.name for path in Path("/dev/shm").glob(f"deepspeed_allreduce_buffer_{os.getuid()}_*")}


@pytest.mark.parametrize("stage", ["zero2", "zero3"])
def test_two_ranks_match_one_process(corpus, reference, tmp_path, stage):
    buffers_before = shared_allreduce_buffers()
    result = launch(config(corpus, tmp_path / stage, f"deepspeed={stage}"), num_procs=2, timeout=240)
    assert result.stopped == "completed" and result.step == STEPS
    assert shared_allreduce_buffers() <= buffers_before  # a run leaves no RAM behind in /dev/shm
    assert losses(tmp_path / stage) == pytest.approx(losses(reference.out), rel=1e-4)
    assert losses(tmp_path / stage, "eval") == pytest.approx(losses(reference.out, "eval"), rel=1e-4)
    # The export (ZeRO-3: gathered from the two ranks' partitions) reloads to the reference's outputs.
    assert_same_outputs(Path(result.model_dir), Path(reference.model_dir), corpus, atol=1e-4)


def assert_same_outputs(model_dir: Path, expected_dir: Path, corpus: Path, atol: float) -> None:
    model = VideoBertForPretraining.from_pretrained(model_dir).eval()
    expected = VideoBertForPretraining.from_pretrained(expected_dir).eval()
    dataset = PretrainingDataset(corpus, "heldout", seed=1)
    examples = [example for example, _ in zip(dataset, range(6))]
    batch = FAMILY.collator(load_train_config("tiny", ["data.max_length=64"]), model)(examples)
    with torch.no_grad():
        hidden, expected_hidden = (m.encode(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"]) for m in (model, expected))
        torch.testing.assert_close(hidden, expected_hidden, atol=atol, rtol=0)
        torch.testing.assert_close(model(**batch)["loss"], expected(**batch)["loss"], atol=atol, rtol=0)


def test_resume_follows_the_uninterrupted_trajectory(corpus, reference, tmp_path):
    first = pretrain(config(corpus, tmp_path, "stop_at_step=3"))
    assert (first.stopped, first.step, first.model_dir) == ("stop_at_step", 3, "")
    assert (tmp_path / "checkpoints" / "latest").read_text().strip() == "step_00000003"
    second = pretrain(config(corpus, tmp_path))
    assert (second.stopped, second.step) == ("completed", STEPS)
    assert losses(tmp_path) == pytest.approx(losses(reference.out), rel=1e-6)
    assert [r["lr"] for r in read_metrics(tmp_path)] == pytest.approx([r["lr"] for r in read_metrics(reference.out)])
    assert_same_outputs(Path(second.model_dir), Path(reference.model_dir), corpus, atol=1e-6)


def test_grouped_by_length_pads_less_and_resumes_mid_pool(corpus, tmp_path):
    """data.group_by_length=3 with 2 accumulation steps: a stop at step 4 falls inside a pool."""
    grouped = config(corpus, tmp_path / "whole", "data.group_by_length=3", "eval_every=0")
    model = VideoBertForPretraining(VideoBertConfig.tiny())
    collate = FAMILY.collator(grouped, model)
    widths = {}
    for group in (1, 3):
        data = RankData(FAMILY.dataset_factory(grouped, "train"), 0, 1, 2, 4, FAMILY.example_length, group)
        widths[group] = sum(collate(data.next_micro_batch(step % 2))["attention_mask"].shape[1] for step in range(48))
    assert widths[3] < 0.9 * widths[1]
    whole = pretrain(grouped)
    assert whole.stopped == "completed"
    first = pretrain(config(corpus, tmp_path / "resumed", "data.group_by_length=3", "eval_every=0", "stop_at_step=4"))
    assert (first.stopped, first.step) == ("stop_at_step", 4)
    second = pretrain(config(corpus, tmp_path / "resumed", "data.group_by_length=3", "eval_every=0"))
    assert (second.stopped, second.step) == ("completed", STEPS)
    assert losses(tmp_path / "resumed") == pytest.approx(losses(tmp_path / "whole"), rel=1e-6)


def test_packed_rows_train_as_the_padded_batches(corpus, tmp_path):
    """data.pack_sequences: the same examples in fewer rows give the padded run's losses (dropout
    off, the one thing that sees the layout), and the setting enters the run's fingerprint."""
    no_dropout = ("model.overrides.hidden_dropout_prob=0.0", "model.overrides.attention_probs_dropout_prob=0.0", "eval_every=0")
    padded = pretrain(config(corpus, tmp_path / "padded", *no_dropout))
    packed = pretrain(config(corpus, tmp_path / "packed", *no_dropout, "data.pack_sequences=true"))
    assert padded.stopped == packed.stopped == "completed"
    assert losses(tmp_path / "packed") == pytest.approx(losses(tmp_path / "padded"), rel=1e-5)
    assert json.loads((tmp_path / "packed" / "fingerprint.json").read_text())["data"]["pack_sequences"] is True
    assert "pack_sequences" not in json.loads((tmp_path / "padded" / "fingerprint.json").read_text())["data"]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "ctrl-c"])
def test_stop_signal_checkpoints_and_exits_cleanly(corpus, reference, tmp_path, signum):
    args = overrides(corpus, tmp_path, "steps=100000", "save_every=100000", "eval_every=0")
    # Without this process's own process-group variables (the reference run set them).
    env = child_environment({"PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])})
    process = subprocess.Popen([sys.executable, "-m", "videobert", "pretrain", *args], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    metrics = tmp_path / "metrics.jsonl"
    deadline = time.monotonic() + 180
    while not (metrics.exists() and len(metrics.read_text().splitlines()) >= 2):
        assert process.poll() is None, process.stdout.read()[-3000:]
        assert time.monotonic() < deadline, "the run did not reach step 2"
        time.sleep(0.2)
    process.send_signal(signum)
    output, _ = process.communicate(timeout=120)
    # checkpointed, then 128 + the signal
    assert process.returncode == 128 + signum and "rerun the same command to resume" in output, output[-3000:]
    result = json.loads((tmp_path / "result.json").read_text())
    stopped_at = result["step"]
    assert result["stopped"] == signal.Signals(signum).name.lower() and stopped_at >= 2
    assert (tmp_path / "checkpoints" / "latest").read_text().strip() == f"step_{stopped_at:08d}"
    shared = min(stopped_at, STEPS)
    assert losses(tmp_path)[:shared] == pytest.approx(losses(reference.out)[:shared], rel=1e-4)
    # ... and the checkpoint resumes at the next step.
    resumed = pretrain(load_train_config("tiny", args + [f"stop_at_step={stopped_at + 1}"]))
    assert resumed.step == stopped_at + 1 and len(losses(tmp_path)) == stopped_at + 1
    if stopped_at + 1 <= STEPS:
        assert losses(tmp_path)[stopped_at] == pytest.approx(losses(reference.out)[stopped_at], rel=1e-4)


def poison_forward(model: torch.nn.Module, call: int) -> None:
    """Make the model's ``call``-th forward return a NaN loss (a fault injected into the data path)."""
    calls = {"n": 0}

    def hook(module, args, outputs):
        calls["n"] += 1
        if calls["n"] == call:
            outputs["loss"] = outputs["loss"] * float("nan")
        return outputs

    model.register_forward_hook(hook)


def test_nonfinite_loss_raises_naming_the_step(corpus, tmp_path):
    run = config(corpus, tmp_path, "eval_every=0")
    model = VideoBertForPretraining(VideoBertConfig.tiny())
    poison_forward(model, call=3)  # 2 micro-batches per step: the 3rd forward is step 2's first
    with pytest.raises(NonFiniteLossError, match=r"step 2 \(micro-batch 1 of 2"):
        pretrain(run, model=model)


def test_nonfinite_loss_skip_drops_the_micro_batch(corpus, tmp_path):
    model = VideoBertForPretraining(VideoBertConfig.tiny())
    poison_forward(model, call=3)
    result = pretrain(config(corpus, tmp_path, "eval_every=0", "on_nonfinite=skip"), model=model)
    assert (result.stopped, result.step, result.skipped_micro_batches) == ("completed", STEPS, 1)
    assert all(math.isfinite(loss) for loss in losses(tmp_path))


def test_export_command_writes_a_from_pretrained_directory(reference, corpus, tmp_path):
    from videobert.cli import main

    assert main(["export", reference.out, str(tmp_path / "exported"), "--tag", "step_00000006"]) == 0
    assert_same_outputs(tmp_path / "exported", Path(reference.model_dir), corpus, atol=0)
    with pytest.raises(FileNotFoundError, match="step_00000001"):
        main(["export", reference.out, str(tmp_path / "missing"), "--tag", "step_00000001"])


def test_a_model_that_does_not_fit_the_corpus_is_refused(corpus, tmp_path):
    model = VideoBertForPretraining(VideoBertConfig.tiny(text_vocab_size=200))
    with pytest.raises(ValueError, match="text_vocab_size=30522 but the model has 200"):
        pretrain(config(corpus, tmp_path), model=model)
