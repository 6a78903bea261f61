"""The pretraining loop: one code path, through ``deepspeed.initialize``, for one plain process
and for many ranks.

Per optimizer step each rank runs its accumulation micro-batches (see ``data.py``): collate,
seed dropout from (seed, step, slot) so that it too is independent of the world size, forward,
check the loss is finite on every rank, backward, ``engine.step()``. Then metrics are averaged
over ranks and logged on rank 0, and at the configured intervals the model is evaluated on the
held-out split and checkpointed. SIGTERM or SIGINT (Ctrl-C) sets a flag the ranks agree on at the
next step boundary: they checkpoint and return with ``stopped="sigterm"`` (or ``"sigint"``).
"""

from __future__ import annotations

import dataclasses
import logging
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from videobert.train import checkpoint
from videobert.train.config import TrainConfig, deepspeed_config, uses_optimizer_offload
from videobert.train.data import RankData
from videobert.train.distributed import any_rank, barrier, init_distributed
from videobert.train.metrics import MetricSums, TrainLogger
from videobert.train.optim import build_optimizer, deepspeed_optimizer_section, parameter_groups, scheduler_factory
from videobert.train.fingerprint import check_run_directory, claim_run_directory, run_fingerprint
from videobert.utils.config import to_dict
from videobert.utils.io import write_json_atomic, write_text_atomic
from videobert.utils.seed import seed_everything

log = logging.getLogger(__name__)


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite (``on_nonfinite="raise"``, or too many skipped in a row)."""


@dataclass
class TrainResult:
    step: int                     # optimizer steps done (resumed ones included)
    stopped: str                  # "completed", "stop_at_step", "sigterm" or "sigint"
    loss: float                   # the last step's loss (nan if no step ran in this call)
    tokens_per_s: float           # mean training throughput of this call, all ranks together
    skipped_micro_batches: int    # non-finite micro-batches dropped (on_nonfinite="skip")
    out: str
    checkpoint: str               # the checkpoint folder written last ("" if none)
    model_dir: str                # the exported from_pretrained directory ("" if not exported)
    metrics: str                  # metrics.jsonl


class _StopFlag:
    """Remembers a SIGTERM or SIGINT (Ctrl-C) instead of dying, so the loop can checkpoint first."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self) -> None:
        self.received = ""  # "sigterm" / "sigint" once one arrived
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> "_StopFlag":
        if threading.current_thread() is threading.main_thread():  # Python delivers signals only there
            self._previous = {signum: signal.signal(signum, self._handle) for signum in self.SIGNALS}
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        name = signal.Signals(signum).name
        log.warning("%s received: checkpointing at the end of this step, then exiting", name)
        self.received = self.received or name.lower()

    def __exit__(self, *exc: Any) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


def evaluation_split(config: TrainConfig, family: Any) -> str:
    """The held-out split to evaluate on, or ``""`` (with a warning) when it cannot fill one
    evaluation batch per data slot: an empty or too small held-out split means a run without
    held-out evaluation, not a crash at the first evaluation."""
    split = config.data.eval_split
    if not split or not config.eval_every or not config.data.corpus:
        return ""
    try:
        examples = len(family.dataset_factory(config, split)(0, 1))
    except ValueError as exc:
        log.warning("held-out split %r cannot be evaluated (%s): training without held-out evaluation", split, exc)
        return ""
    if examples < config.data_slots:
        log.warning("held-out split %r has %d examples, fewer than the %d data slots of a batch: training without "
                    "held-out evaluation", split, examples, config.data_slots)
        return ""
    return split


def micro_batch_seed(seed: int, step: int, slot: int) -> int:
    """Dropout's seed for one micro-batch: a function of the data slot, not of the rank."""
    return int(np.random.SeedSequence([seed, step, slot]).generate_state(1, dtype=np.uint64)[0] >> 1)


