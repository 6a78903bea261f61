"""Fast checks of the training configuration, DeepSpeed configs, schedule and data slots
(no DeepSpeed engine here; the runs are in test_train_runs.py)."""

import pytest
from torch.utils.data import IterableDataset

from videobert.train.config import DEEPSPEED_PRESETS, TrainConfig, deepspeed_config, load_train_config
from videobert.train.data import RankData
from videobert.train.optim import lr_multiplier
from videobert.train.config import ScheduleConfig


def test_paper_config_has_the_paper_defaults():
    config = load_train_config("paper")
    assert (config.optimizer.lr, config.batch_size, config.steps, config.schedule.decay) == (1e-5, 128, 500_000, "linear")
    assert config.optimizer.name in ("adam", "adamw") and config.model.preset == "large"


def test_overrides_reach_nested_fields_and_unknown_keys_are_named():
    config = load_train_config("tiny", ["optimizer.lr=3e-4", "data.stream_weights=[1, 0, 2]", "steps=7"])
    assert (config.optimizer.lr, config.data.stream_weights, config.steps) == (3e-4, [1, 0, 2], 7)
    with pytest.raises(ValueError, match="optimizer.lrr|lrr"):
        load_train_config("tiny", ["optimizer.lrr=1"])


def test_invalid_values_are_rejected_by_name():
    with pytest.raises(ValueError, match="micro_batch_size"):
        TrainConfig(batch_size=10, micro_batch_size=4)
    with pytest.raises(ValueError, match="on_nonfinite"):
        TrainConfig(on_nonfinite="ignore")


@pytest.mark.parametrize("preset", DEEPSPEED_PRESETS)
def test_deepspeed_config_fills_batch_precision_and_keeps_the_zero_stage(preset):
    config = TrainConfig(batch_size=32, micro_batch_size=4, grad_clip=0.5, deepspeed=preset)
    cpu = deepspeed_config(config, world_size=2, on_gpu=False)
    assert cpu["train_batch_size"] == 32 and cpu["gradient_accumulation_steps"] == 4 and cpu["gradient_clipping"] == 0.5
    assert cpu["zero_optimization"]["stage"] == int(preset[4])
    assert not cpu["bf16"]["enabled"] and not cpu["fp16"]["enabled"]  # fp32 on CPU
    gpu = deepspeed_config(config, world_size=8, on_gpu=True)
    assert gpu["bf16"]["enabled"] and gpu["gradient_accumulation_steps"] == 1


def test_deepspeed_config_errors_are_clear():
    with pytest.raises(ValueError, match="cannot be shared evenly by 3 ranks"):
        deepspeed_config(TrainConfig(batch_size=16, micro_batch_size=8), world_size=3, on_gpu=False)
    with pytest.raises(ValueError, match="needs a GPU"):
        deepspeed_config(TrainConfig(precision="bf16"), world_size=1, on_gpu=False)
    with pytest.raises(FileNotFoundError, match="zero9"):
        deepspeed_config(TrainConfig(deepspeed="zero9"), world_size=1, on_gpu=False)


def test_schedule_warms_up_then_decays_linearly_to_the_floor():
    schedule = ScheduleConfig(warmup_steps=4, decay="linear", min_lr_ratio=0.1)
    factors = [lr_multiplier(step, 14, schedule) for step in range(15)]
    assert factors[:4] == [0.25, 0.5, 0.75, 1.0]
    assert factors[4] == 1.0 and factors[9] == pytest.approx(0.55) and factors[14] == pytest.approx(0.1)
    assert all(a >= b for a, b in zip(factors[3:], factors[4:]))
    constant = ScheduleConfig(warmup_steps=0, decay="constant")
    assert {lr_multiplier(step, 10, constant) for step in range(10)} == {1.0}


class _Numbers(IterableDataset):
    """Shard ``shard`` of ``num_shards`` of 0..size-1, shuffled per epoch: enough to test slots."""

    def __init__(self, shard: int, num_shards: int, size: int = 23):
        self.items = list(range(size))[shard::num_shards]
        self.epoch, self.start = 0, 0

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.start = state["epoch"], state["position"]

    def __iter__(self):
        order = sorted(self.items, key=lambda i: (i * 7919 + self.epoch * 104729) % 97)
        return iter({"value": i, "epoch": self.epoch} for i in order[self.start:])


def _steps(world_size: int, accumulation: int, steps: int, micro: int = 3) -> list[dict[int, list]]:
    """Per step: slot -> its micro-batch, over all ranks of a world."""
    ranks = [RankData(_Numbers, rank, world_size, accumulation, micro) for rank in range(world_size)]
    out = []
    for _ in range(steps):
        step = {}
        for data in ranks:
            for a in range(accumulation):
                step[data.slot_of(a)] = data.next_micro_batch(a)
        out.append(step)
    return out


