"""Shared by the issue-16 tests: a `videobert` command refused for stale outputs."""

import re

from videobert.cli import main


def assert_refused(argv: list[str], caplog, pattern: str) -> None:
    """``videobert ARGV`` exits 65 (a stale-output refusal) and logs a message matching ``pattern``."""
    caplog.clear()
    assert main(argv) == 65
    assert re.search(pattern, caplog.text), caplog.text
