"""A pretraining run directory's fingerprint (``videobert.utils.fingerprint``): a run resumes only
from checkpoints made with the same data, model and optimisation.

What counts: the corpus (its own fingerprint and split sizes), the resolved model config, the
digests of the initial weights and of the family's other initial file (VideoBERT: the tree the visual words start from), seed, steps, batch
sizes, DeepSpeed config, precision, data, optimizer and schedule settings. What does not: where
outputs go and how often (logging, evaluation, checkpoint intervals), ``stop_at_step``, progress.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from videobert.train.config import ModelConfig, TrainConfig
from videobert.utils.config import to_dict
from videobert.utils.fingerprint import FINGERPRINT_FILE, check_fingerprint, claim_output, clear_directory, digest_of, file_digest, read_fingerprint

# Settings that change when and where results are written, not what is trained.
_NOT_FINGERPRINTED = ("out", "resume", "overwrite", "stop_at_step", "export", "progress", "tensorboard", "log_every",
                      "eval_every", "eval_batches", "save_every", "keep_checkpoints", "max_skipped_in_a_row")
# Files the deepspeed launcher (videobert.train.launcher) writes into the run directory before the ranks start.
_LAUNCHER_FILES = ("launch_config.json", "launch.log")


def _weights_digest(init_from: str) -> str | None:
    """Digest of the weights file a model starts from (``None`` for a new model)."""
    if not init_from:
        return None
    directory = Path(init_from.removeprefix("bert:"))
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (directory / name).is_file():
            return file_digest(directory / name)
    return None


def run_fingerprint(config: TrainConfig, model: ModelConfig, init_file: Path | None) -> dict[str, Any]:
    """The fingerprint of ``config`` with its model resolved by its family (``Family.prepare``) to
    ``model`` and ``init_file`` (VideoBERT: the visual-word tree)."""
    from videobert.corpus.store import read_corpus_info

    settings = to_dict(config)
    for key in _NOT_FINGERPRINTED:
        settings.pop(key)
    settings["data"].pop("corpus")
    settings["data"].pop("eval_split")
    if config.data.group_by_length == 1:  # stream order, as before the setting existed: older runs still resume
        settings["data"].pop("group_by_length")
    if not config.data.pack_sequences:  # padded rows, as before the setting existed
        settings["data"].pop("pack_sequences")
    settings["model"] = to_dict(model)
    corpus = Path(config.data.corpus)
    info = read_corpus_info(corpus)
    settings["corpus"] = {"fingerprint": digest_of(read_fingerprint(corpus / FINGERPRINT_FILE)), "splits": info["splits"]}
    settings["initial_weights"] = _weights_digest(model.init_from)
    settings["initial_file"] = file_digest(init_file) if init_file is not None else None
    return {"stage": "pretrain", **settings}


def check_run_directory(config: TrainConfig, fingerprint: dict[str, Any]) -> None:
    """Read-only, on every rank before DeepSpeed starts: refuse a run directory made another way."""
    if config.resume and not config.overwrite:
        check_fingerprint(Path(config.out) / FINGERPRINT_FILE, "pretrain", fingerprint, "overwrite=true (--overwrite)")


def claim_run_directory(config: TrainConfig, fingerprint: dict[str, Any]) -> None:
    """On rank 0: with ``overwrite``, delete the old run (the launcher's files stay); record ``fingerprint``.
    A run with ``resume=false`` starts over by definition and records its own."""
    out = Path(config.out)
    keep = {out / FINGERPRINT_FILE, *(out / name for name in _LAUNCHER_FILES)}

    claim_output(out / FINGERPRINT_FILE, "pretrain", fingerprint, overwrite=config.overwrite or not config.resume,
                 clear=(lambda: clear_directory(out, keep)) if config.overwrite else (lambda: None),
                 restart_hint="overwrite=true (--overwrite)")
