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
        "cpu": (f"videobert._C, kernel variant {cpu.cpu_isa()}, OpenMP {'on' if cpu.openmp else 'off'}, "
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


def cpu_model() -> str:
    """The CPU's model name with its family and model numbers (``/proc/cpuinfo``): two machines of one
    marketing name ("AMD EPYC") can be generations apart, and their kernels' speeds with them."""
    import platform

    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if not line.strip():
                    break  # the first processor's block says it all
                key, _, value = line.partition(":")
                fields.setdefault(key.strip(), value.strip())
    except OSError:
        return platform.processor() or platform.machine()
    name = fields.get("model name", platform.processor() or platform.machine())
    return f"{name} (family {fields['cpu family']} model {fields['model']})" if "cpu family" in fields else name


def describe_machine() -> str:
    """One line for every benchmark figure: CPU model, kernel variant, torch, threads, GPU."""
    import torch

    from videobert.ops.backends import compiled_module

    cpu = compiled_module("_C")
    variant = cpu.cpu_isa() if cpu else "not built"
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "none"
    return (f"machine: CPU {cpu_model()}, {torch.get_num_threads()} torch threads, kernel variant {variant}; "
            f"GPU {gpu}; torch {torch.__version__}")


def run_info(args: argparse.Namespace | None = None) -> int:
    print(describe_backends())
    print(describe_machine())
    return 0
