"""Sequence packing: a collated batch's examples laid end to end in as few rows as they fit in.

A padded batch spends the model's work on padding: the demo's examples hold 15.6 tokens on average
and are padded to their batch's longest, 36.9 (benchmarks/RESULTS.md, the demo section). Packed,
the same examples fill rows of the same width one after another (longest first, each into the
first row with room: first-fit decreasing), so every layer runs over fewer positions.

Nothing the model computes changes: each example keeps its own positions (``position_ids`` restart
at 0 where it starts) and attends only to its own tokens (the model builds a block-diagonal mask
from ``example_index``, the batch index of the example each position holds, -1 on padding), its
``[CLS]`` is found where its position is 0, and the per-example arrays (``alignment_labels``,
``stream``) keep their order. Losses and gradients are those of the padded batch up to rounding;
only dropout draws its masks over another layout.
"""

from __future__ import annotations

import numpy as np

# What each per-position array of the batch holds where no example does
PADDING = {"input_ids": None, "token_type_ids": 0, "attention_mask": 0, "mlm_labels": -100, "mvm_labels": -100}


def first_fit_rows(lengths: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and first column of each example of ``lengths [B]`` (all <= ``width``), longest first,
    each into the first row that still has room for it."""
    row, start = np.empty(len(lengths), np.int64), np.empty(len(lengths), np.int64)
    used: list[int] = []  # columns taken in each row so far
    for b in np.argsort(-lengths, kind="stable"):
        length = int(lengths[b])
        r = next((r for r, taken in enumerate(used) if taken + length <= width), len(used))
        if r == len(used):
            used.append(0)
        row[b], start[b] = r, used[r]
        used[r] += length
    return row, start


def pack_batch(batch: dict[str, np.ndarray], pad_id: int) -> dict[str, np.ndarray]:
    """The padded batch ``batch`` (per-position arrays ``[B, W]`` as ``PADDING`` lists, real tokens
    where ``attention_mask`` is 1, from column 0 on) packed into ``[R, W]`` rows (R <= B), with
    ``position_ids`` and ``example_index`` added; the other arrays are per example and stay."""
    real = batch["attention_mask"].astype(bool)
    lengths = real.sum(axis=1)
    width = real.shape[1]
    row, start = first_fit_rows(lengths, width)
    rows = int(row.max()) + 1 if len(row) else 0
    columns = np.arange(width)[None, :]
    target = ((row * width + start)[:, None] + columns)[real]  # flat packed position of each real token
    packed = dict(batch)
    for key, fill in PADDING.items():
        out = np.full(rows * width, pad_id if fill is None else fill, dtype=batch[key].dtype)
        out[target] = batch[key][real]
        packed[key] = out.reshape(rows, width)
    positions = np.zeros(rows * width, np.int64)
    positions[target] = np.broadcast_to(columns, real.shape)[real]
    example_index = np.full(rows * width, -1, np.int64)
    example_index[target] = np.broadcast_to(np.arange(len(lengths))[:, None], real.shape)[real]
    packed["position_ids"] = positions.reshape(rows, width)
    packed["example_index"] = example_index.reshape(rows, width)
    return packed
