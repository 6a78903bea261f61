"""Model families (VideoBERT, ActBERT, VideoPrism): one registry line each.

``get_family(name)`` gives a family's :class:`~videobert.models.family.Family`;
``load_model(directory)`` reads any family's ``from_pretrained`` directory (its ``config.json``
says which family by ``model_type``).
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

    from videobert.models.family import Family

# family name -> "module:attribute" of its Family instance (imported on first use)
FAMILIES = {
    "videobert": "videobert.models.videobert.family:FAMILY",
    "actbert": "videobert.models.actbert.family:FAMILY",
    "videoprism": "videobert.models.videoprism.family:FAMILY",
}


def get_family(name: str) -> "Family":
    if name not in FAMILIES:
        raise ValueError(f"unknown model family {name!r}; known: {', '.join(sorted(FAMILIES))}")
    module, attribute = FAMILIES[name].split(":")
    return getattr(importlib.import_module(module), attribute)


def family_of_directory(directory: str | os.PathLike) -> "Family":
    """The family of a model directory, from ``model_type`` in its ``config.json`` (``"bert"``, a
    Hugging Face BERT directory, counts as VideoBERT's: ``from_pretrained`` converts it)."""
    from videobert.models.videobert.io import read_config_json

    model_type = read_config_json(Path(directory)).get("model_type")
    if model_type is None:
        raise ValueError(f"{Path(directory) / 'config.json'} has no model_type: it names no model family "
                         f"({', '.join(sorted(FAMILIES))}) and is no Hugging Face BERT config")
    return get_family("videobert" if model_type == "bert" else str(model_type))


def load_model(directory: str | os.PathLike) -> "torch.nn.Module":
    """A trained model of any family from its ``save_pretrained`` directory."""
    return family_of_directory(directory).from_pretrained(directory)
