"""Stage 1's objective: symmetric InfoNCE between video and text embeddings, with a learned
temperature and the negatives of every rank.

Each rank gathers every rank's embeddings (``gather_with_grad``: ``all_gather`` whose backward
returns to each rank the gradient all ranks' losses put on its rows) and scores its own rows
against all of them. DeepSpeed averages the ranks' gradients, so ``W`` ranks of ``B`` pairs train
exactly as one process with the ``W·B`` pairs in one micro-batch would.

Pairs that share a text (same WordPiece ids: ``text_keys``) are not each other's negatives: with
a few distinct narrations ("let me show you how to spin the star") a batch holds repeats, and
pushing a video away from its own sentence read off another clip only teaches noise. With all
keys distinct (or none given) the loss is plain CLIP InfoNCE.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch.nn import functional as F


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


class _AllGather(torch.autograd.Function):
    """``all_gather`` whose backward sums every rank's gradient on the gathered tensor
    (``all_reduce``) and returns this rank's rows of it."""

    @staticmethod
    def forward(ctx, local: torch.Tensor) -> torch.Tensor:
        parts = [torch.empty_like(local) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, local.contiguous())
        ctx.rows = local.shape[0]
        return torch.cat(parts)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous().clone()
        dist.all_reduce(grad)
        first = dist.get_rank() * ctx.rows
        return grad[first : first + ctx.rows]


def gather_with_grad(local: torch.Tensor) -> tuple[torch.Tensor, int]:
    """``local [B, ...]`` on every rank -> (``[W·B, ...]`` in rank order, this rank's first row).

    The gradient flows back to each rank's own rows (summed over all ranks' uses); every rank
    must pass the same ``B``."""
    if not _distributed():
        return local, 0
    return _AllGather.apply(local), dist.get_rank() * local.shape[0]


def gather_keys(local: torch.Tensor) -> torch.Tensor:
    """``local [B]`` (no gradient) -> ``[W·B]`` in rank order."""
    if not _distributed():
        return local
    parts = [torch.empty_like(local) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, local.contiguous())
    return torch.cat(parts)


def contrastive_loss(video: torch.Tensor, text: torch.Tensor, logit_scale: torch.Tensor,
                     text_keys: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric InfoNCE of this rank's pairs against every rank's.

    ``video [B, D]``, ``text [B, D]`` (pair i: row i of both; normalised here), ``logit_scale``
    (scalar, 1 / temperature), ``text_keys [B]`` int64 (equal keys: the same text; None: all
    distinct). Returns (loss: the mean of text->video and video->text cross-entropies over this
    rank's rows, accuracy: share of this rank's rows whose own partner scores highest, both ways).
    """
    if video.shape != text.shape or video.dim() != 2:
        raise ValueError(f"video {tuple(video.shape)} and text {tuple(text.shape)} embeddings must both be [batch, dim]")
    video, text = F.normalize(video.float(), dim=-1), F.normalize(text.float(), dim=-1)
    all_video, first = gather_with_grad(video)
    all_text, _ = gather_with_grad(text)
    rows = torch.arange(video.shape[0], device=video.device)
    targets = rows + first
    text_to_video = logit_scale * text @ all_video.t()   # [B, W·B]
    video_to_text = logit_scale * video @ all_text.t()
    if text_keys is not None:
        keys = text_keys.to(video.device)
        all_keys = gather_keys(keys)
        same_text = keys[:, None] == all_keys[None, :]
        same_text[rows, targets] = False  # the partner itself stays
        text_to_video = text_to_video.masked_fill(same_text, float("-inf"))
        video_to_text = video_to_text.masked_fill(same_text, float("-inf"))
    loss = (F.cross_entropy(text_to_video, targets) + F.cross_entropy(video_to_text, targets)) / 2
    correct = (text_to_video.argmax(-1) == targets).float() + (video_to_text.argmax(-1) == targets).float()
    return loss, (correct / 2).mean().detach()
