"""Build script: setuptools drives CMake (Ninja) to build the compiled kernels.

- ``videobert._C`` (C++/OpenMP) is always built.
- ``videobert._C_cuda`` is built when ``nvcc`` is found (``CUDACXX``, ``CUDA_HOME``/``CUDA_PATH``,
  ``/usr/local/cuda`` or ``PATH``). ``VIDEOBERT_CUDA=0`` skips it; ``VIDEOBERT_CUDA=1`` demands it
  and stops with a clear error when nvcc is missing. ``VIDEOBERT_CUDA_ARCHS`` overrides the CUDA
  architectures (default ``80;90``: A100 and H100/H200).
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
            args += [f"-DCMAKE_CUDA_COMPILER={nvcc}",
                     f"-DVIDEOBERT_CUDA_ARCHITECTURES={os.environ.get('VIDEOBERT_CUDA_ARCHS', '80;90')}"]
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


NVCC = cuda_wanted()
# Both modules come from one CMake build; listing _C_cuda lets setuptools copy it for --inplace.
setup(
    ext_modules=[CMakeExtension("videobert._C")] + ([CMakeExtension("videobert._C_cuda")] if NVCC else []),
    cmdclass={"build_ext": CMakeBuild},
)
