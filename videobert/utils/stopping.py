"""Stop requests: SIGINT and SIGTERM become a ``Stopped`` exception in the main thread, so that a
command unwinds through its ``finally`` blocks (which stop its child processes, see
``videobert.utils.processes``) and exits with 128 + the signal's number (130, 143).

The ``videobert`` command wraps every subcommand in :func:`stop_on_signals`; a stage runner adds
the name of the stage it stopped in. Finished work is never undone by a stop (outputs are written
atomically, long jobs keep manifests and checkpoints), so rerunning the same command resumes.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from typing import Any, Iterator

# Set by a second stop request while the first one is being carried out: whoever is waiting for
# child processes to end on their own (``processes.stop_group``) stops waiting and kills them.
hurry = threading.Event()

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Stopped(BaseException):
    """The command was asked to stop by signal ``signum``.

    A ``BaseException`` (like ``KeyboardInterrupt``), so that code catching ``Exception`` to record
    a failed item does not swallow it. ``stage`` is set by a stage runner to the stage it stopped.
    """

    def __init__(self, signum: int, stage: str | None = None):
        super().__init__(signal.Signals(signum).name)
        self.signum = int(signum)
        self.stage = stage

    @property
    def signal_name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_code(self) -> int:
        """The shell's convention for a command ended by a signal: 130 for SIGINT, 143 for SIGTERM."""
        return 128 + self.signum

    def explain(self, command: str) -> str:
        """One line for the user, e.g. "videobert demo stopped by SIGTERM in stage 'pretrain'; ..."."""
        where = f" in stage '{self.stage}'" if self.stage else ""
        return (f"{command} stopped by {self.signal_name}{where}; what it finished is kept: "
                f"rerun the same command to resume")


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """While the block runs, SIGINT and SIGTERM raise :class:`Stopped` in the main thread.

    Only the first request raises; a later one sets :data:`hurry` instead, so that the cleanup the
    first one started is not itself interrupted. The handlers are installed even where the signal
    was inherited as ignored (a job started with ``&`` from a script ignores SIGINT): whoever sends
    it means it. A process forked inside the block (a DataLoader worker) inherits the handlers but
    keeps the signals' usual meaning. The previous handlers come back on exit; outside the main
    thread (where Python cannot handle signals) it does nothing.
    """
    if threading.current_thread() is not threading.main_thread():  # Python runs handlers only there
        yield
        return
    owner = os.getpid()
    requested: list[int] = []

    def handle(signum: int, frame: Any) -> None:
        if os.getpid() != owner:
            _default_action(signum)
        elif requested:
            hurry.set()
        else:
            requested.append(signum)
            raise Stopped(signum)

    hurry.clear()
    previous = {signum: signal.signal(signum, handle) for signum in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _default_action(signum: int) -> None:
    """What the signal would have done without :func:`stop_on_signals` (in a forked child)."""
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)