def test_data_slots_make_the_batches_independent_of_the_world_size():
    one_process = _steps(world_size=1, accumulation=4, steps=6)
    two_ranks = _steps(world_size=2, accumulation=2, steps=6)
    four_ranks = _steps(world_size=4, accumulation=1, steps=6)
    assert one_process == two_ranks == four_ranks
    epochs = {example["epoch"] for step in one_process for batch in step.values() for example in batch}
    assert epochs == {0, 1, 2, 3}  # 18 examples per slot from shards of 5 or 6: several epochs


def test_data_position_resumes_exactly_even_on_another_world_size():
    data = RankData(_Numbers, 0, 1, 2, 3)
    for _ in range(4):
        data.next_micro_batch(0), data.next_micro_batch(1)
    state = data.state_dict()
    expected = [data.next_micro_batch(a) for a in (0, 1)]
    resumed = [RankData(_Numbers, rank, 2, 1, 3) for rank in (0, 1)]
    for rank_data in resumed:
        rank_data.load_state_dict(state)
    assert [rank_data.next_micro_batch(0) for rank_data in resumed] == expected
    with pytest.raises(ValueError, match="slot"):
        RankData(_Numbers, 0, 1, 3, 3).load_state_dict(state)


def test_an_empty_slot_is_reported():
    data = RankData(lambda shard, n: _Numbers(shard, n, size=1), rank=1, world_size=2, accumulation_steps=1, micro_batch_size=1)
    with pytest.raises(ValueError, match="data slot 1 of 2 has no examples"):
        data.next_micro_batch(0)


def _length(example: dict) -> int:
    return example["value"] % 5


def _grouped_steps(world_size: int, accumulation: int, steps: int, group: int, micro: int = 3) -> list[dict[int, list]]:
    ranks = [RankData(_Numbers, rank, world_size, accumulation, micro, _length, group) for rank in range(world_size)]
    return [{data.slot_of(a): data.next_micro_batch(a) for data in ranks for a in range(accumulation)} for _ in range(steps)]


def test_grouped_slots_serve_each_pool_once_sorted_by_length_in_one_order_for_every_slot():
    grouped = _grouped_steps(world_size=1, accumulation=2, steps=12, group=4)
    plain = _steps(world_size=1, accumulation=2, steps=12)
    assert grouped == _grouped_steps(world_size=2, accumulation=1, steps=12, group=4)  # still independent of the world
    for slot in (0, 1):
        for pool in range(3):  # 4 micro-batches of 3 = 12 examples read ahead, then cut by length
            served = [grouped[step][slot] for step in range(4 * pool, 4 * pool + 4)]
            read = [example for step in range(4 * pool, 4 * pool + 4) for example in plain[step][slot]]
            assert sorted(map(str, read)) == sorted(e for batch in served for e in map(str, batch))  # each once
            by_length = sorted(served, key=lambda batch: [_length(e) for e in batch])
            assert [_length(e) for batch in by_length for e in batch] == sorted(_length(e) for e in read)
    # both slots serve their pool's k-th shortest micro-batch at the same step
    rank_in_pool = [[sorted(range(4), key=lambda k: [_length(e) for e in grouped[4 * p + k][slot]]) for p in range(3)]
                    for slot in (0, 1)]
    assert rank_in_pool[0] == rank_in_pool[1] and len({str(order) for order in rank_in_pool[0]}) > 1


@pytest.mark.parametrize("stop_after", [4, 5, 6])  # mid-pool, at a pool's end, and the start of the next
def test_grouped_data_resumes_exactly_mid_pool(stop_after):
    data = RankData(_Numbers, 0, 1, 2, 3, _length, 4)
    for _ in range(stop_after):
        data.next_micro_batch(0), data.next_micro_batch(1)
    state = data.state_dict()
    expected = [[data.next_micro_batch(a) for a in (0, 1)] for _ in range(6)]
    resumed = RankData(_Numbers, 0, 1, 2, 3, _length, 4)
    resumed.load_state_dict(state)
    assert [[resumed.next_micro_batch(a) for a in (0, 1)] for _ in range(6)] == expected


def test_grouping_needs_a_family_that_knows_example_lengths():
    from videobert.models import get_family

    with pytest.raises(ValueError, match="'videoprism' cannot group examples by length"):
        get_family("videoprism").example_length({})
    with pytest.raises(ValueError, match="group_by_length must be >= 1"):
        load_train_config(None, ["data.group_by_length=0"])


@pytest.mark.parametrize("family", ["actbert", "videoprism"])
def test_packing_needs_a_family_whose_collator_packs(family, tmp_path):
    from videobert.train import pretrain

    config = load_train_config(None, [f"model.family={family}", "data.pack_sequences=true", f"out={tmp_path}"])
    with pytest.raises(ValueError, match=f"'{family}' cannot pack sequences"):
        pretrain(config)
    assert not any(tmp_path.iterdir())  # refused before anything was written
