#!/usr/bin/env bash
# Pretrain VideoBERT with the deepspeed launcher on this node.
#
#   scripts/pretrain.sh [NUM_GPUS] -- [videobert pretrain arguments]
#   scripts/pretrain.sh 8 -- --config paper --corpus data/corpus --out runs/paper model.init_from=bert:bert-large/
#   scripts/pretrain.sh 2 -- --config tiny --corpus data/corpus --out runs/tiny    # CPU: 2 gloo ranks
#
# NUM_GPUS defaults to every visible GPU, or 2 CPU ranks on a machine without one.
# Multi-node: set HOSTFILE (see scripts/hostfile.example and docs/TRAINING.md); NUM_GPUS is then
# the ranks per node and MASTER_ADDR the first host of the hostfile.
# Environment: MASTER_PORT (default 29500), HOSTFILE, DS_ACCELERATOR (cpu without a GPU).
set -euo pipefail

num_gpus=""
if [[ $# -gt 0 && "$1" != "--" ]]; then
  num_gpus="$1"
  shift
fi
if [[ $# -gt 0 && "$1" == "--" ]]; then
  shift
fi

if python -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)'; then
  : "${num_gpus:=$(python -c 'import torch; print(torch.cuda.device_count())')}"
else
  export DS_ACCELERATOR="${DS_ACCELERATOR:-cpu}"
  : "${num_gpus:=2}"
fi

# Run the source tree this script belongs to, installed or not.
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PYTHONPATH="${repo_root}${PYTHONPATH:+:${PYTHONPATH}}"

launcher=(deepspeed --no_local_rank --num_gpus "${num_gpus}" --master_port "${MASTER_PORT:-29500}")
if [[ -n "${HOSTFILE:-}" ]]; then
  launcher+=(--hostfile "${HOSTFILE}" --master_addr "${MASTER_ADDR:-$(awk '!/^[[:space:]]*(#|$)/ {print $1; exit}' "${HOSTFILE}")}")
fi

exec "${launcher[@]}" --module videobert pretrain "$@"
