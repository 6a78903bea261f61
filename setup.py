"""Build script: setuptools drives CMake (Ninja) to build the compiled kernels.

- ``videobert._C`` (C++/OpenMP) is always built.
- ``videobert._C_cuda`` is built when ``nvcc`` is found (``CUDACXX``, ``CUDA_HOME``/``CUDA_PATH``,
  ``/usr/local/cuda`` or ``PATH``). ``VIDEOBERT_CUDA=0`` skips it; ``VIDEOBERT_CUDA=1`` demands it
  and stops with a clear error when nvcc is missing. CUDA architectures: by default machine code
  for compute capabilities 7.0 (V100), 7.5 (T4), 8.0 (A100), 8.6 (A10, RTX 30), 8.9 (L4, L40, RTX 40)
  and 9.0 (H100/H200), plus 9.0 PTX that newer GPUs compile when loading; capabilities the nvcc in
  use no longer supports are left out and named (CUDA 13 dropped 7.0, so there 7.0 GPUs are not
  covered). ``VIDEOBERT_CUDA_ARCHS`` overrides the list in CMake's syntax (e.g. ``90`` or ``80-real;90``).
- ``VIDEOBERT_NATIVE=1`` compiles the CPU kernels with ``-march=native``: fastest on the build
  machine, but the result only runs on CPUs like it. The default build is portable: the x86-64
  kernels carry AVX-512, AVX2 and baseline variants and pick one when loaded.

Nothing here imports torch: the kernels take raw pointers, so ``pip install .`` works with build
isolation and the same build serves any torch version. During development build in place with
``python setup.py build_ext --inplace`` (or ``pip install -e . --no-build-isolation``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent


def find_nvcc() -> str | None:
    """nvcc from $CUDACXX or $CUDA_HOME/$CUDA_PATH when one is set (an explicit setting is the only
    place looked at), else from /usr/local/cuda or PATH."""
    explicit = [os.environ.get("CUDACXX")] + [
        os.path.join(os.environ[var], "bin", "nvcc") for var in ("CUDA_HOME", "CUDA_PATH") if os.environ.get(var)
    ]
    explicit = [c for c in explicit if c]
    candidates = explicit or ["/usr/local/cuda/bin/nvcc", shutil.which("nvcc")]
    return next((c for c in candidates if c and os.path.isfile(c) and os.access(c, os.X_OK)), None)


def cuda_wanted() -> str | None:
    """Path of nvcc when _C_cuda should be built, else None; raises when it is demanded but absent."""
    setting = os.environ.get("VIDEOBERT_CUDA", "auto").strip().lower()
    if setting not in ("auto", "0", "1"):
        raise SystemExit(f"VIDEOBERT_CUDA must be 0, 1 or unset (auto); got {setting!r}")
    if setting == "0":
        return None
    nvcc = find_nvcc()
    if setting == "1" and nvcc is None:
        raise SystemExit(
            "VIDEOBERT_CUDA=1 demands the CUDA kernels (videobert._C_cuda), but nvcc was not found "
            "(looked at $CUDACXX / $CUDA_HOME/bin / $CUDA_PATH/bin when set, else /usr/local/cuda/bin and PATH). "
            "Install the CUDA toolkit or set CUDACXX, or build without CUDA with VIDEOBERT_CUDA=0."
        )
    return nvcc


# Compute capabilities of the default build, oldest first: Volta (7.0) to Hopper (9.0).
DEFAULT_CUDA_CAPABILITIES = ("70", "75", "80", "86", "89", "90")


def nvcc_capabilities(nvcc: str) -> set[str] | None:
    """Virtual architectures ``nvcc --list-gpu-arch`` lists (``compute_75`` -> "75"), None if it cannot say."""
    try:
        listed = subprocess.run([nvcc, "--list-gpu-arch"], capture_output=True, text=True, timeout=60, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return {line.strip().removeprefix("compute_") for line in listed.splitlines() if line.strip().startswith("compute_")}


def cuda_architectures(supported: set[str] | None) -> tuple[str, list[str]]:
    """(CMake CUDA_ARCHITECTURES for the default build, the default capabilities left out).

    Machine code (``-real``) for each default capability ``supported`` holds (all when None), and
    machine code plus PTX for the newest, so GPUs newer than the list still run the kernels."""
    kept = [c for c in DEFAULT_CUDA_CAPABILITIES if supported is None or c in supported]
    if not kept:
        raise SystemExit(f"this nvcc supports none of the compute capabilities {DEFAULT_CUDA_CAPABILITIES} "
                         f"(it lists {sorted(supported or ())}); set VIDEOBERT_CUDA_ARCHS")
    dropped = [c for c in DEFAULT_CUDA_CAPABILITIES if c not in kept]
    return ";".join([f"{c}-real" for c in kept[:-1]] + [kept[-1]]), dropped


class CMakeExtension(Extension):
    def __init__(self, name: str) -> None:
        super().__init__(name, sources=[])


class CMakeBuild(build_ext):
    """Configure and build CMakeLists.txt once; it produces every extension module."""

    def build_extensions(self) -> None:
        import pybind11  # a build requirement (pyproject.toml [build-system])

        out_dir = Path(self.get_ext_fullpath(self.extensions[0].name)).resolve().parent
        build_dir = Path(self.build_temp).resolve() / "cmake"
        build_dir.mkdir(parents=True, exist_ok=True)
        nvcc = NVCC
        args = [
            f"-DCMAKE_LIBRARY_OUTPUT_DIRECTORY={out_dir}",
            f"-DPython_EXECUTABLE={sys.executable}",
            f"-Dpybind11_DIR={pybind11.get_cmake_dir()}",
            "-DCMAKE_BUILD_TYPE=Release",
            f"-DVIDEOBERT_NATIVE={'ON' if os.environ.get('VIDEOBERT_NATIVE') == '1' else 'OFF'}",
            f"-DVIDEOBERT_CUDA={'ON' if nvcc else 'OFF'}",
        ]
        if nvcc:
            archs = os.environ.get("VIDEOBERT_CUDA_ARCHS")
            if not archs:
                archs, dropped = cuda_architectures(nvcc_capabilities(nvcc))
                if dropped:
                    print(f"videobert: {nvcc} cannot build for compute capability {', '.join(dropped)}: left out")
            print(f"videobert: CUDA architectures {archs}")
            args += [f"-DCMAKE_CUDA_COMPILER={nvcc}", f"-DVIDEOBERT_CUDA_ARCHITECTURES={archs}"]
        if shutil.which("ninja") or _pip_ninja():
            args += ["-G", "Ninja"]
        print(f"videobert: building _C{' and _C_cuda (nvcc: ' + nvcc + ')' if nvcc else ' (no CUDA kernels)'}")
        subprocess.check_call(["cmake", str(ROOT), *args], cwd=build_dir)
        jobs = os.environ.get("CMAKE_BUILD_PARALLEL_LEVEL") or str(os.cpu_count() or 2)
        subprocess.check_call(["cmake", "--build", ".", "--parallel", jobs], cwd=build_dir)


def _pip_ninja() -> bool:
    """The `ninja` build requirement puts its binary on PATH; accept the module's too."""
    try:
        import ninja
    except ImportError:
        return False
    os.environ["PATH"] = ninja.BIN_DIR + os.pathsep + os.environ.get("PATH", "")
    return True


# pip's build backend runs this file as __main__ too; the guard lets tests import the helpers above.
if __name__ == "__main__":
    NVCC = cuda_wanted()
    # Both modules come from one CMake build; listing _C_cuda lets setuptools copy it for --inplace.
    setup(
        ext_modules=[CMakeExtension("videobert._C")] + ([CMakeExtension("videobert._C_cuda")] if NVCC else []),
        cmdclass={"build_ext": CMakeBuild},
    )
