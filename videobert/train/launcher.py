"""Multi-rank runs from Python: ``launch(config, num_procs)`` starts the deepspeed launcher in a
subprocess; each rank runs this module (``python -m videobert.train.launcher CONFIG``).

On a machine without a GPU the ranks are CPU processes joined by gloo (``DS_ACCELERATOR=cpu``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

# Light imports only: a rank starts its watch_owner() before it pays for torch and deepspeed.
from videobert.train.config import TrainConfig, load_train_config
from videobert.utils.dirlock import lock_directory
from videobert.utils.processes import process_group, watch_owner

if TYPE_CHECKING:
    from videobert.train.loop import TrainResult


def write_config(config: TrainConfig, path: str | os.PathLike) -> Path:
    from videobert.utils.config import to_dict
    from videobert.utils.io import write_json_atomic

    write_json_atomic(path, to_dict(config))
    return Path(path)


def launcher_command(config_path: str | os.PathLike, num_procs: int, master_port: int | None = None,
                     hostfile: str | None = None) -> list[str]:
    """The deepspeed launcher command line that runs ``config_path`` on ``num_procs`` ranks per node."""
    from videobert.train.distributed import free_port

    deepspeed = shutil.which("deepspeed")
    runner = [deepspeed] if deepspeed else [sys.executable, "-m", "deepspeed.launcher.runner"]
    command = runner + ["--no_local_rank", "--num_gpus", str(num_procs), "--master_port", str(master_port or free_port())]
    if hostfile:
        command += ["--hostfile", hostfile]
    return command + ["--module", "videobert.train.launcher", str(config_path)]


def launch(config: TrainConfig, num_procs: int = 2, timeout: float | None = None, env: dict[str, str] | None = None) -> TrainResult:
    """Run ``config`` on ``num_procs`` local ranks through the deepspeed launcher and return rank 0's
    result (read from ``<out>/result.json``). The ranks' output goes to ``<out>/launch.log``.

    ``env`` adds environment variables (e.g. ``OMP_NUM_THREADS``). After ``timeout`` seconds the
    ranks get SIGTERM (they checkpoint and stop) and ``TimeoutError`` is raised; a failed run raises
    ``RuntimeError`` with the log's tail. The run directory is locked (``videobert.utils.dirlock``)
    while the ranks run; they never outlive this call (``videobert.utils.processes``)."""
    import torch

    from videobert.train.distributed import child_environment
    from videobert.train.loop import TrainResult

    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    run_env = child_environment(env)
    if not torch.cuda.is_available():
        run_env.setdefault("DS_ACCELERATOR", "cpu")
    # The ranks must import this very tree (e.g. a source checkout that is not installed).
    package_root = str(Path(__file__).resolve().parents[2])
    run_env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, run_env.get("PYTHONPATH", "")) if p)
    result_path = out / "result.json"
    log_path = out / "launch.log"
    # The launcher and its ranks form one process group: leaving this block for any reason (a
    # timeout, SIGINT / SIGTERM to this process, an error) stops them (SIGTERM: the ranks checkpoint
    # and exit; SIGKILL after the grace period), and they die with this process (watch_owner).
    with lock_directory(out), open(log_path, "w", encoding="utf-8") as log_file:
        config_path = write_config(config, out / "launch_config.json")
        result_path.unlink(missing_ok=True)
        with process_group(launcher_command(config_path, num_procs), env=run_env, stdout=log_file,
                           stderr=subprocess.STDOUT) as process:
            try:
                returncode = process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                raise TimeoutError(f"deepspeed launch of {config_path} ran past {timeout} s; stopped (see {log_path})") from None
    if returncode != 0 or not result_path.exists():
        tail = log_path.read_text(encoding="utf-8", errors="replace")[-4000:]
        raise RuntimeError(f"deepspeed launch of {config_path} on {num_procs} ranks failed (exit {returncode}); "
                           f"{log_path} ends:\n{tail}")
    return TrainResult(**json.loads(result_path.read_text()))


def main(argv: list[str] | None = None) -> int:
    """A rank's entry point: train the run in CONFIG (YAML/JSON) with optional key=value overrides."""
    parser = argparse.ArgumentParser(prog="python -m videobert.train.launcher")
    parser.add_argument("config", help="TrainConfig file (YAML or JSON)")
    parser.add_argument("overrides", nargs="*", help="key=value overrides")
    args = parser.parse_args(argv)
    watch_owner()  # a rank is the launcher's child: it must not outlive the process that called launch()
    from videobert.train.loop import pretrain

    result = pretrain(load_train_config(args.config, args.overrides))
    print(json.dumps(dataclasses.asdict(result)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
