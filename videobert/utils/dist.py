"""Rank and world size as set by torchrun or the deepspeed launcher, and sharding by them."""

from __future__ import annotations

import os
from typing import Sequence, TypeVar

T = TypeVar("T")


def rank_and_world_size(rank: int | None = None, world_size: int | None = None) -> tuple[int, int]:
    """Explicit values win; otherwise ``RANK`` / ``WORLD_SIZE`` from the environment; else (0, 1)."""
    if rank is None:
        rank = int(os.environ.get("RANK", "0"))
    if world_size is None:
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"invalid rank {rank} for world size {world_size}")
    return rank, world_size


def shard(items: Sequence[T], rank: int, world_size: int) -> list[T]:
    """Every ``world_size``-th item starting at ``rank``: disjoint shards that cover ``items``."""
    return list(items[rank::world_size])


def local_rank() -> int:
    """This process's index on its node (``LOCAL_RANK`` from torchrun or the deepspeed launcher, else 0):
    the GPU it uses is ``cuda:local_rank()``."""
    value = os.environ.get("LOCAL_RANK", "0")
    if not value.isdigit():
        raise ValueError(f"LOCAL_RANK must be a non-negative integer, got {value!r}")
    return int(value)
