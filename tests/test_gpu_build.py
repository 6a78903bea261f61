"""The CUDA build's architectures (setup.py): compute capability 7.0-9.0 machine code plus 9.0 PTX,
less what the nvcc in use no longer builds (CUDA 13 dropped 7.0)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("videobert_setup", ROOT / "setup.py")
setup_py = importlib.util.module_from_spec(spec)
spec.loader.exec_module(setup_py)  # its setup() call runs only as __main__


def test_default_is_volta_to_hopper_with_hopper_ptx():
    every = {"70", "75", "80", "86", "89", "90", "100"}
    assert setup_py.cuda_architectures(every) == ("70-real;75-real;80-real;86-real;89-real;90", [])
    assert setup_py.cuda_architectures(None)[0] == "70-real;75-real;80-real;86-real;89-real;90"


def test_capabilities_nvcc_dropped_are_left_out_and_named():
    cuda13 = {"75", "80", "86", "87", "88", "89", "90", "100", "103", "110", "120", "121"}
    assert setup_py.cuda_architectures(cuda13) == ("75-real;80-real;86-real;89-real;90", ["70"])
    with pytest.raises(SystemExit, match="supports none of the compute capabilities"):
        setup_py.cuda_architectures({"100", "120"})


def test_the_nvcc_here_lists_what_it_builds():
    nvcc = setup_py.find_nvcc()
    if nvcc is None:
        pytest.skip("no nvcc on this machine")
    supported = setup_py.nvcc_capabilities(nvcc)
    assert supported and "90" in supported
    archs, dropped = setup_py.cuda_architectures(supported)
    assert archs.endswith(";90") and all(c not in supported for c in dropped)
