"""Model inputs for the downstream tasks, laid out as ``videobert.vocab`` prescribes.

    video-text   [CLS](0) text(0) [>](1) video(1) [SEP](1)
    text-only    [CLS](0) text(0) [SEP](0)
    video-only   [CLS](0) [>](1) video(1) [SEP](1)

Text and visual entries here are already unified ids (``vocab.visual_ids`` applied), so a
``[MASK]`` can stand anywhere.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from videobert.vocab import UnifiedVocab


def build_sequence(vocab: UnifiedVocab, text_ids: Sequence[int] | None, video_ids: Sequence[int] | None
                   ) -> tuple[list[int], list[int]]:
    """(input ids, token type ids) of one example. ``None`` leaves a modality out; an empty list
    keeps its separator (a video-text example with no visual tokens yet)."""
    if text_ids is None and video_ids is None:
        raise ValueError("an example needs text, video or both")
    ids, types = [vocab.cls_id], [0]
    if text_ids is not None:
        ids += list(text_ids)
        types += [0] * len(text_ids)
    if video_ids is None:
        return ids + [vocab.sep_id], types + [0]
    ids += [vocab.video_sep_id, *video_ids, vocab.sep_id]
    types += [1] * (len(video_ids) + 2)
    return ids, types


def pack(sequences: list[tuple[list[int], list[int]]], pad_id: int, device: torch.device | str = "cpu"
         ) -> dict[str, torch.Tensor]:
    """Pad (ids, types) pairs on the right into ``input_ids``, ``token_type_ids``,
    ``attention_mask``, each ``[B, L]`` int64, L = the longest sequence."""
    length = max(len(ids) for ids, _ in sequences)
    input_ids = torch.full((len(sequences), length), pad_id, dtype=torch.long)
    token_types = torch.zeros((len(sequences), length), dtype=torch.long)
    attention = torch.zeros((len(sequences), length), dtype=torch.long)
    for row, (ids, types) in enumerate(sequences):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        token_types[row, : len(types)] = torch.tensor(types)
        attention[row, : len(ids)] = 1
    return {"input_ids": input_ids.to(device), "token_type_ids": token_types.to(device),
            "attention_mask": attention.to(device)}


def subsample_evenly(words: np.ndarray, limit: int) -> np.ndarray:
    """At most ``limit`` of ``words [n]``, evenly spaced in time (the first and last kept)."""
    words = np.asarray(words)
    if len(words) <= limit:
        return words
    if limit <= 0:
        return words[:0]
    return words[np.linspace(0, len(words) - 1, limit).round().astype(np.int64)]


def model_device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def max_length(model: torch.nn.Module) -> int:
    """Longest input the model's position embeddings allow."""
    return int(model.config.max_position_embeddings)
