"""Every GPU check and figure in one run (``scripts/gpu_check.sh`` calls this): build with CUDA, run the
GPU tests, then the GPU benchmark pieces, write ``benchmarks/gpu_results.json`` and print a summary.

Pieces, in order (``--only`` picks some; each is also runnable alone, see benchmarks/gpu/<piece>.py):
tests (the tests marked ``gpu`` in the test files with GPU branches), hkmeans, heads, decode, extract, train. The run keeps to
a time budget (``--budget``, 480 s by default, for 8 minutes on one H100/H200): each piece has a
time cap, and a piece that cannot get its minimum in what is left is reported as not run. A piece
whose packages are missing (PyAV, DALI, ...) is reported as skipped with how to carry them; it is
not a failure. Results of earlier runs stay in the JSON file for the pieces not run this time.

Without a CUDA device it prints its "no GPU" line and exits 0 (``--smoke`` instead runs the pieces
at tiny sizes on the CPU, without building: a test of this script, not of a GPU).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))  # videobert.utils.io for the atomic write (pure Python, no build needed)

from videobert.utils.io import write_json_atomic  # noqa: E402

SCHEMA = "videobert.gpu_results/1"
PIECES = ("tests", "hkmeans", "heads", "decode", "extract", "train")
# seconds: (cap, least worth starting with); the caps add up to about 8 minutes with the build
TIME = {"build": (150, 60), "tests": (180, 60), "hkmeans": (60, 20), "heads": (75, 25), "decode": (60, 20),
        "extract": (75, 25), "train": (75, 25)}
# test files with GPU branches -> modules they import beyond torch, numpy and safetensors
TEST_FILES = {
    "tests/test_hkmeans_ops.py": [], "tests/test_masked_token_loss.py": [], "tests/test_visual_words_tree.py": [],
    "tests/test_gpu_attention.py": [], "tests/test_gpu_video.py": ["av"], "tests/test_video_dali.py": ["av", "nvidia.dali"],
}
NO_GPU = "gpu_check: no GPU (torch sees no CUDA device): nothing to check here; run it on a machine with one."


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="scripts/gpu_check.sh", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", action="append", metavar="PIECE",
                        help=f"run only these pieces (repeat, or comma-separate): {', '.join(PIECES)}")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "gpu_results.json", help="results file (JSON)")
    parser.add_argument("--budget", type=float, default=480.0, help="seconds for the whole run, the build included")
    parser.add_argument("--no-build", action="store_true", help="use the videobert Python already imports (built with CUDA)")
    parser.add_argument("--pytest-args", default="", help="extra arguments for the tests piece, which runs the tests "
                        "marked gpu (e.g. \"-k hkmeans -x\"; \"-m 'gpu or not gpu'\" for all of those files)")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes on any device, no build: tests this script")
    args = parser.parse_args(argv)
    chosen = [name.strip() for value in (args.only or []) for name in value.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in PIECES]
    if unknown:
        parser.error(f"--only: unknown piece(s) {', '.join(unknown)}; choose from {', '.join(PIECES)}")
    args.pieces = [p for p in PIECES if p in chosen] if chosen else list(PIECES)
    if args.budget <= 0:
        parser.error("--budget must be positive")
    return args


def host_info() -> dict:
    import torch

    info = {"python": platform.python_version(), "torch": torch.__version__, "cuda": torch.version.cuda,
            "cpus": os.cpu_count()}
    try:
        import triton
        info["triton"] = triton.__version__
    except ImportError:
        info["triton"] = None
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info.update(gpu=props.name, capability=f"{props.major}.{props.minor}", gpu_memory_gib=round(props.total_memory / 2**30, 1),
                    multiprocessors=props.multi_processor_count, gpus=torch.cuda.device_count())
    return info


class Runner:
    """Runs the pieces within the budget; ``self.env`` / ``self.cwd`` make subprocesses import the build."""

    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.deadline = time.monotonic() + args.budget
        self.env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.cwd = Path.cwd()
        if args.smoke:
            self.env.setdefault("TRITON_INTERPRET", "1")  # Triton on the CPU (the smoke run has no GPU)

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def budget_for(self, piece: str) -> float | None:
        """Seconds this piece may take, or None when less than its minimum is left."""
        cap, least = TIME[piece]
        left = self.left()
        return None if left < least else min(cap, left)

    def build(self, work: Path) -> dict:
        """``pip install --no-build-isolation --no-deps --target work/site .`` with CUDA demanded, for
        this GPU's compute capability unless VIDEOBERT_CUDA_ARCHS says otherwise."""
        import torch

        site = work / "site"
        major, minor = torch.cuda.get_device_capability(0)
        env = dict(self.env, VIDEOBERT_CUDA="1")
        env.setdefault("VIDEOBERT_CUDA_ARCHS", f"{major}{minor}")
        env.setdefault("CMAKE_BUILD_PARALLEL_LEVEL", str(os.cpu_count() or 4))
        command = [sys.executable, "-m", "pip", "install", "--no-build-isolation", "--no-deps", "--no-index", "--upgrade",
                   "--target", str(site), str(REPO)]
        record = {"command": " ".join(command), "cuda_archs": env["VIDEOBERT_CUDA_ARCHS"]}
        started = time.monotonic()
        done = _run(command, env, REPO, self.budget_for("build") or 1)
        record["seconds"] = round(time.monotonic() - started, 1)
        if done["status"] != "ok":
            return {**record, **done}
        # Everything after imports the build: its folder first on the path, and as the working directory
        # (so neither `python -m` nor pytest puts the source tree's videobert, which has no compiled modules, first).
        self.env["PYTHONPATH"] = os.pathsep.join([str(site)] + [p for p in [os.environ.get("PYTHONPATH")] if p])
        self.cwd = site
        probe = _run([sys.executable, "-c", "import videobert, videobert._C, videobert._C_cuda as c; print(c.__file__)"],
                     self.env, self.cwd, 60)
        if probe["status"] != "ok" or not probe["stdout"].strip().startswith(str(site)):
            return {**record, "status": "failed", "reason": "the built package does not import from the build folder",
                    "log_tail": probe.get("log_tail", probe["stdout"])}
        return {**record, "status": "ok", "module": probe["stdout"].strip()}

    def tests(self, seconds: float, work: Path) -> dict:
        files, skipped = [], {}
        for name, modules in TEST_FILES.items():
            missing = [m for m in modules if not _importable(m, self.env, self.cwd)]
            if missing:
                skipped[name] = f"needs {', '.join(missing)}, not installed here"
            else:
                files.append(str(REPO / name))
        report = work / "tests.xml"
        # -m gpu: the cases on CUDA tensors (CPU-only cases run in CI); --pytest-args comes after, so it may override
        command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rs", f"--rootdir={REPO}",
                   "-c", str(REPO / "pyproject.toml"), f"--junitxml={report}", "-m", "gpu",
                   *shlex.split(self.args.pytest_args), *files]
        done = _run(command, self.env, self.cwd, seconds)
        result = {"files": [str(Path(f).relative_to(REPO)) for f in files], "files_skipped": skipped}
        if report.exists():
            result.update(junit_counts(report))
        if done["status"] == "failed" and result.get("failed", 0) + result.get("errors", 0) > 0:
            done["reason"] = f"{result.get('failed', 0)} failed, {result.get('errors', 0)} errors"
        return {**done, **result}

    def piece(self, name: str, seconds: float, work: Path) -> dict:
        out = work / f"{name}.json"
        command = [sys.executable, str(REPO / "benchmarks" / "gpu" / f"{name}.py"), "--json", str(out)]
        done = _run(command + (["--smoke"] if self.args.smoke else []), self.env, self.cwd, seconds)
        if done["status"] == "ok":
            try:
                return {**done, **json.loads(out.read_text())}
            except (OSError, ValueError) as exc:
                return {**done, "status": "failed", "reason": f"the piece wrote no readable result: {exc}"}
        return done


