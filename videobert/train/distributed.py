"""The process group: from the deepspeed launcher's environment, or a one-rank group for a plain
process, so that every run goes through ``deepspeed.initialize`` the same way."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# What the launcher (or init_distributed, for a plain process) sets; a child process that starts
# its own run must not inherit them, or it would try to join this process's group.
PROCESS_GROUP_VARIABLES = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def child_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment without its process-group variables, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in PROCESS_GROUP_VARIABLES}
    env.update(extra or {})
    return env


def init_distributed() -> tuple[int, int]:
    """Join (or create) the process group; returns ``(rank, world_size)``.

    Without launcher variables this process becomes rank 0 of a world of 1 (gloo on CPU, NCCL on
    GPU as DeepSpeed's accelerator chooses), on a free local port.
    """
    import deepspeed

    if not dist.is_initialized():
        if "WORLD_SIZE" not in os.environ:
            os.environ.update({"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "LOCAL_WORLD_SIZE": "1"})
            os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
            os.environ["MASTER_PORT"] = str(free_port())
        deepspeed.init_distributed(verbose=False)
        _unlink_shared_allreduce_buffer()
    return dist.get_rank(), dist.get_world_size()


def _unlink_shared_allreduce_buffer() -> None:
    """Remove the name of this rank's DeepSpeed shared-memory allreduce buffer.

    On a CPU node whose ranks are all local, DeepSpeed's shm collectives give each rank a 66 MB
    buffer in /dev/shm (``deepspeed_allreduce_buffer_{uid}_{MASTER_ADDR}_{MASTER_PORT}_{rank}``,
    deepspeed/ops/csrc/cpu/comm/shm.cpp) and never unlink it, so every two-rank run left 132 MB of
    RAM behind (157 runs filled a 24 GB /dev/shm here). Every rank has mapped every buffer once
    ``init_distributed`` returns on all of them (each waits for the others' files), so after a
    barrier the names can go; the mappings live on until the processes end, however they end.
    """
    path = Path("/dev/shm") / (f"deepspeed_allreduce_buffer_{os.getuid()}_{os.environ.get('MASTER_ADDR', '')}_"
                               f"{os.environ.get('MASTER_PORT', '')}_{dist.get_rank()}")
    barrier()
    path.unlink(missing_ok=True)


def all_reduce_sum(values: torch.Tensor) -> torch.Tensor:
    """Sum of ``values`` over ranks (float64 on the CPU for gloo; moved back afterwards)."""
    if dist.get_world_size() == 1:
        return values
    from deepspeed.accelerator import get_accelerator

    device = get_accelerator().current_device_name()
    reduced = values.to(device)
    dist.all_reduce(reduced, op=dist.ReduceOp.SUM)
    return reduced.to(values.device)


def any_rank(flag: bool) -> bool:
    """True on every rank if ``flag`` is true on any rank."""
    return bool(all_reduce_sum(torch.tensor([float(flag)], dtype=torch.float64)).item() > 0)


def gather_to_all(obj: Any) -> list[Any]:
    """Every rank's ``obj``, in rank order, on every rank."""
    if dist.get_world_size() == 1:
        return [obj]
    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, obj)
    return gathered


def barrier() -> None:
    if dist.get_world_size() > 1:
        dist.barrier()
