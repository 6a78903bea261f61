"""The build contract: no torch in the compiled modules, CUDA switch errors, and a package that
works without its compiled modules."""

import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_setup(env_overrides: dict[str, str]) -> subprocess.CompletedProcess:
    env = {**os.environ, **env_overrides}
    return subprocess.run([sys.executable, "setup.py", "--version"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_cuda_demanded_without_nvcc_fails_clearly():
    result = run_setup({"VIDEOBERT_CUDA": "1", "CUDA_HOME": "/nonexistent-cuda", "CUDACXX": ""})
    assert result.returncode != 0
    assert "VIDEOBERT_CUDA=1 demands the CUDA kernels" in result.stderr and "nvcc was not found" in result.stderr


def test_cuda_switch_rejects_unknown_values():
    result = run_setup({"VIDEOBERT_CUDA": "maybe"})
    assert result.returncode != 0 and "VIDEOBERT_CUDA must be 0, 1 or unset" in result.stderr


def test_cuda_skipped_builds_nothing_for_cuda():
    result = run_setup({"VIDEOBERT_CUDA": "0", "CUDA_HOME": "/nonexistent-cuda"})
    assert result.returncode == 0 and result.stdout.strip() == "0.1.0"


@pytest.mark.parametrize("module", ["_C", "_C_cuda"])
def test_compiled_modules_do_not_depend_on_torch(module):
    spec = importlib.util.find_spec(f"videobert.{module}")
    if spec is None:
        if module == "_C":
            pytest.fail("videobert._C is not built: every install compiles it (pip install . or setup.py build_ext --inplace)")
        pytest.skip("videobert._C_cuda is built only where nvcc is found")
    data = Path(spec.origin).read_bytes()
    for lib in (b"libtorch", b"libc10", b"libtorch_python"):
        assert lib not in data, f"{spec.origin} links {lib.decode()}"


def test_package_works_without_compiled_modules():
    script = textwrap.dedent("""
        import sys, importlib.abc
        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name in ("videobert._C", "videobert._C_cuda"):
                    raise ImportError("blocked for the test: " + name)
        sys.meta_path.insert(0, Block())
        import numpy as np, torch
        from videobert.ops import available_backends, hkmeans_assign
        from videobert.ops.cli import describe_backends
        from videobert.visual_words import HierarchicalKMeans
        assert available_backends()["cpu"] is False and available_backends()["cuda"] is False
        x = np.random.default_rng(0).normal(size=(200, 6)).astype(np.float32)
        tree = HierarchicalKMeans(levels=2, branching=3).fit(x, progress=False)
        assert tree.assign(x).shape == (200,)
        try:
            hkmeans_assign(torch.from_numpy(x), tree.centroids, 2, 3, backend="cpu")
        except RuntimeError as e:
            assert "not available" in str(e)
        else:
            raise AssertionError("the cpu backend should be missing")
        print(describe_backends())
    """)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("TRITON_INTERPRET", None)
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "videobert._C was not built" in result.stdout
    assert "videobert._C_cuda was not built" in result.stdout
