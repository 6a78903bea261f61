"""Checkpoints through DeepSpeed, with what DeepSpeed does not know: the step, every data slot's
position and every rank's RNG states; and export of a checkpoint to a ``from_pretrained`` directory.

Layout under ``<out>/checkpoints``: one folder per tag (``step_00001000``) written by
``engine.save_checkpoint`` plus DeepSpeed's ``latest`` file, which names the newest complete one
(it is written last, so a run killed while saving resumes from the previous checkpoint).
``model_config.json`` beside them lets ``export_checkpoint`` rebuild the model offline.
"""

from __future__ import annotations

import json
import random
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from videobert.train.distributed import barrier, gather_to_all
from videobert.utils.io import write_json_atomic

MODEL_CONFIG_FILE = "model_config.json"
_TAG = re.compile(r"^step_(\d+)$")


def tag_for(step: int) -> str:
    return f"step_{step:08d}"


def rng_states() -> dict[str, Any]:
    states = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict[str, Any]) -> None:
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def save(engine: Any, checkpoint_dir: Path, step: int, data_state: dict[int, dict[str, int]], keep: int) -> str:
    """Collective: every rank calls it. Returns the tag written."""
    per_rank = gather_to_all({"data": data_state, "rng": rng_states()})
    client_state = {
        "step": step,
        "data": {slot: pos for state in per_rank for slot, pos in state["data"].items()},
        "rng": [state["rng"] for state in per_rank],
    }
    tag = tag_for(step)
    engine.save_checkpoint(str(checkpoint_dir), tag=tag, client_state=client_state)
    barrier()
    if engine.global_rank == 0:
        prune(checkpoint_dir, keep)
    return tag


def load(engine: Any, checkpoint_dir: Path, rank: int) -> dict[str, Any] | None:
    """Restore the newest checkpoint (if any) into ``engine`` and this rank's RNGs; returns its
    client state (``step``, ``data``) or None when there is nothing to resume."""
    if not (checkpoint_dir / "latest").exists():
        return None
    path, client_state = engine.load_checkpoint(str(checkpoint_dir), load_optimizer_states=True, load_lr_scheduler_states=True)
    if path is None:
        raise RuntimeError(f"{checkpoint_dir}: 'latest' names a checkpoint DeepSpeed could not load")
    rng = client_state["rng"]
    if rank < len(rng):  # a run resumed on more ranks leaves the new ranks' generators as seeded
        set_rng_states(rng[rank])
    return client_state


def prune(checkpoint_dir: Path, keep: int) -> None:
    """Delete all but the newest ``keep`` checkpoints (never the one ``latest`` names)."""
    latest = (checkpoint_dir / "latest").read_text().strip() if (checkpoint_dir / "latest").exists() else None
    tags = sorted((p for p in checkpoint_dir.iterdir() if p.is_dir() and _TAG.match(p.name)), key=lambda p: p.name)
    for old in tags[:-max(1, keep)]:
        if old.name != latest:
            shutil.rmtree(old, ignore_errors=True)


def write_model_config(checkpoint_dir: Path, model_config: dict[str, Any]) -> None:
    write_json_atomic(checkpoint_dir / MODEL_CONFIG_FILE, model_config)


def consolidated_state_dict(checkpoint_dir: str | Path, tag: str | None = None) -> dict[str, torch.Tensor]:
    """The full fp32 model weights of a checkpoint of any ZeRO stage (0-3), on the CPU, offline."""
    checkpoint_dir = Path(checkpoint_dir)
    tag = tag or (checkpoint_dir / "latest").read_text().strip()
    folder = checkpoint_dir / tag
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such checkpoint")
    if any(folder.glob("*optim_states.pt")):
        from deepspeed.utils.zero_to_fp32 import get_fp32_state_dict_from_zero_checkpoint

        return dict(get_fp32_state_dict_from_zero_checkpoint(str(checkpoint_dir), tag=tag))
    # ZeRO stage 0: the module states file holds the full model.
    states = torch.load(folder / "mp_rank_00_model_states.pt", map_location="cpu", weights_only=False)
    return {k: v.float() for k, v in states["module"].items()}


def export_checkpoint(checkpoint_dir: str | Path, out_dir: str | Path, tag: str | None = None) -> Path:
    """Write checkpoint ``tag`` (default: the newest) as a ``from_pretrained`` directory of the
    model's family (``model_type`` in ``model_config.json``)."""
    from videobert.models import get_family

    checkpoint_dir = Path(checkpoint_dir)
    config_path = checkpoint_dir / MODEL_CONFIG_FILE
    if not config_path.exists():
        raise FileNotFoundError(f"{config_path}: missing; is {checkpoint_dir} a `videobert pretrain` checkpoint folder?")
    data = json.loads(config_path.read_text())
    family = get_family(data.get("model_type", "videobert"))
    model = family.model_from_config(family.config_from_dict(data))
    state = consolidated_state_dict(checkpoint_dir, tag)
    missing, unexpected = model.load_state_dict(state, strict=False)
    # Tied weights are stored once; anything else missing means the checkpoint is not this model's.
    tied = {name for name in missing if _is_tied(model, name)}
    if set(missing) - tied or unexpected:
        raise ValueError(f"{checkpoint_dir}: checkpoint does not match the model: missing {sorted(set(missing) - tied)}, unexpected {sorted(unexpected)}")
    out_dir = Path(out_dir)
    model.save_pretrained(out_dir)
    return out_dir


def _is_tied(model: torch.nn.Module, name: str) -> bool:
    """Whether parameter ``name`` shares its storage with another parameter of ``model``."""
    params = dict(model.named_parameters(remove_duplicate=False))
    target = params.get(name)
    return target is not None and any(p is target and n != name for n, p in params.items())
