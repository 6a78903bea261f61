#!/usr/bin/env bash
# Every GPU check and figure in one command, at most about 8 minutes on one H100/H200:
# builds videobert with CUDA (pip install --no-build-isolation --no-deps into a scratch folder, against the
# torch already installed: no package registry needed), runs the GPU tests, then the GPU benchmarks
# (hkmeans, heads, decode, extract, train), writes benchmarks/gpu_results.json and prints a summary.
# On a machine without a GPU it prints its "no GPU" line and exits 0.
#
#   scripts/gpu_check.sh                          # everything
#   scripts/gpu_check.sh --only tests --only heads # some pieces (tests|hkmeans|heads|decode|extract|train)
#   scripts/gpu_check.sh --help                   # all options (benchmarks/gpu/check.py)
#
# PYTHON picks the interpreter (default python3). Missing packages (PyAV, DALI) skip their piece with a
# line saying how to carry the wheel.
set -euo pipefail
cd "$(dirname "$0")/.."
exec "${PYTHON:-python3}" benchmarks/gpu/check.py "$@"
