"""One writer per output directory: a live holder's directory is refused at once, naming it; a
lock left by a killed holder never blocks; shards of one job share a directory. The holders are
real separate processes (the kernel's flock is what is tested), the refusals the real commands."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from videobert.cli import main
from videobert.train.config import TrainConfig
from videobert.train.launcher import launch
from videobert.utils.dirlock import LOCK_FILE, DirectoryInUse, lock_directory, shard_lock_name

HOLDER = """
import sys, time
from videobert.utils.dirlock import lock_directory
with lock_directory(sys.argv[1], sys.argv[2]):
    print("locked", flush=True)
    time.sleep(600)
"""


@pytest.fixture
def holder(tmp_path):
    """Start a separate process holding ``directory``'s lock (or a shard's); yields the starter."""
    started = []

    def start(directory, name=LOCK_FILE) -> subprocess.Popen:
        process = subprocess.Popen([sys.executable, "-c", HOLDER, str(directory), name], stdout=subprocess.PIPE,
                                   start_new_session=True)
        started.append(process)
        assert process.stdout.readline() == b"locked\n"
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait()


def test_live_holder_refuses_every_command_at_once(tmp_path, holder):
    out = tmp_path / "out"
    process = holder(out)
    with pytest.raises(DirectoryInUse, match=f"in use by process {process.pid} on .*-c {out}"):
        with lock_directory(out):
            pass
    commands = {
        "demo": ["demo", "--size", "small", "--out", str(out)],
        "extract": ["extract", "--random-weights", "--videos", str(tmp_path / "videos"), "--out", str(out)],
        "pretrain": ["pretrain", "--config", "tiny", "--corpus", str(tmp_path / "corpus"), "--out", str(out)],
    }
    for name, args in commands.items():
        started = time.perf_counter()
        assert main(args) == os.EX_TEMPFAIL, name
        assert time.perf_counter() - started < 1.0, name
    assert sorted(p.name for p in out.iterdir()) == [LOCK_FILE]  # nothing was written
    with pytest.raises(DirectoryInUse, match=str(process.pid)):  # launch() too, before it starts any rank
        launch(TrainConfig(out=str(out)), num_procs=2)


def test_message_of_a_refused_command(tmp_path, holder):
    out = tmp_path / "out"
    process = holder(out)
    refused = subprocess.run([sys.executable, "-m", "videobert", "demo", "--size", "small", "--out", str(out)],
                             capture_output=True, text=True, timeout=120)
    assert refused.returncode == os.EX_TEMPFAIL
    assert f"{out} is in use by process {process.pid}" in refused.stderr
    assert f"kill {process.pid}" in refused.stderr and "Traceback" not in refused.stderr


def test_lock_of_a_killed_holder_does_not_block(tmp_path, holder):
    process = holder(tmp_path)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == process.pid  # left behind
    with lock_directory(tmp_path) as path:
        assert json.loads(path.read_text())["pid"] == os.getpid()
    assert path.read_text() == ""  # released: names no holder
    with lock_directory(tmp_path):  # and can be taken again
        pass


def test_one_process_cannot_take_a_directory_twice(tmp_path):
    with lock_directory(tmp_path):
        with pytest.raises(DirectoryInUse, match=f"process {os.getpid()}"):
            with lock_directory(tmp_path):
                pass


def test_shards_of_one_job_share_a_directory(tmp_path, holder):
    holder(tmp_path, shard_lock_name(0, 2))
    with lock_directory(tmp_path, shard_lock_name(1, 2)):
        pass
    with pytest.raises(DirectoryInUse):
        with lock_directory(tmp_path, shard_lock_name(0, 2)):
            pass
    assert shard_lock_name(0, 1) == LOCK_FILE
