"""VideoPrism model directories (``config.json`` + ``model.safetensors``, each file written
atomically: a reader never sees a half-written file, though it may see new weights beside the old
config until the second rename) and the text tower's start from a Hugging Face BERT directory."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors.torch import load_file, save_file

from videobert.models.videobert.io import CONFIG_FILE, WEIGHTS_FILE, read_config_json
from videobert.models.videoprism.config import MODEL_TYPE, TEXT_DROPOUTS, VideoPrismConfig
from videobert.models.videoprism.text import bert_text_config, text_tower_weights
from videobert.utils.io import atomic_path, write_text_atomic

if TYPE_CHECKING:
    from videobert.models.videoprism.model import VideoPrismForPretraining


def save_pretrained(model: torch.nn.Module, directory: str | os.PathLike) -> None:
    """``model.state_dict()`` (a stage-2 model's teacher is no part of it) and its config."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {name: tensor.detach().contiguous().cpu() for name, tensor in model.state_dict().items()}
    with atomic_path(directory / WEIGHTS_FILE) as tmp:
        save_file(tensors, str(tmp), metadata={"format": "pt", "model_type": MODEL_TYPE})
    write_text_atomic(directory / CONFIG_FILE, model.config.to_json())


def load_pretrained(cls: type["VideoPrismForPretraining"], directory: str | os.PathLike,
                    **overrides: Any) -> "VideoPrismForPretraining":
    directory = Path(directory)
    data = read_config_json(directory)
    if data.get("model_type") != MODEL_TYPE:
        raise ValueError(f"{directory / CONFIG_FILE}: model_type {data.get('model_type')!r} is not {MODEL_TYPE!r}")
    weights = directory / WEIGHTS_FILE
    if not weights.is_file():
        raise FileNotFoundError(f"{directory}: {CONFIG_FILE} says {MODEL_TYPE} but {WEIGHTS_FILE} is missing")
    try:
        config = VideoPrismConfig.from_dict({**data, **overrides})
    except ValueError as exc:
        raise ValueError(f"{directory / CONFIG_FILE}: {exc}") from exc
    model = cls(config)
    model.load_state_dict(load_file(str(weights)), strict=True)
    return model


def load_bert_text(cls: type["VideoPrismForPretraining"], directory: str | os.PathLike,
                   config: VideoPrismConfig | None = None) -> "VideoPrismForPretraining":
    """A stage-1 model with ``config``'s video side (default ``VideoPrismConfig.tiny()``) and the
    text tower of the BERT in ``directory`` (its sizes replace ``config.text``; dropouts kept)."""
    config = config or VideoPrismConfig.tiny()
    if config.stage != 1:
        raise ValueError("from_bert builds a stage-1 model (stage 2 starts from a trained stage-1 model)")
    text = bert_text_config(directory, **{name: getattr(config.text, name) for name in TEXT_DROPOUTS})
    model = cls(config.replace(text=text))
    model.text.load_state_dict(text_tower_weights(directory, model.text), strict=False)
    return model
