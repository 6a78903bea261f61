"""Which fast backends this installation has, and picking one for a tensor.

Backends: ``reference`` (plain PyTorch, always), ``cpu`` (the C++ module ``videobert._C``),
``triton`` (GPU, or CPU under ``TRITON_INTERPRET=1`` for tests), ``cuda`` (``videobert._C_cuda``).
"""

from __future__ import annotations

import functools
import importlib
import os
from types import ModuleType

import torch


@functools.cache
def compiled_module(name: str) -> ModuleType | None:
    """``videobert._C`` or ``videobert._C_cuda``, or None when it was not built."""
    try:
        return importlib.import_module(f"videobert.{name}")
    except ImportError:
        return None


def triton_interpreted() -> bool:
    return os.environ.get("TRITON_INTERPRET") == "1"


@functools.cache
def triton_available() -> bool:
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


def triton_device() -> str | None:
    """The device Triton kernels run on here: "cpu" under ``TRITON_INTERPRET=1`` (the interpreter,
    for tests), "cuda" on a GPU, None when Triton is missing or there is neither."""
    if not triton_available():
        return None
    if triton_interpreted():
        return "cpu"
    return "cuda" if torch.cuda.is_available() else None


def check_same_device(op: str, reference: torch.Tensor, **tensors: torch.Tensor) -> None:
    """Raise a ValueError naming ``op`` and the tensor when one of ``tensors`` is not on
    ``reference``'s device: the compiled kernels take raw pointers, and a pointer of the wrong
    device crashes the process instead of raising."""
    for name, tensor in tensors.items():
        if tensor.device != reference.device:
            raise ValueError(f"{op}: {name} is on {tensor.device}, but the input is on {reference.device}")


def available_backends() -> dict[str, bool]:
    return {
        "reference": True,
        "cpu": compiled_module("_C") is not None,
        "cuda": compiled_module("_C_cuda") is not None and torch.cuda.is_available(),
        "triton": triton_available() and (torch.cuda.is_available() or triton_interpreted()),
    }


def check_backend(backend: str, tensor: torch.Tensor, supported: tuple[str, ...]) -> str:
    """Resolve ``backend`` ("auto" or a name) for an op that implements ``supported``.

    "auto" prefers cuda, then triton on CUDA tensors; cpu on CPU tensors; else the reference.
    A named backend that is missing or does not fit the tensor's device is a clear error.
    """
    available = available_backends()
    on_cuda = tensor.is_cuda
    if backend == "auto":
        order = ("cuda", "triton") if on_cuda else ("cpu",)
        for name in order:
            if name in supported and available[name]:
                return name
        return "reference"
    if backend not in supported:
        raise ValueError(f"unknown backend {backend!r}; this op has {supported}")
    if not available[backend]:
        raise RuntimeError(f"backend {backend!r} is not available here (available: {[k for k, v in available.items() if v]})")
    if backend == "cpu" and on_cuda:
        raise ValueError("backend 'cpu' needs CPU tensors; got a CUDA tensor")
    if backend == "cuda" and not on_cuda:
        raise ValueError("backend 'cuda' needs CUDA tensors; got a CPU tensor")
    if backend == "triton" and not on_cuda and not triton_interpreted():
        raise ValueError("backend 'triton' needs CUDA tensors (or TRITON_INTERPRET=1 for testing on CPU)")
    return backend