def pretrain(config: TrainConfig, model: torch.nn.Module | None = None) -> TrainResult:
    """Train (or resume) the run described by ``config``; see the package docstring.

    The model family (``config.model.family``, ``videobert.models``) builds the model, the datasets
    and the collator; ``model`` replaces the one ``config.model`` describes (a model of that family).
    Every rank calls this; all return the same result.
    """
    from videobert.models import get_family

    family = get_family(config.model.family)
    if config.data.pack_sequences and not family.packs_sequences:
        raise ValueError(f"model family {family.name!r} cannot pack sequences (data.pack_sequences): its collator pads")
    # Sizes, initial files and run directory are checked against the data before DeepSpeed starts.
    model_config, init_file = (config.model, None) if model is not None else family.prepare(config)
    fingerprint = run_fingerprint(config, model_config, init_file) if config.data.corpus else None
    if fingerprint is not None:
        check_run_directory(config, fingerprint)
    import deepspeed
    from deepspeed.accelerator import get_accelerator

    rank, world_size = init_distributed()
    if fingerprint is not None:
        if rank == 0:
            claim_run_directory(config, fingerprint)
        barrier()
    seed_everything(config.seed)  # identical initial weights on every rank
    out = Path(config.out)
    checkpoint_dir = out / "checkpoints"
    model = model if model is not None else family.build_model(model_config, init_file, config.seed)
    on_gpu = get_accelerator().device_name() == "cuda"
    ds_config = deepspeed_config(config, world_size, on_gpu)
    accumulation = ds_config["gradient_accumulation_steps"]
    groups = parameter_groups(model, config.optimizer.weight_decay)
    optimizer = None
    if uses_optimizer_offload(ds_config):
        ds_config["optimizer"] = deepspeed_optimizer_section(config.optimizer)
    else:
        optimizer = build_optimizer(groups, config.optimizer)
    engine, *_ = deepspeed.initialize(model=model, model_parameters=groups, optimizer=optimizer,
                                      lr_scheduler=scheduler_factory(config.steps, config.schedule), config=ds_config)
    if rank == 0:
        import yaml

        write_text_atomic(out / "train_config.yaml", yaml.safe_dump(to_dict(config), sort_keys=False))
        write_json_atomic(out / "deepspeed_config.json", ds_config)
        checkpoint.write_model_config(checkpoint_dir, model.config.to_dict())

    make_dataset = family.dataset_factory(config, config.data.split)
    data = RankData(make_dataset, rank, world_size, accumulation, config.micro_batch_size, family.example_length,
                    config.data.group_by_length)
    start_step = 0
    if config.resume:
        state = checkpoint.load(engine, checkpoint_dir, rank)
        if state is not None:
            start_step = int(state["step"])
            data.load_state_dict(state["data"])
            if rank == 0:
                log.info("resumed from %s at step %d", checkpoint_dir, start_step)
    collator = family.collator(config, model)
    logger = TrainLogger(out, config.steps, start_step, config.progress, config.tensorboard) if rank == 0 else None
    trainer = _Trainer(config, family, engine, data, collator, logger, world_size)
    last_step = min(config.steps, config.stop_at_step or config.steps)
    try:
        # the flag stays up through the last checkpoint: a second signal (Ctrl-C twice, a scheduler
        # resending SIGTERM) must not abort the save, nor leave the other ranks waiting in its collectives
        with _StopFlag() as stop:
            stopped, step, loss = trainer.run(start_step, last_step, stop)
            if step > start_step or not (checkpoint_dir / "latest").exists():
                tag = checkpoint.save(engine, checkpoint_dir, step, data.state_dict(), config.keep_checkpoints)
            else:
                tag = (checkpoint_dir / "latest").read_text().strip()
    finally:
        if logger is not None:
            logger.close()

    model_dir = ""
    if config.export and stopped == "completed":
        model_dir = str(out / "model")
        if rank == 0:
            checkpoint.export_checkpoint(checkpoint_dir, model_dir, tag)
        barrier()
    result = TrainResult(step=step, stopped=stopped, loss=loss, tokens_per_s=trainer.mean_tokens_per_s(),
                         skipped_micro_batches=trainer.skipped, out=str(out), checkpoint=str(checkpoint_dir / tag),
                         model_dir=model_dir, metrics=str(out / "metrics.jsonl"))
    if rank == 0:
        write_json_atomic(out / "result.json", dataclasses.asdict(result))
    return result


