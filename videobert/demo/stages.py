"""Running a job as named stages that resume: each finished stage is recorded with its wall time
and its (small, JSON) result in a manifest, so a rerun skips it; a failing stage is recorded
with its reason and reported by name; a stage stopped by SIGINT / SIGTERM is recorded as stopped
and the ``Stopped`` exception carries its name out."""

from __future__ import annotations

import logging
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from videobert.utils.manifest import Manifest
from videobert.utils.stopping import Stopped

log = logging.getLogger(__name__)


class StageFailed(RuntimeError):
    """A stage raised; the message names the stage and the cause."""

    def __init__(self, stage: str, cause: BaseException):
        super().__init__(f"stage '{stage}' failed: {type(cause).__name__}: {cause}")  # demo and `videobert pipeline`
        self.stage = stage
        self.cause = cause


@dataclass(frozen=True)
class Stage:
    name: str
    run: Callable[[], dict[str, Any]]   # returns a JSON-serialisable summary of what it did
    what: str                            # one line for the log


def run_stages(stages: list[Stage], manifest_path: str | Path) -> dict[str, dict[str, Any]]:
    """Run ``stages`` in order, skipping those the manifest records as done.

    Returns ``{stage: {"seconds": wall time, "result": its summary, "resumed": bool}}``; the time
    of a resumed stage is the one measured when it ran.
    """
    manifest = Manifest(manifest_path)
    outcomes: dict[str, dict[str, Any]] = {}
    for number, stage in enumerate(stages, 1):
        header = f"[{number}/{len(stages)}] {stage.name}"
        if manifest.is_done(stage.name):
            record = manifest.records[stage.name]
            log.info("%s: done in an earlier run (%.1f s), skipped", header, record["seconds"])
            outcomes[stage.name] = {"seconds": record["seconds"], "result": record["result"], "resumed": True}
            continue
        log.info("%s: %s", header, stage.what)
        start = time.perf_counter()
        try:
            result = stage.run()
        except Stopped as stop:  # SIGINT / SIGTERM (videobert.utils.stopping): not a failure, a rerun resumes
            manifest.record(stage.name, "stopped", reason=stop.signal_name)
            stop.stage = stage.name
            raise
        except Exception as exc:  # noqa: BLE001 - any failure is reported with the stage's name
            manifest.record(stage.name, "failed", reason=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc())
            raise StageFailed(stage.name, exc) from exc
        seconds = round(time.perf_counter() - start, 2)
        manifest.record(stage.name, "done", seconds=seconds, result=result)
        log.info("%s: finished in %.1f s", header, seconds)
        outcomes[stage.name] = {"seconds": seconds, "result": result, "resumed": False}
    return outcomes