def _run(command: list[str], env: dict, cwd: Path, seconds: float) -> dict:
    """Run ``command``; status ok / failed / timeout, its stdout, and the tail of its output on failure."""
    try:
        proc = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=seconds)
    except subprocess.TimeoutExpired as exc:
        tail = ((exc.stdout or b"").decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or ""))
        return {"status": "timeout", "reason": f"stopped after {seconds:.0f} s", "log_tail": tail[-3000:]}
    if proc.returncode == 0:
        return {"status": "ok", "stdout": proc.stdout}
    return {"status": "failed", "reason": f"exit code {proc.returncode}", "stdout": proc.stdout,
            "log_tail": (proc.stdout + proc.stderr)[-3000:]}


def _importable(module: str, env: dict, cwd: Path) -> bool:
    probe = f"import importlib.util, sys; sys.exit(0 if importlib.util.find_spec({module!r}) else 1)"
    try:
        return subprocess.run([sys.executable, "-c", probe], env=env, cwd=cwd, capture_output=True, timeout=60).returncode == 0
    except subprocess.SubprocessError:
        return False


def junit_counts(report: Path) -> dict:
    """tests / passed / failed / errors / skipped from a pytest JUnit XML report."""
    root = ET.parse(report).getroot()
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    counts = {key: int(suite.get(key, 0)) for key in ("tests", "failures", "errors", "skipped")}
    return {"tests": counts["tests"], "passed": counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"],
            "failed": counts["failures"], "errors": counts["errors"], "skipped": counts["skipped"]}


