"""``VideoPrismCollator``: examples of ``videobert.models.videoprism.data`` -> a batch.

| key | shape, dtype | stage | meaning |
|---|---|---|---|
| ``frames`` | ``[B, T, S, S, 3]`` uint8 | 1, 2, 3 | the examples' frames |
| ``text_ids`` | ``[B, L]`` int64 | 1, 3 | ``[CLS] text [SEP]``, padded with ``[PAD]`` |
| ``text_mask`` | ``[B, L]`` int64 | 1, 3 | 1 real token, 0 padding |
| ``text_keys`` | ``[B]`` int64 | 1, 3 | equal for equal texts (they are not each other's negatives) |
| ``visible`` | ``[B, V]`` int64 | 2 | spatial positions the student sees (tube mask) |
| ``shuffle`` | ``[B, T·V]`` int64 | 2 | the order the decoder receives the student's tokens in |
| ``attention_mask`` | ``[B, L]`` int64 | 1, 2, 3 | the step's tokens for the trainer's throughput: stages 1, 3 the text mask, stage 2 ones over the student's ``T·V`` tokens |

Masks and orders come from each example's ``seed``: the same example gets the same ones on any
rank, in any batch.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import torch

from videobert.models.videoprism.config import VideoPrismConfig
from videobert.models.videoprism.distillation import draw_shuffle, draw_tube_mask
from videobert.models.videoprism.text import text_batch


def text_key(text_ids: list[int]) -> int:
    """A 63-bit key of a text's ids (equal texts, equal keys)."""
    return int.from_bytes(hashlib.blake2b(np.asarray(text_ids, dtype=np.int64).tobytes(), digest_size=8).digest(), "little") >> 1


class VideoPrismCollator:
    def __init__(self, config: VideoPrismConfig):
        self.config = config

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        if not examples:
            raise ValueError("cannot collate an empty list of examples")
        c = self.config
        shape = (c.num_frames, c.image_size, c.image_size, 3)
        for k, example in enumerate(examples):
            frames = example.get("frames")
            if not isinstance(frames, np.ndarray) or frames.shape != shape or frames.dtype != np.uint8:
                got = (frames.shape, frames.dtype) if isinstance(frames, np.ndarray) else type(frames).__name__
                raise ValueError(f"example {k}: frames must be uint8 {list(shape)} (num_frames, image_size of the model), got {got}; "
                                 "was the clip store made at another size?")
        batch = {"frames": torch.from_numpy(np.stack([e["frames"] for e in examples]))}
        if c.contrastive:
            missing = [k for k, e in enumerate(examples) if not e.get("text_ids")]
            if missing:
                raise ValueError(f"stage {c.stage} needs text with every example; examples {missing} have none")
            texts = [list(e["text_ids"]) for e in examples]
            batch.update(text_batch(texts, c.text.vocab_size, c.text.max_position_embeddings))
            batch["text_keys"] = torch.tensor([text_key(t) for t in texts], dtype=torch.int64)
            batch["attention_mask"] = batch["text_mask"]
            return batch
        visible, shuffle = [], []
        for example in examples:
            rng = np.random.default_rng(example["seed"])
            visible.append(draw_tube_mask(rng, c.spatial_tokens, c.masked_positions))
            shuffle.append(draw_shuffle(rng, c.num_frames * len(visible[-1])))
        batch["visible"] = torch.from_numpy(np.stack(visible))
        batch["shuffle"] = torch.from_numpy(np.stack(shuffle))
        batch["attention_mask"] = torch.ones(batch["shuffle"].shape, dtype=torch.int64)
        return batch
