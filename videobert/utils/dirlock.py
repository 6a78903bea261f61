"""One writer per output directory: a command holds an exclusive ``flock`` on a lock file in its
output directory for as long as it writes there.

The kernel releases the lock when the holder ends, however it ends (even SIGKILL), so a lock left
behind by a dead run never blocks the next one; a second command on a live run's directory is
refused at once with the holder's pid, host and command line, which the holder writes into the
lock file. The file itself stays (deleting it would let a late opener lock an orphaned inode).
Processes forked by the holder share its lock (a DataLoader worker keeps it until it ends too).
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import json
import os
import shlex
import socket
import sys
from pathlib import Path
from typing import Iterator

LOCK_FILE = ".videobert.lock"


class DirectoryInUse(RuntimeError):
    """Another live process holds the directory's lock."""

    def __init__(self, directory: Path, holder: dict):
        self.directory, self.holder = directory, holder
        who = (f"process {holder['pid']} on {holder.get('host', '?')} ({holder.get('command', '?')}, "
               f"since {holder.get('since', '?')})" if "pid" in holder else "another process")
        stop_it = f"stop it (kill {holder['pid']}), " if "pid" in holder else ""
        super().__init__(f"{directory} is in use by {who}: two runs writing one directory would mix their outputs; "
                         f"wait for that run to end, {stop_it}or choose another output directory")


def shard_lock_name(rank: int, world_size: int) -> str:
    """The lock file of one shard of a job whose ranks share a directory but never a file (e.g.
    ``videobert extract --rank R --world-size W``): ranks of one job do not exclude each other."""
    return LOCK_FILE if world_size == 1 else f".videobert.rank{rank:05d}-of-{world_size:05d}.lock"


@contextlib.contextmanager
def lock_directory(directory: str | os.PathLike, name: str = LOCK_FILE) -> Iterator[Path]:
    """Hold ``directory``'s lock (created with its parents if missing) for the block; raises
    :class:`DirectoryInUse` at once if another process holds it. Yields the lock file's path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DirectoryInUse(directory, _read_holder(fd)) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(_this_holder()) + "\n").encode("utf-8"), 0)
        try:
            yield path
        finally:
            os.ftruncate(fd, 0)  # an unlocked file names no holder
    finally:
        os.close(fd)  # releases the lock


def _this_holder() -> dict:
    return {"pid": os.getpid(), "host": socket.gethostname(), "command": _command_line(),
            "since": datetime.datetime.now().astimezone().isoformat(timespec="seconds")}


def _command_line() -> str:
    """This process's command line as the user typed it: ``videobert demo --out D``."""
    program = Path(sys.argv[0])
    program = f"python -m {program.parent.name}" if program.name == "__main__.py" else program.name
    return " ".join([program, shlex.join(sys.argv[1:])]).strip()


def _read_holder(fd: int) -> dict:
    """What the holder wrote; empty if it has not written yet (it just took the lock)."""
    try:
        holder = json.loads(os.pread(fd, 4096, 0).decode("utf-8"))
    except (OSError, ValueError):
        return {}
    return holder if isinstance(holder, dict) else {}