class _Trainer:
    """The step loop of ``pretrain`` with its state: what one rank does each step."""

    def __init__(self, config: TrainConfig, family: Any, engine: Any, data: RankData, collator: Any, logger: TrainLogger | None,
                 world_size: int):
        self.config, self.family, self.engine, self.data, self.collator = config, family, engine, data, collator
        self.logger = logger
        self.world_size = world_size
        self.accumulation = engine.gradient_accumulation_steps()
        self.skipped = 0
        self._tokens, self._seconds = 0.0, 0.0
        split = evaluation_split(config, family)  # "" (after a warning) when the held-out split is empty
        self._eval_factory = family.dataset_factory(config, split) if split else None

    def mean_tokens_per_s(self) -> float:
        return self._tokens / self._seconds if self._seconds else 0.0

    def run(self, start_step: int, last_step: int, stop: _StopFlag) -> tuple[str, int, float]:
        step, loss = start_step, float("nan")
        while step < last_step:
            lr = self.engine.get_lr()[0]
            started = time.perf_counter()
            metrics = self.train_step(step)
            seconds = time.perf_counter() - started
            step += 1
            loss = metrics["loss"]
            self._tokens += metrics["tokens"]
            self._seconds += seconds
            if self.logger is not None:
                tokens_per_s = metrics["tokens"] / seconds
                self.logger.progress(step, loss, tokens_per_s)
                if step % self.config.log_every == 0 or step == last_step:
                    self.logger.log(step, {**metrics, "lr": lr, "tokens_per_s": tokens_per_s,
                                           "examples_per_s": metrics["examples"] / seconds, "seconds": seconds})
            if self._eval_factory is not None and step % self.config.eval_every == 0:
                self.evaluate(step)
            if any_rank(bool(stop.received)):  # every rank stops, with the same reason: Ctrl-C if any saw one
                return ("sigint" if any_rank(stop.received == "sigint") else "sigterm"), step, loss
            if step % self.config.save_every == 0 and step < last_step:
                checkpoint.save(self.engine, Path(self.config.out) / "checkpoints", step, self.data.state_dict(), self.config.keep_checkpoints)
        return ("completed" if last_step == self.config.steps else "stop_at_step"), step, loss

    def _batch(self, examples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        return {key: value.to(self.engine.device) for key, value in self.collator(examples).items()}

    def train_step(self, step: int) -> dict[str, float]:
        """One optimizer step (``accumulation`` micro-batches); metrics averaged over all ranks."""
        self.engine.train()
        sums = MetricSums(self.family.metric_keys)
        index, skipped_in_a_row = 0, 0
        while index < self.accumulation:
            examples = self.data.next_micro_batch(index)
            batch = self._batch(examples)
            torch.manual_seed(micro_batch_seed(self.config.seed, step, self.data.slot_of(index)))
            outputs = self.engine(**batch)
            loss = outputs["loss"]
            if any_rank(not bool(torch.isfinite(loss))):
                skipped_in_a_row += 1
                self._on_nonfinite(step, index, float(loss.detach()), skipped_in_a_row)
                continue  # the same accumulation index takes the slot's next micro-batch
            self.engine.backward(loss)
            self.engine.step()
            sums.add(outputs, tokens=int(batch["attention_mask"].sum()), examples=len(examples))
            index, skipped_in_a_row = index + 1, 0
        return sums.reduce()

    def _on_nonfinite(self, step: int, index: int, loss: float, in_a_row: int) -> None:
        where = f"step {step + 1} (micro-batch {index + 1} of {self.accumulation}; this rank's loss {loss})"
        if self.config.on_nonfinite == "raise":
            raise NonFiniteLossError(f"non-finite loss at {where}; lower the learning rate, check the data, "
                                     f"or set on_nonfinite=skip to drop such micro-batches")
        self.skipped += 1
        if in_a_row > self.config.max_skipped_in_a_row:
            raise NonFiniteLossError(f"non-finite loss at {where}: {in_a_row} micro-batches in a row, the model "
                                     f"has diverged (more than max_skipped_in_a_row={self.config.max_skipped_in_a_row})")
        log.warning("non-finite loss at %s: micro-batch skipped", where)

    @torch.no_grad()
    def evaluate(self, step: int) -> dict[str, float]:
        """Loss and accuracies on the same held-out examples every time: ``eval_batches`` micro-batches
        from each data slot's shard of the held-out split, so the same set on any number of ranks."""
        data = RankData(self._eval_factory, self.engine.global_rank, self.world_size, self.accumulation, self.config.micro_batch_size)
        self.engine.eval()
        sums = MetricSums(self.family.metric_keys)
        for _ in range(self.config.eval_batches):
            for index in range(self.accumulation):
                examples = data.next_micro_batch(index)
                batch = self._batch(examples)
                sums.add(self.engine(**batch), tokens=int(batch["attention_mask"].sum()), examples=len(examples))
        self.engine.train()
        metrics = sums.reduce()
        if self.logger is not None:
            self.logger.log(step, metrics, kind="eval")
        return metrics
