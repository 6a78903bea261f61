"""Text-video pairs laid out for VideoBERT's cross-encoder by tensor indexing, not per pair in Python.

``PairTables`` pads the texts and the videos (visual words) once on the model's device;
``pair_batch`` builds the batch ``build_sequence`` + ``pack`` would give for any list of pairs,
``[CLS] text [>] video [SEP]``, with a video longer than fits beside its text thinned evenly
(``subsample_evenly``) and a text longer than ``max_length - 4`` WordPieces cut there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from videobert.tasks.inputs import max_length, model_device


@dataclass
class PairTables:
    """Texts and videos padded into tables on the model's device, for :func:`pair_batch`."""

    texts: torch.Tensor          # [T, Lt] int64 WordPiece ids (pad 0)
    text_lengths: torch.Tensor   # [T] int64
    videos: torch.Tensor         # [V, Lv] int64 unified visual ids (pad 0)
    video_lengths: torch.Tensor  # [V] int64
    max_length: int

    @classmethod
    def build(cls, model: torch.nn.Module, texts: Sequence[Sequence[int]], videos: Sequence[np.ndarray]) -> "PairTables":
        vocab, limit, device = model.config.vocab, max_length(model), model_device(model)
        if not texts or not videos:
            raise ValueError(f"retrieval needs texts and videos, got {len(texts)} texts and {len(videos)} videos")
        if any(len(np.asarray(v)) == 0 for v in videos):
            raise ValueError("every video needs at least one visual word")

        def table(rows: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
            lengths = torch.tensor([len(r) for r in rows], dtype=torch.long)
            out = torch.zeros((len(rows), max(1, int(lengths.max()))), dtype=torch.long)
            for i, row in enumerate(rows):
                out[i, : len(row)] = torch.from_numpy(np.asarray(row, dtype=np.int64))
            return out.to(device), lengths.to(device)

        text_table, text_lengths = table([np.asarray(t[: limit - 4], dtype=np.int64) for t in texts])
        video_table, video_lengths = table([vocab.visual_ids(v) for v in videos])
        return cls(text_table, text_lengths, video_table, video_lengths, limit)

    def pair_lengths(self, text_index: torch.Tensor, video_index: torch.Tensor) -> torch.Tensor:
        """Tokens of each pair's sequence: ``[CLS] text [>] video [SEP]`` after thinning the video."""
        lt = self.text_lengths[text_index]
        return 3 + lt + torch.minimum(self.video_lengths[video_index], self.max_length - 3 - lt)


def pair_batch(tables: PairTables, vocab, text_index: torch.Tensor, video_index: torch.Tensor) -> dict[str, torch.Tensor]:
    """The batch ``build_sequence`` + ``pack`` would give for pairs ``(text_index[b], video_index[b])``
    (``[B]`` int64 each), built by indexing: ``input_ids``, ``token_type_ids``, ``attention_mask`` ``[B, L]``."""
    lt = tables.text_lengths[text_index][:, None]                     # [B, 1]
    lv = tables.video_lengths[video_index][:, None]
    kept = torch.minimum(lv, tables.max_length - 3 - lt)              # visual words that fit
    total = 3 + lt + kept
    position = torch.arange(int(total.max()), device=lt.device)[None, :]
    # subsample_evenly: source index round(q * (lv - 1) / (kept - 1)), as numpy's linspace computes it
    step = (lv - 1).double() / (kept - 1).clamp(min=1).double()  # one kept word: q = 0 takes word 0
    q = (position - lt - 2).clamp(min=0)
    source = torch.where(lv > kept, (q.double() * step).round().long(), q).clamp(max=tables.videos.shape[1] - 1)
    text_at = (position - 1).clamp(0, tables.texts.shape[1] - 1).expand(len(text_index), -1)
    text = tables.texts[text_index].gather(1, text_at)
    video = tables.videos[video_index].gather(1, source)
    ids = torch.full_like(text, vocab.pad_id)
    ids = torch.where(position <= lt, text, ids)
    ids = torch.where(position == lt + 1, torch.full_like(ids, vocab.video_sep_id), ids)
    ids = torch.where((position >= lt + 2) & (position < lt + 2 + kept), video, ids)
    ids = torch.where(position == total - 1, torch.full_like(ids, vocab.sep_id), ids)
    ids[:, 0] = vocab.cls_id
    real = position < total
    return {"input_ids": ids, "token_type_ids": ((position > lt) & real).long(), "attention_mask": real.long()}
