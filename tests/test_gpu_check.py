"""scripts/gpu_check.sh, for what a machine without a GPU can check: its arguments, its "no GPU" line
and exit 0, and (``--smoke``: every piece at tiny sizes on the CPU, interpreted Triton) the results
file's schema, the summary, and that a partial run keeps earlier pieces' results."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "gpu_check.sh"
sys.path.insert(0, str(ROOT / "benchmarks" / "gpu"))
spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "benchmarks" / "gpu" / "check.py")
check = importlib.util.module_from_spec(spec)
spec.loader.exec_module(check)
import gpu_common  # noqa: E402


def run_script(*args: str, hide_gpu: bool = False, timeout: float = 600) -> subprocess.CompletedProcess:
    env = dict(os.environ, TRITON_INTERPRET="1", PYTHON=sys.executable)
    if hide_gpu:
        env["CUDA_VISIBLE_DEVICES"] = ""
    return subprocess.run(["bash", str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=timeout)


def test_without_a_gpu_it_says_so_and_exits_0(tmp_path):
    out = tmp_path / "results.json"
    result = run_script("--out", str(out), hide_gpu=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == check.NO_GPU
    assert not out.exists()  # nothing measured, nothing written


def test_bad_arguments_are_refused_before_anything_runs():
    result = run_script("--only", "tests,warp")
    assert result.returncode == 2 and "--only: unknown piece(s) warp; choose from tests, hkmeans" in result.stderr
    assert run_script("--budget", "0").returncode == 2


def test_only_takes_repeats_and_commas_and_keeps_the_pieces_order():
    assert check.parse_args([]).pieces == list(check.PIECES)
    assert check.parse_args(["--only", "train,tests", "--only", "heads"]).pieces == ["tests", "heads", "train"]
    assert check.parse_args(["--only", "decode"]).pieces == ["decode"]


def test_missing_packages_name_the_wheel_to_carry():
    with pytest.raises(gpu_common.MissingPackages, match="decoding needs no_such_module_xyz, not installed here"):
        gpu_common.require(["no_such_module_xyz", "numpy"], "decoding")
    hint = gpu_common.carry_hint(["av", "nvidia.dali"])
    assert "pip download --no-deps --only-binary=:all: --python-version 3.12" in hint and "av nvidia-dali-cuda120" in hint


def test_junit_counts(tmp_path):
    report = tmp_path / "r.xml"
    report.write_text('<testsuites><testsuite name="pytest" errors="1" failures="2" skipped="3" tests="10"/></testsuites>')
    assert check.junit_counts(report) == {"tests": 10, "passed": 4, "failed": 2, "errors": 1, "skipped": 3}


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """One smoke run of every piece (the tests piece on one quick test), then a run of `train` alone
    with too little time left for it."""
    out = tmp_path_factory.mktemp("gpu_check") / "gpu_results.json"
    first = run_script("--smoke", "--out", str(out), "--pytest-args", "-m 'not gpu' -k test_auto_uses_dali")
    assert first.returncode == 0, first.stdout + first.stderr
    results = json.loads(out.read_text())
    second = run_script("--smoke", "--out", str(out), "--only", "train", "--budget", "1")
    assert second.returncode == 0, second.stdout + second.stderr
    return first, results, json.loads(out.read_text())


def test_smoke_run_writes_every_piece_in_the_schema(smoke):
    first, results, _ = smoke
    assert results["schema"] == check.SCHEMA and results["smoke"] is True
    assert results["ran"] == list(check.PIECES)
    assert {"python", "torch", "cuda", "triton", "cpus"} <= set(results["host"])
    for name in check.PIECES:
        piece = results["pieces"][name]
        assert piece["status"] == "ok", (name, piece)
        assert piece["seconds"] > 0 and piece["measured"]
    pieces = results["pieces"]
    assert pieces["tests"]["passed"] == 1 and pieces["tests"]["failed"] == 0
    assert pieces["hkmeans"]["by_dtype"]["float32"]["triton"]["agree"] == 1.0
    assert pieces["hkmeans"]["by_dtype"]["float32"]["cdist_argmin"]["agree"] == 1.0
    heads = pieces["heads"]["variants"]
    assert set(heads) == set(check_heads_variants())
    assert all(abs(row["loss_minus_baseline"]) < 1e-3 for row in heads.values())  # every variant computes the same loss
    assert pieces["train"]["loss_finite"] and pieces["train"]["tokens_per_s"] > 0
    assert pieces["extract"]["end_to_end"]["clips"] > 0 and pieces["extract"]["end_to_end"]["failed"] == 0
    assert pieces["decode"]["codecs"]["h264"]["clips"] >= 1
    lines = first.stdout.splitlines()
    summary = lines[lines.index(next(line for line in lines if line.startswith("gpu_check: no GPU"))):]
    assert [line.split()[0] for line in summary[1:]] == list(check.PIECES)


def test_a_partial_run_keeps_the_other_pieces_results_and_its_budget(smoke):
    _, before, after = smoke
    assert after["ran"] == ["train"]
    assert after["pieces"]["train"]["status"] == "not_run" and "time budget spent" in after["pieces"]["train"]["reason"]
    for name in check.PIECES[:-1]:
        assert after["pieces"][name] == before["pieces"][name]


def check_heads_variants() -> list[str]:
    import heads

    return list(heads.VARIANTS)
