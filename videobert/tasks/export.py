"""Segment features for downstream models (captioning, retrieval): the encoder's hidden states.

Each segment is encoded as a video-only example (``[CLS] [>] video [SEP]``) or, given text, a
video-text one. Output: shards ``features-00000.safetensors``, ... of ``segments_per_shard``
segments each, holding

    pooled          [S, H]   hidden state at [CLS]
    mean            [S, H]   mean hidden state over the segment's visual tokens
    tokens          [T, H]   per-token hidden states of all segments, concatenated
    offsets         [S + 1]  int64: segment i's tokens are tokens[offsets[i]:offsets[i+1]]
    input_ids       [T]      int64 unified ids of those tokens
    token_type_ids  [T]      int64

and the segments' identity (``video_id``, ``start``, ``end`` in seconds) as JSON in the file's
metadata under ``"segments"``. Shards are written atomically; a rerun skips finished shards, and
only resumes shards of the same model, segments, shard size and dtype (the directory's
fingerprint, ``videobert.utils.fingerprint``; ``overwrite=True`` starts over).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from safetensors.torch import save_file

from videobert.tasks.inputs import build_sequence, max_length, model_device, pack, subsample_evenly
from videobert.utils.io import atomic_path
from videobert.vocab import UnifiedVocab


@dataclass(frozen=True)
class SegmentInput:
    """A segment to encode: its visual words and, optionally, WordPiece text ids."""

    video_id: str
    start: float
    end: float
    visual_words: tuple[int, ...]
    text_ids: tuple[int, ...] | None = None


@torch.inference_mode()
def encode_segments(model: torch.nn.Module, segments: Sequence[SegmentInput]) -> dict[str, torch.Tensor]:
    """The tensors of one shard (see the module docstring), float32 on the CPU."""
    vocab = UnifiedVocab(text_vocab_size=model.config.text_vocab_size, num_visual_words=model.config.num_visual_words)
    sequences = []
    for seg in segments:
        text = None if seg.text_ids is None else list(seg.text_ids)
        room = max_length(model) - 3 - (len(text) if text else 0)
        words = subsample_evenly(np.asarray(seg.visual_words, dtype=np.int64), room)
        sequences.append(build_sequence(vocab, text, vocab.visual_ids(words).tolist()))
    batch = pack(sequences, vocab.pad_id, model_device(model))
    hidden = model.encode(**batch).float().cpu()
    ids, types, real = (batch[k].cpu() for k in ("input_ids", "token_type_ids", "attention_mask"))
    visual = torch.from_numpy(vocab.is_visual(ids.numpy())) & real.bool()
    counts = visual.sum(dim=1, keepdim=True).clamp(min=1)
    lengths = real.sum(dim=1)
    real_rows = real.bool()
    return {
        "pooled": hidden[:, 0].contiguous(),
        "mean": ((hidden * visual[..., None]).sum(dim=1) / counts).contiguous(),
        "tokens": hidden[real_rows].contiguous(),
        "offsets": torch.cat([torch.zeros(1, dtype=torch.long), lengths.cumsum(0)]),
        "input_ids": ids[real_rows].contiguous(),
        "token_type_ids": types[real_rows].contiguous(),
    }


def export_features(model: torch.nn.Module, segments: Sequence[SegmentInput], out_dir: str | os.PathLike,
                    segments_per_shard: int = 1024, batch_size: int = 32, dtype: torch.dtype = torch.float32,
                    overwrite: bool = False) -> list[Path]:
    """Write the shards for ``segments`` (in order) into ``out_dir``; returns their paths.

    A shard that already exists is kept (resume) when the directory was made from the same model,
    segments, ``segments_per_shard`` and ``dtype``; otherwise ``StaleOutputError``, unless
    ``overwrite`` deletes the old shards first. ``dtype`` applies to the hidden states.
    """
    from videobert.utils.fingerprint import FINGERPRINT_FILE, claim_output, digest_of, state_dict_digest

    out_dir = Path(out_dir)
    fingerprint = {"stage": "export features", "model": state_dict_digest(model), "segments": digest_of([asdict(s) for s in segments]),
                   "segments_per_shard": segments_per_shard, "dtype": str(dtype)}
    claim_output(out_dir / FINGERPRINT_FILE, "export features", fingerprint, overwrite=overwrite)
    paths = []
    for shard, first in enumerate(range(0, len(segments), segments_per_shard)):
        path = out_dir / f"features-{shard:05d}.safetensors"
        paths.append(path)
        if path.exists():
            continue
        part = segments[first : first + segments_per_shard]
        pieces = [encode_segments(model, part[b : b + batch_size]) for b in range(0, len(part), batch_size)]
        tensors = {key: torch.cat([p[key] for p in pieces]) for key in ("pooled", "mean", "tokens", "input_ids",
                                                                         "token_type_ids")}
        lengths = torch.cat([p["offsets"].diff() for p in pieces])
        tensors["offsets"] = torch.cat([torch.zeros(1, dtype=torch.long), lengths.cumsum(0)])
        for key in ("pooled", "mean", "tokens"):
            tensors[key] = tensors[key].to(dtype)
        metadata = {"segments": json.dumps([{k: v for k, v in asdict(s).items() if k in ("video_id", "start", "end")}
                                            for s in part])}
        with atomic_path(path) as tmp:
            save_file(tensors, str(tmp), metadata=metadata)
    return paths


def load_features(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], list[dict]]:
    """One shard's tensors and its segments' identities (``video_id``, ``start``, ``end``)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        tensors = {key: f.get_tensor(key) for key in f.keys()}
        segments = json.loads((f.metadata() or {}).get("segments", "[]"))
    return tensors, segments