def load_previous(path: Path) -> dict:
    """The results file's pieces from earlier runs (kept for pieces not run now), or nothing."""
    try:
        previous = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return previous.get("pieces", {}) if previous.get("schema") == SCHEMA else {}


def summary_lines(results: dict) -> list[str]:
    lines = [f"gpu_check: {results['host'].get('gpu', 'no GPU')} ({results['host'].get('capability', '-')}), "
             f"torch {results['host']['torch']}, {results['seconds']:.0f} s; results in {results['file']}"]
    build = results.get("build")
    if build:
        lines.append(f"  build      {build['status']}" + (f" ({build['reason']})" if build.get("reason") else "")
                     + (f", archs {build.get('cuda_archs')}, {build.get('seconds', 0):.0f} s" if build["status"] == "ok" else ""))
    for name in results["ran"]:
        piece = results["pieces"][name]
        lines.append(f"  {name:<10} {piece['status']:<8} {_headline(name, piece)}")
    return lines


def _headline(name: str, piece: dict) -> str:
    if piece["status"] != "ok":
        return piece.get("reason", "")
    try:
        if name == "tests":
            return f"{piece['passed']} passed, {piece['failed']} failed, {piece['skipped']} skipped" + \
                (f"; files skipped: {', '.join(piece['files_skipped'])}" if piece["files_skipped"] else "")
        if name == "hkmeans":
            parts = [f"{dtype} {b} {row[b]['tflops']:.2f} TFLOP/s ({row[b]['of_matmul_peak']:.1%} of matmul, "
                     f"{row[b]['speedup_vs_cdist']:.1f}x cdist)" for dtype, row in piece["by_dtype"].items() for b in piece["backends"]]
            return "; ".join(parts)
        if name == "heads":
            rows = piece["variants"]
            ours = "triton" if "triton" in rows else "chunked_torch"
            memory = f", memory {rows[ours]['memory_vs_baseline']:.2f}x" if "memory_vs_baseline" in rows[ours] else ""
            return f"{ours}: time {rows[ours]['time_vs_baseline']:.2f}x {piece['baseline']}{memory}"
        if name == "decode":
            return "; ".join(f"{codec} pyav {row['pyav_clips_per_s']:.0f} clips/s" +
                             (f", dali {row['dali_over_pyav']:.2f}x" if "dali_over_pyav" in row else "")
                             for codec, row in piece["codecs"].items() if "pyav_clips_per_s" in row)
        if name == "extract":
            e2e = piece["end_to_end"]
            tail = (f", end to end {e2e['clips_per_s']:.0f} clips/s ({e2e['over_model_only']:.2f}x)" if "clips_per_s" in e2e
                    else f", end to end skipped: {e2e.get('skipped', '')[:60]}")
            return f"model only {piece['model_only']['clips_per_s']:.0f} clips/s" + tail
        if name == "train":
            return f"{piece['tokens_per_s']:,.0f} tokens/s, MFU {piece['mfu']:.1%}"
    except (KeyError, TypeError, ZeroDivisionError) as exc:
        return f"(summary unavailable: {type(exc).__name__} {exc})"
    return ""


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    if not args.smoke and not torch.cuda.is_available():
        print(NO_GPU)
        return 0
    started = time.monotonic()
    results = {"schema": SCHEMA, "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
               "host": host_info(), "smoke": args.smoke, "budget_s": args.budget, "file": str(args.out)}
    pieces = load_previous(args.out)
    runner = Runner(args)
    with tempfile.TemporaryDirectory(prefix="gpu_check.") as tmp:
        work = Path(tmp)
        runner.cwd = work  # not the source tree: `python -m pytest` would import its videobert (no compiled modules)
        if not (args.smoke or args.no_build):
            print("gpu_check: building with CUDA ...", flush=True)
            results["build"] = runner.build(work)
        ran = []
        for name in args.pieces:
            if results.get("build", {}).get("status", "ok") != "ok":
                pieces[name] = {"status": "not_run", "reason": "the build failed"}
            elif (seconds := runner.budget_for(name)) is None:
                pieces[name] = {"status": "not_run", "reason": f"time budget spent ({runner.left():.0f} s left)"}
            else:
                print(f"gpu_check: {name} ...", flush=True)
                piece_start = time.monotonic()
                outcome = runner.tests(seconds, work) if name == "tests" else runner.piece(name, seconds, work)
                outcome.pop("stdout", None)
                pieces[name] = {**outcome, "seconds": round(time.monotonic() - piece_start, 1),
                                "measured": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
            ran.append(name)
    results.update(seconds=time.monotonic() - started, pieces=pieces, ran=ran)
    write_json_atomic(args.out, results)
    print("\n".join(summary_lines(results)))
    failed = [n for n in ran if pieces[n]["status"] in ("failed", "timeout")] + \
        (["build"] if results.get("build", {}).get("status", "ok") != "ok" else [])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
