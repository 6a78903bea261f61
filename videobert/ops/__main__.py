"""``python -m videobert.ops``: print which kernel backends are available."""

import sys

from videobert.ops.cli import run_info

sys.exit(run_info())
