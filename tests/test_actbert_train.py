"""ActBERT through the shared DeepSpeed trainer on the CPU: one process vs two gloo ranks (ZeRO-2),
exact resumption, and the exported model."""

from pathlib import Path

import pytest
import torch

from videobert.models import get_family, load_model
from videobert.models.actbert import ActBertForPretraining
from videobert.train import launch, load_train_config, pretrain, read_metrics

from actbert_data import make_dataset

STEPS = 6


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("actbert"))


def config(paths, out: Path, *extra: str):
    family = f"{{features: [{paths['features']}], actions: {paths['actions']}, max_clips: 12}}"
    return load_train_config("tiny", [
        f"data.corpus={paths['corpus']}", f"out={out}", "model.family=actbert", f"data.family={family}",
        f"steps={STEPS}", "batch_size=8", "micro_batch_size=4", "data.max_length=32", "optimizer.lr=1e-3",
        "schedule.warmup_steps=2", "schedule.decay=constant", "save_every=2", "eval_every=3", "eval_batches=1",
        "progress=false", "deepspeed=zero2", *extra])


def losses(out: Path, kind: str = "train") -> list[float]:
    return [record["loss"] for record in read_metrics(out, kind)]


@pytest.fixture(scope="module")
def reference(paths, tmp_path_factory):
    out = tmp_path_factory.mktemp("reference")
    result = pretrain(config(paths, out))
    assert result.stopped == "completed" and result.step == STEPS
    return result


def test_trains_through_the_shared_trainer(reference):
    train = read_metrics(reference.out)
    assert [r["step"] for r in train] == list(range(1, STEPS + 1))
    # the trainer logs the family's metric_keys: every ActBERT objective's loss, not only VideoBERT's
    assert {"mlm_loss", "action_loss", "object_loss", "matching_loss"} <= set(train[0])
    assert train[-1]["loss"] < train[0]["loss"]
    model = load_model(reference.model_dir)
    assert isinstance(model, ActBertForPretraining)
    assert (model.config.num_actions, model.config.num_object_classes, model.config.region_feature_dim) == (4, 5, 12)


def assert_same_outputs(paths, model_dir: Path, expected_dir: Path, atol: float) -> None:
    family = get_family("actbert")
    model, expected = (ActBertForPretraining.from_pretrained(d).eval() for d in (model_dir, expected_dir))
    run = config(paths, model_dir)
    examples = [e for e, _ in zip(family.dataset_factory(run, "heldout")(0, 1), range(6))]
    batch = family.collator(run, model)(examples)
    with torch.no_grad():
        torch.testing.assert_close(model(**batch)["loss"], expected(**batch)["loss"], atol=atol, rtol=0)


def test_two_ranks_match_one_process(paths, reference, tmp_path):
    result = launch(config(paths, tmp_path), num_procs=2, timeout=240)
    assert result.stopped == "completed" and result.step == STEPS
    assert losses(tmp_path) == pytest.approx(losses(reference.out), rel=1e-4)
    assert losses(tmp_path, "eval") == pytest.approx(losses(reference.out, "eval"), rel=1e-4)
    assert_same_outputs(paths, Path(result.model_dir), Path(reference.model_dir), atol=1e-4)


def test_resume_follows_the_uninterrupted_trajectory(paths, reference, tmp_path):
    first = pretrain(config(paths, tmp_path, "stop_at_step=3"))
    assert (first.stopped, first.step) == ("stop_at_step", 3)
    second = pretrain(config(paths, tmp_path))
    assert (second.stopped, second.step) == ("completed", STEPS)
    assert losses(tmp_path) == pytest.approx(losses(reference.out), rel=1e-6)
    assert_same_outputs(paths, Path(second.model_dir), Path(reference.model_dir), atol=1e-6)


def test_data_that_does_not_fit_the_model_is_refused(paths, tmp_path):
    with pytest.raises(ValueError, match="num_actions=4 but model.overrides has num_actions=7"):
        get_family("actbert").prepare(config(paths, tmp_path, "model.overrides={num_actions: 7}"))
