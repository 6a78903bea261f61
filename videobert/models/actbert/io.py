"""ActBERT model directories (``config.json`` + ``model.safetensors``, written by VideoBERT's
``save_pretrained``) and its text stream from BERT.

BERT's parameter names go through VideoBERT's renaming (``videobert.models.videobert.io``), then
onto ActBERT's text stream: BERT layer ``i`` is text layer ``i`` while ``i < num_text_layers``,
and the text part of tangled layer ``i - num_text_layers`` after that."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any, TypeVar

import torch
from safetensors.torch import load_file

from videobert.models.actbert.config import MODEL_TYPE, ActBertConfig
from videobert.models.videobert.io import (_BERT_CONFIG_FIELDS, _BERT_RENAMES, CONFIG_FILE, WEIGHTS_FILE,
                                           _read_bert_weights, read_config_json)

log = logging.getLogger(__name__)
M = TypeVar("M", bound=torch.nn.Module)


def load_pretrained(cls: type[M], directory: str | os.PathLike, **overrides: Any) -> M:
    directory = Path(directory)
    data = read_config_json(directory)
    if data.get("model_type") != MODEL_TYPE:
        raise ValueError(f"{directory / CONFIG_FILE}: model_type {data.get('model_type')!r} is not {MODEL_TYPE!r} "
                         f"(a BERT directory starts an ActBERT with from_bert)")
    weights = directory / WEIGHTS_FILE
    if not weights.is_file():
        raise FileNotFoundError(f"{directory}: {CONFIG_FILE} says actbert but {WEIGHTS_FILE} is missing")
    model = cls(ActBertConfig.from_dict({**data, **overrides}))
    model.load_state_dict(load_file(str(weights)), strict=True)
    return model


def _text_stream_name(videobert_name: str, num_text_layers: int) -> str | None:
    """A parameter name of VideoBERT's layout (after ``_BERT_RENAMES``) -> ActBERT's, or ``None``."""
    match = re.match(r"^encoder\.layers\.(\d+)\.(.*)$", videobert_name)
    if match:
        index, rest = int(match.group(1)), match.group(2)
        if index < num_text_layers:
            return f"text_encoder.layers.{index}.{rest}"
        return f"tangled.{index - num_text_layers}.text.{rest}"
    for prefix, ours in (("embeddings.norm.", "text_embeddings.norm."), ("alignment_head.", "matching_head."),
                         ("mlm_head.", "mlm_head.")):
        if videobert_name.startswith(prefix):
            return ours + videobert_name[len(prefix):]
    return None


def load_bert(cls: type[M], directory: str | os.PathLike, **overrides: Any) -> M:
    directory = Path(directory)
    data = read_config_json(directory)
    if data.get("model_type") != "bert":
        raise ValueError(f"{directory / CONFIG_FILE}: model_type {data.get('model_type')!r} is not 'bert'")
    fields = {name: data[name] for name in _BERT_CONFIG_FIELDS if name in data and name != "max_position_embeddings"}
    fields["text_vocab_size"] = data["vocab_size"]
    fields["max_position_embeddings"] = data.get("max_position_embeddings", 512)
    clashes = {k: (fields[k], v) for k, v in overrides.items()
               if k in fields and fields[k] != v and k not in ("hidden_dropout_prob", "attention_probs_dropout_prob")}
    if clashes:
        raise ValueError(f"{directory / CONFIG_FILE}: overrides {clashes} (checkpoint, requested) change the pretrained architecture")
    config = ActBertConfig(**{**fields, **overrides})
    model = cls(config)
    ours = model.state_dict()
    loaded: dict[str, torch.Tensor] = {}
    for key, tensor in _read_bert_weights(directory).items():
        if key.startswith("embeddings.") and key.endswith("_embeddings.weight"):
            name: str | None = "text_" + key
        elif key.startswith("cls.seq_relationship."):
            # NSP's two logits (0 = is next) -> one matching logit: their difference is the log-odds
            name, tensor = key.replace("cls.seq_relationship", "matching_head.classifier"), (tensor[0] - tensor[1]).unsqueeze(0)
        else:
            renamed = next((re.sub(p, r, key) for p, r in _BERT_RENAMES if re.match(p, key)), None)
            name = renamed and _text_stream_name(renamed, config.num_text_layers)
        if name is None:
            continue
        if name not in ours or ours[name].shape != tensor.shape:
            raise ValueError(f"{directory}: checkpoint tensor for {name} has shape {tuple(tensor.shape)}, "
                             f"model expects {tuple(ours[name].shape) if name in ours else 'no such tensor'}")
        loaded[name] = tensor
    missing = model.load_state_dict(loaded, strict=False).missing_keys
    log.info("from_bert %s: %d tensors loaded; freshly initialised: %s", directory, len(loaded), ", ".join(sorted(missing)))
    return model
