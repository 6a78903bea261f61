"""Stopping a run stops all of it.

SIGTERM, SIGINT and SIGKILL to the top process of `videobert demo --size small` (during pretraining
on two DeepSpeed CPU ranks) and of `videobert extract` (during decoding, two worker processes)
leave no process of the run alive within the grace period plus a few seconds; the stopped command
names its stage and exits 143 / 130; a second run on the live directory is refused at once; the
rerun, through a lock the killed run left behind, finishes with the outputs of an uninterrupted run.

Each run's processes are found by a marker in their environment (/proc/<pid>/environ), which every
descendant inherits: the deepspeed launcher, its ranks, DataLoader workers. Runs start in a session
of their own so that no signal meant for them reaches pytest.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from videobert.cli import main
from videobert.features import iter_video_features
from videobert.utils.dirlock import LOCK_FILE
from videobert.utils.processes import process_group
from videobert.video.synthetic import write_video

MARK = "VIDEOBERT_TEST_RUN_MARK"
GRACE_S = 15.0          # VIDEOBERT_STOP_GRACE of every run here
FEW_S = 5.0             # "the grace period plus a few seconds"
DEMO_STEPS = 100        # enough training (several seconds) to be caught mid-run
DEMO = ["demo", "--size", "small", "--steps", str(DEMO_STEPS)]
EXTRACT = ["extract", "--random-weights", "--workers", "2", "--fps", "8", "--clip-frames", "8", "--size", "32",
           "--batch-size", "4", "--no-progress"]


# ---------------------------------------------------------------------------------------- helpers
def videobert(*args: str) -> list[str]:
    return [sys.executable, "-m", "videobert", *args]


class Run:
    """One command in a session of its own, its output in a file, its processes (and all their
    descendants) marked by a unique environment variable."""

    def __init__(self, command: list[str], log: Path, ignore_sigint: bool = False):
        self.token = uuid.uuid4().hex
        self.log = log
        env = {**os.environ, MARK: self.token, "VIDEOBERT_STOP_GRACE": str(GRACE_S)}
        # ignore_sigint: as a job started with `&` from a script inherits it (why `kill -INT` was ignored)
        preexec = (lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if ignore_sigint else None
        with open(log, "w") as out:
            self.process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT,
                                            start_new_session=True, preexec_fn=preexec)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def processes(self) -> list[int]:
        """Live (not zombie) processes that carry this run's marker."""
        mark = f"{MARK}={self.token}".encode()
        found = []
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                environ = Path(f"/proc/{entry.name}/environ").read_bytes()
                state = Path(f"/proc/{entry.name}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except (OSError, IndexError):
                continue
            if mark in environ.split(b"\0") and state not in "ZX":
                found.append(int(entry.name))
        return found

    def command_lines(self) -> list[str]:
        lines = []
        for pid in self.processes():
            try:
                lines.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
            except OSError:
                pass
        return lines

    def wait_until(self, condition, what: str, timeout: float = 300.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert self.process.poll() is None, f"the run ended (exit {self.process.returncode}) before {what}:\n{self.output()[-3000:]}"
            assert time.monotonic() < deadline, f"no {what} after {timeout} s:\n{self.output()[-3000:]}"
            time.sleep(0.05)

    def stop_with(self, signum: int) -> float:
        """Send ``signum`` to the top process; return the seconds until no process of the run is left."""
        sent = time.monotonic()
        self.process.send_signal(signum)
        limit = FEW_S if signum == signal.SIGKILL else GRACE_S + FEW_S
        while self.processes() or self.process.poll() is None:
            elapsed = time.monotonic() - sent
            if elapsed > limit:
                left = "\n".join(self.command_lines())
                for pid in self.processes():  # leave nothing behind for the next test
                    os.kill(pid, signal.SIGKILL)
                pytest.fail(f"{signal.Signals(signum).name}: processes of the run still alive after {elapsed:.1f} s:\n{left}")
            time.sleep(0.05)
        return time.monotonic() - sent

    def finish(self, timeout: float = 600.0) -> int:
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            pytest.fail(f"the run did not finish in {timeout} s:\n{self.output()[-3000:]}")


def lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def refused_in_process(args: list[str]) -> tuple[int, float]:
    """Run the command in this process (no interpreter start-up to time) and time its refusal."""
    started = time.perf_counter()
    code = main(args)
    return code, time.perf_counter() - started


def assert_stopped_message(run: Run, signum: int, stage: str | None) -> None:
    name = signal.Signals(signum).name
    where = f" in stage '{stage}'" if stage else ""
    assert f"stopped by {name}{where}; what it finished is kept: rerun the same command to resume" in run.output(), run.output()[-3000:]


# ------------------------------------------------------------------ the pieces, on small commands
def test_stop_group_asks_then_kills_the_whole_tree(tmp_path):
    """On the parent's own error the group gets SIGTERM; a tree that ignores it (bash and the sleeps
    inherit the ignored disposition) is SIGKILLed once the grace period is over, all of it."""
    script = "trap '' TERM; sleep 300 & sleep 300 & echo started; wait"
    started = time.monotonic()
    with pytest.raises(RuntimeError, match="the parent's own error"):
        with process_group(["bash", "-c", script], grace_s=1.0, stdout=subprocess.PIPE) as process:
            assert process.stdout.readline() == b"started\n"
            members = [p for p in os.listdir("/proc") if p.isdigit() and _pgid(int(p)) == process.pid]
            assert len(members) == 3  # bash and two sleeps
            raise RuntimeError("the parent's own error")
    assert 1.0 <= time.monotonic() - started < 1.0 + FEW_S
    assert not [p for p in os.listdir("/proc") if p.isdigit() and _pgid(int(p)) == process.pid and _state(int(p)) not in "ZX"]


def _pgid(pid: int) -> int:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return -1


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "X"


OWNER_SCRIPT = """
import subprocess, sys, time
from videobert.utils.processes import process_group
# child: a launcher that starts a grandchild which arms watch_owner() (as a deepspeed rank does)
grandchild = "from videobert.utils.processes import watch_owner; import time; watch_owner(); print('armed', flush=True); time.sleep(300)"
launcher = f"import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', {grandchild!r}]); time.sleep(300)"
with process_group([sys.executable, '-c', launcher]) as process:
    time.sleep(300)
"""


@pytest.mark.parametrize("middle_dies_first", [False, True])
def test_sigkill_of_the_owner_takes_children_and_grandchildren(tmp_path, middle_dies_first):
    """PR_SET_PDEATHSIG ends the direct child, watch_owner() the grandchild (which no death signal
    reaches); the grandchild watches the owner itself, so the end of the process between them
    (the deepspeed runner exits at once on SIGTERM) does not end it."""
    run = Run([sys.executable, "-c", OWNER_SCRIPT], tmp_path / "owner.log")
    run.wait_until(lambda: "armed" in run.output(), "grandchild armed", timeout=60)
    assert len(run.processes()) == 3
    if middle_dies_first:
        middle = next(pid for pid in run.processes() if _parent(pid) == run.process.pid)
        os.kill(middle, signal.SIGKILL)
        time.sleep(2.0)  # four of the grandchild's polls, were it polling its parents
        assert len(run.processes()) == 2  # the owner and the grandchild
    run.stop_with(signal.SIGKILL)


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def test_signal_exit_codes_and_stage_name(tmp_path):
    """The stage runner names the stopped stage and keeps it unfinished; the command exits 128 + signal."""
    from videobert.demo.stages import Stage, run_stages
    from videobert.utils.manifest import Manifest
    from videobert.utils.stopping import Stopped, stop_on_signals

    def stops() -> dict:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the signal arrives first
        return {}

    stages = [Stage("first", lambda: {"ok": 1}, "finishes"), Stage("second", stops, "is stopped"), Stage("third", dict, "never runs")]
    with stop_on_signals(), pytest.raises(Stopped) as stopped:
        run_stages(stages, tmp_path / "stages.jsonl")
    assert (stopped.value.stage, stopped.value.exit_code) == ("second", 143)
    manifest = Manifest(tmp_path / "stages.jsonl")
    assert manifest.status("first") == "done" and manifest.status("second") == "stopped" and manifest.status("third") is None
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # pytest's own handlers are back
    assert Stopped(signal.SIGINT).exit_code == 130


# ------------------------------------------------------------------------------- videobert extract
@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("stop_videos")
    for i in range(14):  # 2 to 3 clips each
        write_video(root / f"v{i:02d}.mp4", fps=30, frames=60 + 15 * (i % 3), width=96, height=72, textured=i % 2 == 0)
    return root


@pytest.fixture(scope="module")
def extracted(tmp_path_factory, videos):
    """An uninterrupted extraction: the reference for the resumed one."""
    out = tmp_path_factory.mktemp("extract_reference")
    run = Run(videobert(*EXTRACT, "--videos", str(videos), "--out", str(out / "features")), out / "log.txt")
    assert run.finish() == 0, run.output()[-3000:]
    return {video_id: (features, times) for video_id, features, times in iter_video_features(out / "features")}


def test_extract_stopped_three_ways_then_resumed(tmp_path, videos, extracted):
    out = tmp_path / "features"
    manifest = out / "manifest.jsonl"
    args = [*EXTRACT, "--videos", str(videos), "--out", str(out)]
    killed_pid = None
    for number, signum in enumerate((signal.SIGTERM, signal.SIGINT, signal.SIGKILL)):
        done_before = lines(manifest)
        run = Run(videobert(*args), tmp_path / f"run{number}.log", ignore_sigint=signum == signal.SIGINT)
        run.wait_until(lambda: lines(manifest) > done_before, "video finished")
        assert len(run.processes()) == 3, run.command_lines()  # the command and its two decoding workers
        if number == 0:
            code, seconds = refused_in_process([*EXTRACT, "--videos", str(videos), "--out", str(out)])
            assert code == os.EX_TEMPFAIL and seconds < 1.0
        run.stop_with(signum)
        if signum == signal.SIGKILL:
            killed_pid = run.process.pid
        else:
            assert run.process.returncode == 128 + signum, run.output()[-3000:]
            assert_stopped_message(run, signum, None)
        assert lines(manifest) < len(extracted), "the run finished before it was stopped"
    # The killed run's lock file still names it, and does not block the rerun.
    assert json.loads((out / LOCK_FILE).read_text())["pid"] == killed_pid
    final = Run(videobert(*args), tmp_path / "final.log")
    assert final.finish() == 0, final.output()[-3000:]
    assert "skipped" in final.output() and not final.processes()
    resumed = {video_id: (features, times) for video_id, features, times in iter_video_features(out)}
    assert sorted(resumed) == sorted(extracted)
    for video_id, (features, times) in extracted.items():
        np.testing.assert_allclose(resumed[video_id][0], features, rtol=1e-4, atol=1e-5, err_msg=video_id)
        np.testing.assert_array_equal(resumed[video_id][1], times)


# ---------------------------------------------------------------------------------- videobert demo
def stage_status(out: Path, stage: str) -> str | None:
    """The demo manifest's last word on ``stage``."""
    path = out / "stages.jsonl"
    records = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    return next((r["status"] for r in reversed(records) if r["key"] == stage), None)


def test_demo_stopped_three_ways_during_pretraining_then_resumed(tmp_path):
    out = tmp_path / "demo"
    args = [*DEMO, "--out", str(out)]
    pretrain = out / "pretrain"

    def ranks(run: Run) -> int:
        return sum("videobert.train.launcher" in line and "deepspeed" not in line for line in run.command_lines())

    # SIGTERM while the ranks train: they checkpoint; the command names the stage and exits 143.
    run = Run(videobert(*args), tmp_path / "sigterm.log")
    run.wait_until(lambda: (pretrain / "metrics.jsonl").exists(), "training step logged")
    assert ranks(run) == 2, run.command_lines()
    code, seconds = refused_in_process(args)  # a second demo on the live directory
    assert code == os.EX_TEMPFAIL and seconds < 1.0
    run.stop_with(signal.SIGTERM)
    assert run.process.returncode == 143, run.output()[-3000:]
    assert_stopped_message(run, signal.SIGTERM, "pretrain")
    checkpointed = int((pretrain / "checkpoints" / "latest").read_text().strip().removeprefix("step_"))
    assert 5 <= checkpointed < DEMO_STEPS
    assert stage_status(out, "corpus") == "done" and stage_status(out, "pretrain") == "stopped"

    # The reference: the same stages before pretraining (copied), then pretraining uninterrupted.
    # It is stopped once its model is written (SIGTERM in a stage without child processes).
    reference = tmp_path / "reference"
    for name in ("data", "features", "visual_words", "corpus"):
        shutil.copytree(out / name, reference / name)
    for name in ("stages.jsonl", "demo_config.json"):
        shutil.copy(out / name, reference / name)
    run = Run(videobert(*DEMO, "--out", str(reference)), tmp_path / "reference.log")
    run.wait_until(lambda: stage_status(reference, "pretrain") == "done", "reference pretrained", timeout=600)
    run.stop_with(signal.SIGTERM)
    assert run.process.returncode == 143, run.output()[-3000:]
    # a stage after pretraining: evaluate, or caption when evaluate ended within the poll interval
    assert any(f"stopped by SIGTERM in stage '{stage}'" in run.output() for stage in ("evaluate", "caption")), run.output()[-3000:]
    assert stage_status(reference, "pretrain") == "done"

    # SIGINT (inherited as ignored, as under `cmd &` in a script) while the ranks start: exit 130.
    run = Run(videobert(*args), tmp_path / "sigint.log", ignore_sigint=True)
    run.wait_until(lambda: ranks(run) == 2, "ranks started")
    run.stop_with(signal.SIGINT)
    assert run.process.returncode == 130, run.output()[-3000:]
    assert_stopped_message(run, signal.SIGINT, "pretrain")

    # SIGKILL: the launcher dies with the command (death signal), the ranks with it (watch_owner).
    run = Run(videobert(*args), tmp_path / "sigkill.log")
    run.wait_until(lambda: ranks(run) == 2, "ranks started")
    run.stop_with(signal.SIGKILL)
    assert json.loads((out / LOCK_FILE).read_text())["pid"] == run.process.pid  # left behind ...

    run = Run(videobert(*args), tmp_path / "final.log")  # ... and no obstacle
    assert run.finish() == 0, run.output()[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert report["resumed_stages"] == ["generate", "extract", "visual_words", "corpus"]
    records = [json.loads(line) for line in (reference / "stages.jsonl").read_text().splitlines()]
    expected = next(r["result"] for r in records if r["key"] == "pretrain" and r["status"] == "done")
    assert report["pretrain"]["steps"] == expected["steps"] == DEMO_STEPS
    assert report["pretrain"]["final_loss"] == pytest.approx(expected["final_loss"], rel=1e-5)
    model, expected_model = (load_file(d / "pretrain" / "model" / "model.safetensors") for d in (out, reference))
    assert model.keys() == expected_model.keys()
    for name, tensor in expected_model.items():
        torch.testing.assert_close(model[name], tensor, rtol=0, atol=1e-6, msg=name)
