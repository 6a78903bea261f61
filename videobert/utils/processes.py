"""Child processes that never outlive the run that started them.

A run's children (the deepspeed launcher and its ranks, decoding workers) must stop when the run
stops, whichever way it stops:

- asked to (SIGINT, SIGTERM, or an error in the parent): :func:`process_group` starts a command as
  the leader of a new session, so its whole tree shares one process group that a terminal's Ctrl-C
  does not reach directly; leaving the block for any reason stops that group with
  :func:`stop_group`: SIGTERM first (pretraining ranks checkpoint and exit), SIGKILL for what is
  left after a grace period (``VIDEOBERT_STOP_GRACE`` seconds, default 30; a second stop request
  cuts it short);
- killed outright (SIGKILL, the OOM killer): a direct child gets SIGKILL from the kernel when its
  parent ends (Linux ``PR_SET_PDEATHSIG``, :func:`dies_with_this_process`). Deeper descendants do
  not (the death signal is per parent), so a process that a launcher starts calls
  :func:`watch_owner` at startup: a thread that kills its process group once the process that
  started the group has ended.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import select
import signal
import subprocess
import sys
import threading
import time
from typing import Any, Callable, Iterator

from videobert.utils.stopping import hurry

GRACE_ENV = "VIDEOBERT_STOP_GRACE"
DEFAULT_GRACE_S = 30.0
# The pid of the process that started a run's process group, for watch_owner() in its descendants.
OWNER_ENV = "VIDEOBERT_RUN_OWNER"

_PR_SET_PDEATHSIG = 1
# Loaded before any fork: a child must not load libraries between fork and exec.
_prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None


def stop_grace_s() -> float:
    """Seconds a stopped process group gets to end on its own before SIGKILL."""
    value = os.environ.get(GRACE_ENV, "")
    try:
        return float(value) if value else DEFAULT_GRACE_S
    except ValueError:
        raise ValueError(f"{GRACE_ENV}={value!r}: expected a number of seconds") from None


def dies_with_this_process() -> Callable[..., None]:
    """A function for a new child process to call first (``Popen``'s ``preexec_fn``, a DataLoader's
    ``worker_init_fn``, which passes the worker id): the kernel then sends the child SIGKILL when
    the thread of this process that started it ends. Linux only; elsewhere the call does nothing."""
    return functools.partial(_die_with_parent, os.getpid())


def _die_with_parent(parent_pid: int, *_ignored: Any) -> None:
    if _prctl is None:
        return
    if _prctl(_PR_SET_PDEATHSIG, ctypes.c_ulong(signal.SIGKILL), ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0)):
        error = ctypes.get_errno()
        raise OSError(error, f"prctl(PR_SET_PDEATHSIG): {os.strerror(error)}")
    if os.getppid() != parent_pid:  # the parent ended before the death signal was armed
        os.kill(os.getpid(), signal.SIGKILL)


@contextlib.contextmanager
def process_group(command: list[str], grace_s: float | None = None, **popen_kwargs: Any) -> Iterator[subprocess.Popen]:
    """Run ``command`` as the leader of a new process group (and session) for the block.

    Leaving the block, normally or by an exception (an error, :class:`~videobert.utils.stopping.Stopped`,
    a timeout), stops whatever is left of the group with :func:`stop_group`; after a normal end
    nothing is. The child dies with this process, and its descendants that call
    :func:`watch_owner` (they find this process's pid in ``VIDEOBERT_RUN_OWNER``) die with it too.
    ``popen_kwargs`` go to ``subprocess.Popen`` (``env``, ``stdout``, ...). Start it from a thread
    that outlives the block: the death signal follows the starting thread.
    """
    env = dict(popen_kwargs.pop("env", None) or os.environ)
    env[OWNER_ENV] = str(os.getpid())
    process = subprocess.Popen(command, env=env, start_new_session=True, preexec_fn=dies_with_this_process(), **popen_kwargs)
    try:
        yield process
    finally:
        stop_group(process, grace_s)


def stop_group(process: subprocess.Popen, grace_s: float | None = None) -> None:
    """Stop the process group that ``process`` leads: SIGTERM to every member, SIGKILL to what is
    left after ``grace_s`` seconds (default :func:`stop_grace_s`) or at a second stop request;
    returns once no member is left and ``process`` is reaped."""
    pgid = process.pid
    if _group_alive(process):
        _signal_group(pgid, signal.SIGTERM)
        deadline = time.monotonic() + (stop_grace_s() if grace_s is None else grace_s)
        while _group_alive(process) and time.monotonic() < deadline:
            if hurry.wait(0.1):
                break
        if _group_alive(process):
            _signal_group(pgid, signal.SIGKILL)
            deadline = time.monotonic() + 10.0  # SIGKILL cannot be refused; only the kernel's teardown remains
            while _group_alive(process) and time.monotonic() < deadline:
                time.sleep(0.05)
    process.wait()


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signum)


def _group_alive(process: subprocess.Popen) -> bool:
    process.poll()  # reap the leader: a zombie still counts as a member of its group
    return bool(group_members(process.pid))


def group_members(pgid: int) -> list[int]:
    """Pids of the live (not zombie) processes in process group ``pgid``.

    Zombies are left out: a descendant orphaned by the leader's end is reaped by whoever adopts
    it, which may take a while (or never happen in a container whose init does not reap). Without
    /proc, any signalable member counts."""
    if not os.path.isdir("/proc"):
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return []
        return [pgid]
    members = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        stat = _read_stat(int(entry.name))
        if stat is not None and stat[2] == pgid and stat[0] not in "ZX":
            members.append(int(entry.name))
    return members


def _read_stat(pid: int) -> tuple[str, int, int] | None:
    """``(state, parent pid, process group)`` of ``pid`` from /proc, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as f:
            fields = f.read().rsplit(")", 1)[1].split()  # the command name (in parentheses) may hold spaces
    except (OSError, IndexError):
        return None
    return fields[0], int(fields[1]), int(fields[2])


def watch_owner(poll_s: float = 0.5) -> None:
    """Where ``VIDEOBERT_RUN_OWNER`` names the process that started this run's process group (see
    :func:`process_group`), start a daemon thread that SIGKILLs this process's whole group as soon
    as that process ends, however it ends (even SIGKILL).

    For processes deeper than a direct child, e.g. the ranks the deepspeed launcher starts: the
    kernel's death signal reaches only direct children. An owner that is not an ancestor when
    watching starts has ended already (its pid may be another process's by now). It is then
    watched through a pidfd (Linux), which a reused pid cannot fool, or by polling every
    ``poll_s`` seconds where there is none. Watching the owner itself, not the chain of parents,
    lets the group outlive an intermediate process (the deepspeed runner ends at once on SIGTERM
    while the ranks checkpoint)."""
    value = os.environ.get(OWNER_ENV, "")
    if not value.isdigit():
        return
    owner = int(value)
    try:
        pidfd = os.pidfd_open(owner)
    except (AttributeError, OSError):  # ended already, or no pidfd here (not Linux, a kernel before 5.3)
        pidfd = None
    if not _has_ancestor(owner):
        _kill_own_group()

    def watch() -> None:
        if pidfd is not None:
            select.select([pidfd], [], [])  # readable once the process has ended
        else:
            while _exists(owner):
                time.sleep(poll_s)
        _kill_own_group()

    threading.Thread(target=watch, name="videobert-owner-watch", daemon=True).start()


def _kill_own_group() -> None:
    os.killpg(os.getpgrp(), signal.SIGKILL)


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _has_ancestor(pid: int) -> bool:
    """Whether ``pid`` is this process's parent, grandparent, ... (a reused pid is not)."""
    current = os.getppid()
    while current > 1:
        if current == pid:
            return True
        stat = _read_stat(current)
        if stat is None:
            return False
        current = stat[1]
    return current == pid
