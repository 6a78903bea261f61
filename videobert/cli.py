"""The ``videobert`` command. Each area of the library registers its own subcommands.

A command module exposes ``register(subparsers)``, which adds its parsers and sets
``func=handler`` on them; handlers take the parsed ``argparse.Namespace`` and return an exit code.
Heavy imports stay inside the handlers so that ``videobert --help`` is fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

COMMAND_MODULES = (
    "videobert.ops.cli",            # info
    "videobert.visual_words.cli",   # visual-words fit / assign
    "videobert.features.cli",       # extract
    "videobert.corpus.cli",         # corpus build
    "videobert.train.cli",          # pretrain, export
    "videobert.tasks.cli",          # eval ...
    "videobert.demo.cli",           # demo
    "videobert.pipeline.cli",       # pipeline (your own videos end to end)
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="videobert", description="VideoBERT: joint video and language BERT.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:  # a real missing dependency, not an absent command module
                raise
            continue
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from videobert.utils.dirlock import DirectoryInUse
    from videobert.utils.fingerprint import StaleOutputError
    from videobert.utils.stopping import Stopped, stop_on_signals

    # SIGINT / SIGTERM unwind the command (its children are stopped on the way) to an exit status
    # of 130 / 143; the stage it stopped in is named, and a rerun resumes.
    with stop_on_signals():
        try:
            return int(args.func(args) or 0)
        except Stopped as stop:
            logging.getLogger("videobert").error("%s", stop.explain(f"videobert {args.command}"))
            return stop.exit_code
        except DirectoryInUse as exc:
            logging.getLogger("videobert").error("%s", exc)
            return os.EX_TEMPFAIL  # 75: try again later
        except StaleOutputError as exc:  # a refusal, not a crash: the message says what changed and what to do
            logging.getLogger("videobert").error("%s", exc)
            return os.EX_DATAERR  # 65


if __name__ == "__main__":
    sys.exit(main())
