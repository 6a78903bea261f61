"""``videobert info``: which kernel backends this installation has."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    parser = subparsers.add_parser("info", help="show which kernel backends (C++, CUDA, Triton) are available")
    parser.set_defaults(func=run_info)


def describe_backends() -> str:
    """A human-readable report of the available backends and why the others are missing."""
    import torch

    from videobert.ops.backends import available_backends, compiled_module, triton_available, triton_interpreted

    available = available_backends()
    cpu, cuda = compiled_module("_C"), compiled_module("_C_cuda")
    notes = {
        "reference": f"plain PyTorch {torch.__version__}",
        "cpu": (f"videobert._C, kernel variant {cpu.hkmeans_cpu_isa()}, OpenMP {'on' if cpu.openmp else 'off'}, "
                f"{torch.get_num_threads()} threads") if cpu else "videobert._C was not built (install from source with a C++ compiler)",
        "cuda": ("videobert._C_cuda on " + torch.cuda.get_device_name() if available["cuda"]
                 else "videobert._C_cuda built, but no CUDA device" if cuda
                 else "videobert._C_cuda was not built (no nvcc at install time, or VIDEOBERT_CUDA=0)"),
        "triton": ("Triton on " + ("CUDA" if torch.cuda.is_available() else "CPU interpreter (TRITON_INTERPRET=1, for tests)")
                   if available["triton"]
                   else "triton is not installed" if not triton_available()
                   else "triton is installed but there is no CUDA device" + ("" if triton_interpreted() else " (TRITON_INTERPRET=1 runs it on CPU)")),
    }
    lines = ["videobert kernel backends:"]
    lines += [f"  {name:<9} {'yes' if available[name] else 'no ':<4} {notes[name]}" for name in ("reference", "cpu", "cuda", "triton")]
    return "\n".join(lines)


def run_info(args: argparse.Namespace | None = None) -> int:
    print(describe_backends())
    return 0
