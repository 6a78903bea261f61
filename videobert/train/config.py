"""What a pretraining run is: the ``TrainConfig`` dataclass, and the DeepSpeed config built from it.

A run's config file (YAML or JSON, see ``configs/``) fills ``TrainConfig``; ``key=value`` overrides
reach nested fields (``optimizer.lr=1e-4``). The DeepSpeed side (ZeRO stage, offload) comes from a
named DeepSpeed JSON file shipped in ``configs/`` (``zero1``, ``zero2``, ``zero3``,
``zero3_offload``) or from a path; batch sizes, clipping and precision are always filled in from
``TrainConfig`` so the two can never disagree.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from videobert.utils.config import load_config, read_mapping

CONFIG_DIR = Path(__file__).parent / "configs"
DEEPSPEED_PRESETS = ("zero0", "zero1", "zero2", "zero3", "zero3_offload")


@dataclass
class DataConfig:
    corpus: str = ""                 # corpus directory written by `videobert corpus build`
    split: str = "train"
    eval_split: str = "heldout"      # held-out split for periodic evaluation ("" disables it)
    stream_weights: list[float] = field(default_factory=lambda: [1.0, 1.0, 1.0])  # text, video, video-text
    negative_rate: float = 0.5       # share of video-text examples whose video is not the text's
    max_length: int = 512            # tokens per sequence, [CLS] and [SEP] included
    mask_prob: float = 0.15
    # the paper's augmentation (videobert.corpus.examples): adjacent sentences joined, words thinned
    concat_prob: float = 0.5         # chance that a sentence is joined with the next ones of its video
    max_concat: int = 3              # at most this many sentences joined
    max_stride: int = 5              # visual words sub-sampled with a random stride of 1 .. max_stride
    # Each data slot reads this many micro-batches ahead, sorts them by length and serves them as
    # micro-batches of similar length (in a random order, the same on every slot), so less of a batch
    # is padding; 1 = stream order. The model family says how long an example is (Family.example_length).
    group_by_length: int = 1
    # Lay each micro-batch's examples end to end in fewer rows, each attending to itself only
    # (videobert.corpus.packing): the same losses on fewer positions. Families with
    # Family.packs_sequences (VideoBERT) only.
    pack_sequences: bool = False
    # the model family's own data settings (e.g. ActBERT's feature and region stores); see its family.py
    family: dict[str, Any] = field(default_factory=dict)


@dataclass
class ModelConfig:
    family: str = "videobert"        # the model family (videobert.models.FAMILIES): its model, data and objectives
    preset: str = "tiny"             # the family config's preset: VideoBertConfig.tiny() / .base() / .large()
    init_from: str = ""              # "" (random), a from_pretrained directory, or "bert:DIR" (from_bert)
    # fields of the family's config, e.g. VideoBertConfig's {loss_weights: ...}; VideoBERT's text_vocab_size /
    # num_visual_words default to the corpus's
    overrides: dict[str, Any] = field(default_factory=dict)
    # where the visual-word embeddings start: "corpus" (the leaf centroids of the tree corpus.json records;
    # new and BERT-initialised models only), "none" (random), or a tree file (videobert.models.videobert.from_corpus)
    init_visual_from: str = "corpus"


@dataclass
class OptimizerConfig:
    name: str = "adamw"              # "adamw" (decoupled weight decay, as BERT) or "adam" (L2)
    lr: float = 1e-4
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1e-8
    weight_decay: float = 0.01       # not applied to biases and norms (1-D parameters)


@dataclass
class ScheduleConfig:
    warmup_steps: int = 0            # linear warm-up from 0 to optimizer.lr
    decay: str = "linear"            # "linear" (to min_lr_ratio * lr at the last step) or "constant"
    min_lr_ratio: float = 0.0


@dataclass
class TrainConfig:
    """One pretraining run. Sizes count examples (sequences); steps count optimizer updates."""

    out: str = "runs/pretrain"       # checkpoints/, metrics.jsonl, tensorboard/, model/ go here
    seed: int = 0
    steps: int = 500_000             # total optimizer steps: the schedule spans them
    batch_size: int = 128            # examples per optimizer step, all ranks together
    micro_batch_size: int = 8        # examples per forward pass on one rank
    grad_clip: float = 1.0           # max global gradient norm (0 disables clipping)
    deepspeed: str = "zero2"         # a preset name from configs/ or a path to a DeepSpeed JSON file
    precision: str = "auto"          # "auto" (bf16 on GPU, fp32 on CPU), "bf16", "fp16" or "fp32"
    on_nonfinite: str = "raise"      # "raise": stop naming the step; "skip": drop that micro-batch
    max_skipped_in_a_row: int = 8    # with "skip": this many non-finite micro-batches in a row stop the run
    log_every: int = 1               # steps between TensorBoard / metrics.jsonl records
    eval_every: int = 1000           # steps between held-out evaluations (0 disables)
    eval_batches: int = 4            # evaluation set: eval_batches x batch_size held-out examples
    save_every: int = 1000           # steps between checkpoints (a final one is always written)
    keep_checkpoints: int = 2        # newest checkpoints kept on disk
    resume: bool = True              # continue from out/checkpoints if one is there
    overwrite: bool = False          # delete a run in `out` made with other settings and start over
    stop_at_step: int = 0            # end this run early after this step, checkpointed (0: run to `steps`)
    export: bool = True              # write out/model (from_pretrained directory) at the end
    progress: bool = True            # tqdm bar on rank 0
    tensorboard: bool = True
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)

    def __post_init__(self) -> None:
        checks = [
            (self.steps > 0, f"steps must be positive, got {self.steps}"),
            (self.micro_batch_size > 0, f"micro_batch_size must be positive, got {self.micro_batch_size}"),
            (self.log_every > 0 and self.save_every > 0 and self.eval_every >= 0 and self.keep_checkpoints > 0,
             "log_every, save_every and keep_checkpoints must be positive, eval_every >= 0 (0 disables)"),
            (self.batch_size % self.micro_batch_size == 0,
             f"batch_size {self.batch_size} is not a multiple of micro_batch_size {self.micro_batch_size}"),
            (self.precision in ("auto", "bf16", "fp16", "fp32"), f"precision must be auto/bf16/fp16/fp32, got {self.precision!r}"),
            (self.on_nonfinite in ("raise", "skip"), f"on_nonfinite must be 'raise' or 'skip', got {self.on_nonfinite!r}"),
            (self.optimizer.name in ("adam", "adamw"), f"optimizer.name must be 'adam' or 'adamw', got {self.optimizer.name!r}"),
            (self.schedule.decay in ("linear", "constant"), f"schedule.decay must be 'linear' or 'constant', got {self.schedule.decay!r}"),
            (self.data.group_by_length >= 1, f"data.group_by_length must be >= 1 (1 = off), got {self.data.group_by_length}"),
            (len(self.data.stream_weights) == 3, f"data.stream_weights needs 3 weights (text, video, video-text), got {self.data.stream_weights}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"TrainConfig: {message}")

    @property
    def data_slots(self) -> int:
        """Micro-batches per optimizer step, all ranks together (= world size x accumulation steps)."""
        return self.batch_size // self.micro_batch_size

    def accumulation_steps(self, world_size: int) -> int:
        if self.data_slots % world_size:
            raise ValueError(
                f"batch_size {self.batch_size} = {self.data_slots} micro-batches of {self.micro_batch_size} "
                f"cannot be shared evenly by {world_size} ranks")
        return self.data_slots // world_size


def load_train_config(path: str | os.PathLike | None = None, overrides: list[str] | tuple[str, ...] = ()) -> TrainConfig:
    """A ``TrainConfig`` from a YAML/JSON file (a name like ``paper`` means ``configs/paper.yaml``)."""
    if path is not None and not Path(path).exists() and (CONFIG_DIR / f"{path}.yaml").exists():
        path = CONFIG_DIR / f"{path}.yaml"
    return load_config(TrainConfig, path, overrides)


def resolve_precision(precision: str, on_gpu: bool) -> str:
    if precision == "auto":
        return "bf16" if on_gpu else "fp32"
    if precision != "fp32" and not on_gpu:
        raise ValueError(f"precision {precision!r} needs a GPU; use 'fp32' (or 'auto') on CPU")
    return precision


def deepspeed_config(config: TrainConfig, world_size: int, on_gpu: bool) -> dict[str, Any]:
    """The DeepSpeed config dict for ``config`` on ``world_size`` ranks."""
    source = CONFIG_DIR / f"{config.deepspeed}.json" if config.deepspeed in DEEPSPEED_PRESETS else Path(config.deepspeed)
    if not source.exists():
        raise FileNotFoundError(f"DeepSpeed config {config.deepspeed!r}: no preset of that name {DEEPSPEED_PRESETS} and no file {source}")
    ds = read_mapping(source)
    precision = resolve_precision(config.precision, on_gpu)
    ds.update({
        "train_batch_size": config.batch_size,
        "train_micro_batch_size_per_gpu": config.micro_batch_size,
        "gradient_accumulation_steps": config.accumulation_steps(world_size),
        "gradient_clipping": config.grad_clip,
        "bf16": {"enabled": precision == "bf16"},
        "fp16": {"enabled": precision == "fp16", "initial_scale_power": 16},
        "steps_per_print": 10**9,            # our own logger reports; DeepSpeed's would repeat it
        "wall_clock_breakdown": False,
        "zero_allow_untested_optimizer": True,
    })
    return ds


def uses_optimizer_offload(ds_config: dict[str, Any]) -> bool:
    offload = ds_config.get("zero_optimization", {}).get("offload_optimizer", {})
    return offload.get("device", "none") not in ("none", None)
