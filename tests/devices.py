"""Where each kernel backend's tests run on this host, so that one test body covers both kinds of host.

On a GPU host the Triton and CUDA backends run on CUDA tensors; on a CPU-only host Triton runs in its
interpreter on CPU tensors (conftest.py sets ``TRITON_INTERPRET=1`` before anything imports triton)
and the CUDA cases are skipped with their reason. The interpreter gets bf16 wrong, so bf16 Triton
cases run on a GPU only (DESIGN.md).
"""

from __future__ import annotations

import pytest
import torch

from videobert.ops import available_backends
from videobert.ops.backends import triton_device

TRITON_DEVICE = triton_device()  # "cuda", "cpu" (interpreter) or None
DTYPES = (torch.float32, torch.float16, torch.bfloat16)


def backend_on(backend: str, device: str | None) -> pytest.param:
    """A ``(backend, device)`` parameter: marked ``gpu`` on "cuda" (conftest skips it without a CUDA
    device), skipped with the reason when no device here runs the backend (``device`` None)."""
    marks = [pytest.mark.gpu] if device == "cuda" else []
    if device is None:
        marks.append(pytest.mark.skip(reason=f"no device runs the {backend} backend here (triton missing)"))
    return pytest.param(backend, device, marks=marks, id=f"{backend}-{device}")


def skip_unavailable(backend: str) -> None:
    """Skip, naming the backend, when this installation lacks it (e.g. ``_C_cuda`` not built)."""
    if not available_backends()[backend]:
        pytest.skip(f"backend {backend!r} is not built or has no device here")


def skip_unsupported_dtype(backend: str, device: str, dtype: torch.dtype) -> None:
    """Skip bf16 on the Triton interpreter (it computes bf16 wrongly; a GPU runs those cases)."""
    if dtype == torch.bfloat16 and backend == "triton" and device == "cpu":
        pytest.skip("the Triton interpreter gets bf16 wrong: bf16 Triton cases run on a GPU")


def _cpu_isa_missing(isa: str) -> str:
    """Why the kernels' ISA variant ``isa`` cannot run here ("" when it can)."""
    import os

    try:
        import videobert._C as compiled
    except ImportError:
        return "videobert._C is not built"
    previous = os.environ.get("VIDEOBERT_ISA")
    os.environ["VIDEOBERT_ISA"] = isa
    try:
        compiled.cpu_isa()
        return ""
    except ValueError:
        return f"this CPU lacks the {isa} instructions"
    finally:
        if previous is None:
            del os.environ["VIDEOBERT_ISA"]
        else:
            os.environ["VIDEOBERT_ISA"] = previous


# The ISA variants of the C++ CPU kernels (csrc/cpu_dispatch.h), each a parameter for the `cpu_isa`
# fixture; a variant this CPU lacks (or a checkout without the compiled module) is skipped with that reason.
CPU_ISAS = [pytest.param(isa, id=isa, marks=[pytest.mark.skip(reason=missing)] if (missing := _cpu_isa_missing(isa)) else [])
            for isa in ("avx512", "avx2", "baseline")]


@pytest.fixture
def cpu_isa(request, monkeypatch):
    """Forces the CPU kernels' ISA variant named by the test's ``cpu_isa`` parameter (VIDEOBERT_ISA)."""
    monkeypatch.setenv("VIDEOBERT_ISA", request.param)
    return request.param
