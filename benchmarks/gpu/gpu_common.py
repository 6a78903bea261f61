"""What every GPU benchmark piece shares: its command line, timing, peak memory, the matmul peak,
missing-package reports, and the JSON it hands to ``check.py``.

A piece is a script ``benchmarks/gpu/<name>.py`` whose ``measure(args) -> dict`` returns its figures;
``piece_main`` runs it and writes ``{"status": "ok", ...figures}`` (or ``{"status": "skipped",
"reason": ...}`` when a package it needs is missing) to ``--json``. ``--smoke`` runs tiny sizes on
whatever device there is (the CPU here) so the script itself can be tested without a GPU: smoke
figures mean nothing.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import torch

from videobert.utils.io import write_json_atomic

REPO = Path(__file__).resolve().parents[2]


class MissingPackages(Exception):
    """Raised by a piece when packages it needs are not importable; the piece is then skipped."""

    def __init__(self, modules: list[str], why: str):
        super().__init__(f"{why} needs {', '.join(modules)}, not installed here. {carry_hint(modules)}")


# import name -> distribution to install or carry
DISTRIBUTIONS = {"av": "av", "nvidia.dali": "nvidia-dali-cuda120", "deepspeed": "deepspeed"}


def carry_hint(modules: list[str]) -> str:
    dists = " ".join(DISTRIBUTIONS.get(m, m) for m in modules)
    return (f"Install it ({dists}), or where there is no package registry carry the wheel: "
            f"`pip download --no-deps --only-binary=:all: --python-version 3.12 --platform manylinux_2_28_x86_64 "
            f"-d .whl {dists}` on a machine with one, then `pip install --no-index --no-deps --target /tmp/site .whl/*.whl` "
            f"and `export PYTHONPATH=/tmp/site` before scripts/gpu_check.sh.")


def require(modules: list[str], why: str) -> None:
    """Raise MissingPackages naming those of ``modules`` that cannot be imported."""
    missing = [m for m in modules if not _importable(m)]
    if missing:
        raise MissingPackages(missing, why)


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a missing parent package (nvidia for nvidia.dali)
        return False


def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def synchronize(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


SMOKE = False  # set by piece_main from --smoke: then every measurement is one run, without warm-up


def time_call(fn: Callable[[], object], dev: torch.device, repeats: int = 10, warmup: int = 2) -> float:
    """Median seconds of ``fn()`` over ``repeats`` runs after ``warmup`` (CUDA events on a GPU)."""
    if SMOKE:
        repeats, warmup = 1, 0
    for _ in range(warmup):
        fn()
    synchronize(dev)
    times = []
    for _ in range(repeats):
        if dev.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end) / 1000.0)
        else:
            start_s = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start_s)
    return statistics.median(times)


def peak_memory_bytes(fn: Callable[[], object], dev: torch.device) -> int | None:
    """Peak bytes allocated by ``fn()`` above what was allocated before (CUDA allocator; None on CPU)."""
    if dev.type != "cuda":
        return None
    synchronize(dev)
    torch.cuda.reset_peak_memory_stats(dev)
    before = torch.cuda.memory_allocated(dev)
    fn()
    synchronize(dev)
    return torch.cuda.max_memory_allocated(dev) - before


def matmul_peak_flops(dtype: torch.dtype, dev: torch.device, size: int = 8192) -> float:
    """Measured FLOP/s of a ``size``-cubed ``torch.matmul`` in ``dtype`` (fp32 with TF32 off):
    the practical ceiling the kernels are compared with."""
    a = torch.randn(size, size, device=dev).to(dtype)
    b = torch.randn(size, size, device=dev).to(dtype)
    previous = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        seconds = time_call(lambda: torch.matmul(a, b), dev, repeats=5, warmup=2)
    finally:
        torch.backends.cuda.matmul.allow_tf32 = previous
    return 2.0 * size**3 / seconds


def piece_main(measure: Callable[[argparse.Namespace], dict], add_arguments: Callable | None = None) -> None:
    """Run a piece: parse ``--json PATH`` and ``--smoke``, call ``measure``, write its result."""
    parser = argparse.ArgumentParser(description=sys.modules["__main__"].__doc__)
    parser.add_argument("--json", required=True, type=Path, help="where to write this piece's result")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes on any device: tests the script, not the GPU")
    if add_arguments:
        add_arguments(parser)
    args = parser.parse_args()
    global SMOKE
    SMOKE = args.smoke
    if not args.smoke and not torch.cuda.is_available():
        parser.exit(2, "this piece measures a GPU and none is visible (use --smoke to test the script on a CPU)\n")
    try:
        result = {"status": "ok", **measure(args)}
    except MissingPackages as exc:
        result = {"status": "skipped", "reason": str(exc)}
    write_json_atomic(args.json, result)
