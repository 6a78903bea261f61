"""What a pretraining run takes from its corpus, decided before DeepSpeed starts.

- **Sizes**: the model's ``text_vocab_size`` and ``num_visual_words`` are the corpus's
  (``corpus.json``) unless ``model.overrides`` sets them; a model that cannot fit (an override, a
  BERT checkpoint's vocabulary, a ``from_pretrained`` directory's config) fails here in a second,
  naming both values.
- **Visual-word embeddings** start from the leaf centroids of the tree the corpus was built with
  (``corpus.json`` records its path and digest), as in the paper: ``model.init_visual_from`` is
  ``"corpus"`` (the default; for a new or BERT-initialised model; a ``from_pretrained`` directory
  keeps its own trained embeddings), ``"none"``, or a tree file.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import torch

from videobert.train.config import ModelConfig, TrainConfig

log = logging.getLogger(__name__)

SIZE_KEYS = ("text_vocab_size", "num_visual_words")


def _corpus_info(config: TrainConfig) -> dict:
    from videobert.corpus.store import read_corpus_info

    return read_corpus_info(config.data.corpus) if config.data.corpus else {}


def _saved_sizes(directory: Path) -> dict[str, int]:
    """The sizes a ``from_pretrained`` directory's (or BERT directory's) config.json gives a model."""
    from videobert.models.videobert import VideoBertConfig
    from videobert.models.videobert.io import read_config_json

    saved = read_config_json(directory)
    default = VideoBertConfig()
    return {"text_vocab_size": saved.get("text_vocab_size", saved.get("vocab_size", default.text_vocab_size)),
            "num_visual_words": saved.get("num_visual_words", default.num_visual_words)}


def resolve_model_config(config: TrainConfig) -> ModelConfig:
    """``config.model`` with the corpus's sizes filled into ``overrides`` where they are free;
    raises ``ValueError`` naming both values when the model cannot take the corpus."""
    info = _corpus_info(config)
    model = config.model
    wanted = {k: info[k] for k in SIZE_KEYS if k in info}
    if not wanted:
        return model
    overrides = dict(model.overrides)
    if model.init_from.startswith("bert:"):
        directory = Path(model.init_from[len("bert:"):])
        overrides.setdefault("num_visual_words", wanted.get("num_visual_words"))
        have = {"text_vocab_size": overrides.get("text_vocab_size", _saved_sizes(directory)["text_vocab_size"]),
                "num_visual_words": overrides["num_visual_words"]}
        source, fix = f"the BERT checkpoint {directory}", "build the corpus with its vocab.txt (--tokenizer)"
    elif model.init_from:
        have = _saved_sizes(Path(model.init_from))
        source, fix = f"the model {model.init_from}", "build the corpus with its tokenizer and tree, or start from another model"
    else:
        for key, value in wanted.items():
            overrides.setdefault(key, value)
        have = {k: overrides.get(k) for k in SIZE_KEYS}
        source, fix = "model.overrides", "leave these out of model.overrides: the corpus sets them"
    for key, value in wanted.items():
        if have.get(key) != value:
            raise ValueError(f"corpus {config.data.corpus} has {key}={value} but {source} has {key}={have.get(key)}: {fix}")
    return dataclasses.replace(model, overrides=overrides)


def visual_words_tree(config: TrainConfig) -> Path | None:
    """The tree whose leaf centroids start the visual-word embeddings (``None``: keep them random)."""
    from videobert.utils.fingerprint import file_digest

    source = config.model.init_visual_from
    if source in ("", "none"):
        return None
    if source != "corpus":
        if not Path(source).is_file():
            raise FileNotFoundError(f"model.init_visual_from={source}: no such tree file")
        return Path(source)
    if config.model.init_from and not config.model.init_from.startswith("bert:"):
        return None  # a from_pretrained model keeps the visual-word embeddings it learned
    record = _corpus_info(config).get("visual_words")
    if not record:
        log.info("corpus %s records no tree: visual-word embeddings start random", config.data.corpus)
        return None
    path = Path(record["path"])
    if not path.is_file():
        raise FileNotFoundError(f"corpus {config.data.corpus} was built from the tree {path}, which is gone; set "
                                f"model.init_visual_from=PATH to its copy, or model.init_visual_from=none")
    if file_digest(path) != record["digest"]:
        raise ValueError(f"the tree {path} changed since corpus {config.data.corpus} was built from it; rebuild the "
                         f"corpus (--overwrite), or set model.init_visual_from=none")
    return path


def init_visual_from_tree(model: torch.nn.Module, tree_path: Path, seed: int) -> None:
    """Start ``model``'s visual-word embeddings from ``tree_path``'s leaf centroids."""
    import numpy as np

    from videobert.visual_words import HierarchicalKMeans

    tree = HierarchicalKMeans.load(tree_path)
    if tree.num_words != model.config.num_visual_words:
        raise ValueError(f"the tree {tree_path} has {tree.num_words} visual words but the model has "
                         f"num_visual_words={model.config.num_visual_words}")
    model.init_visual_embeddings(torch.as_tensor(np.asarray(tree.leaf_centroids), dtype=torch.float32), seed=seed)
