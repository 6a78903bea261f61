"""Model directories: videobert's own (``config.json`` + ``model.safetensors``) and Hugging Face BERT's."""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path
from typing import Any, TypeVar

import torch
from safetensors.torch import load_file, save_file

from videobert.models.videobert.config import MODEL_TYPE, VideoBertConfig
from videobert.utils.io import atomic_path, write_text_atomic

log = logging.getLogger(__name__)
M = TypeVar("M", bound=torch.nn.Module)

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
BERT_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")

# Hugging Face BERT parameter names (after dropping a leading "bert.") -> ours. The word-embedding
# table and NSP classifier are converted separately (different shapes).
_BERT_RENAMES = [
    (r"^embeddings\.LayerNorm\.", "embeddings.norm."),
    (r"^encoder\.layer\.(\d+)\.attention\.self\.(query|key|value)\.", r"encoder.layers.\1.attention.\2."),
    (r"^encoder\.layer\.(\d+)\.attention\.output\.dense\.", r"encoder.layers.\1.attention.output."),
    (r"^encoder\.layer\.(\d+)\.attention\.output\.LayerNorm\.", r"encoder.layers.\1.attention_norm."),
    (r"^encoder\.layer\.(\d+)\.intermediate\.dense\.", r"encoder.layers.\1.intermediate."),
    (r"^encoder\.layer\.(\d+)\.output\.dense\.", r"encoder.layers.\1.output."),
    (r"^encoder\.layer\.(\d+)\.output\.LayerNorm\.", r"encoder.layers.\1.output_norm."),
    (r"^pooler\.dense\.", "alignment_head.pooler."),
    (r"^cls\.predictions\.transform\.dense\.", "mlm_head.transform.dense."),
    (r"^cls\.predictions\.transform\.LayerNorm\.", "mlm_head.transform.norm."),
    (r"^cls\.predictions\.bias$", "mlm_head.bias"),
]
# Fields copied from a BERT config.json (same names in VideoBertConfig, except vocab_size).
_BERT_CONFIG_FIELDS = ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "hidden_act",
                       "hidden_dropout_prob", "attention_probs_dropout_prob", "max_position_embeddings",
                       "type_vocab_size", "layer_norm_eps", "initializer_range", "pad_token_id")


def read_config_json(directory: Path) -> dict[str, Any]:
    path = directory / CONFIG_FILE
    if not directory.is_dir():
        raise FileNotFoundError(f"{directory}: not a directory (expected a videobert or BERT model directory)")
    if not path.is_file():
        raise FileNotFoundError(f"{directory}: no {CONFIG_FILE}; not a videobert or BERT model directory")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: invalid JSON at line {exc.lineno}: {exc.msg}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object")
    return data


def save_pretrained(model: torch.nn.Module, directory: str | os.PathLike) -> None:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    # Tied decoders share storage with the embeddings: they are not parameters of their own, so
    # the state dict has no duplicates; contiguous copies keep safetensors happy with views.
    tensors = {name: tensor.detach().contiguous().cpu() for name, tensor in model.state_dict().items()}
    with atomic_path(directory / WEIGHTS_FILE) as tmp:
        save_file(tensors, str(tmp), metadata={"format": "pt", "model_type": model.config.model_type})
    write_text_atomic(directory / CONFIG_FILE, model.config.to_json())


def load_pretrained(cls: type[M], directory: str | os.PathLike, **overrides: Any) -> M:
    directory = Path(directory)
    data = read_config_json(directory)
    model_type = data.get("model_type")
    if model_type == "bert":
        return load_bert(cls, directory, **overrides)
    if model_type != MODEL_TYPE:
        raise ValueError(f"{directory / CONFIG_FILE}: model_type {model_type!r} is neither {MODEL_TYPE!r} nor 'bert'")
    weights = directory / WEIGHTS_FILE
    if not weights.is_file():
        raise FileNotFoundError(f"{directory}: {CONFIG_FILE} says videobert but {WEIGHTS_FILE} is missing")
    config = VideoBertConfig.from_dict({**data, **overrides})
    model = cls(config)
    model.load_state_dict(load_file(str(weights)), strict=True)
    return model


def _bert_config(data: dict[str, Any], path: Path, overrides: dict[str, Any]) -> VideoBertConfig:
    if data.get("position_embedding_type", "absolute") != "absolute":
        raise ValueError(f"{path}: position_embedding_type {data['position_embedding_type']!r} is not supported (only 'absolute')")
    fields = {name: data[name] for name in _BERT_CONFIG_FIELDS if name in data}
    fields["text_vocab_size"] = data["vocab_size"]
    clashes = {k: (fields[k], v) for k, v in overrides.items() if k in fields and fields[k] != v and k not in ("hidden_dropout_prob", "attention_probs_dropout_prob")}
    if clashes:
        raise ValueError(f"{path}: overrides {clashes} (checkpoint, requested) change the pretrained architecture")
    try:
        return VideoBertConfig(**{**fields, **overrides})
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from exc


def _read_bert_weights(directory: Path) -> dict[str, torch.Tensor]:
    for name in BERT_WEIGHT_FILES:
        path = directory / name
        if path.is_file():
            state = load_file(str(path)) if name.endswith(".safetensors") else torch.load(path, map_location="cpu", weights_only=True)
            break
    else:
        raise FileNotFoundError(f"{directory}: a BERT directory needs one of {BERT_WEIGHT_FILES}")
    renamed = {}
    for key, tensor in state.items():
        key = key.removeprefix("bert.").replace("LayerNorm.gamma", "LayerNorm.weight").replace("LayerNorm.beta", "LayerNorm.bias")
        renamed[key] = tensor
    return renamed


def load_bert(cls: type[M], directory: str | os.PathLike, **overrides: Any) -> M:
    directory = Path(directory)
    data = read_config_json(directory)
    if data.get("model_type") != "bert":
        raise ValueError(f"{directory / CONFIG_FILE}: model_type {data.get('model_type')!r} is not 'bert'")
    config = _bert_config(data, directory / CONFIG_FILE, overrides)
    model = cls(config)
    ours = model.state_dict()
    loaded: dict[str, torch.Tensor] = {}
    for key, tensor in _read_bert_weights(directory).items():
        if key == "embeddings.word_embeddings.weight":
            table = ours["embeddings.text_embeddings.weight"].clone()
            table[: tensor.shape[0]] = tensor  # the last row, [>], keeps its fresh initialisation
            loaded["embeddings.text_embeddings.weight"] = table
        elif key in ("embeddings.position_embeddings.weight", "embeddings.token_type_embeddings.weight"):
            loaded[key] = tensor
        elif key.startswith("cls.seq_relationship."):
            # NSP's two logits (0 = is next) -> one alignment logit: their difference is the log-odds.
            loaded[key.replace("cls.seq_relationship", "alignment_head.classifier")] = (tensor[0] - tensor[1]).unsqueeze(0)
        else:
            for pattern, replacement in _BERT_RENAMES:
                if re.match(pattern, key):
                    loaded[re.sub(pattern, replacement, key)] = tensor
                    break
    for key, tensor in loaded.items():
        if key not in ours or ours[key].shape != tensor.shape:
            raise ValueError(f"{directory}: checkpoint tensor for {key} has shape {tuple(tensor.shape)}, "
                             f"model expects {tuple(ours[key].shape) if key in ours else 'no such tensor'}")
    missing = model.load_state_dict(loaded, strict=False).missing_keys
    log.info("from_bert %s: %d tensors loaded; freshly initialised: %s", directory, len(loaded), ", ".join(sorted(missing)))
    return model
