#!/usr/bin/env bash
# Builds the architecture tables shipped in gymlab/nas/tables/ besides digits-default-3
# (the leave-one-table-out part of nas_search.py searches them). One core each, in turn.
# Usage: bash benchmarks/nas_tables.sh [OUT_DIR] [TABLE...]   (default: gymlab/nas/tables, all)
set -euo pipefail
out=${1:-gymlab/nas/tables}
shift || true
here=$(cd "$(dirname "$0")" && pwd)
export OMP_NUM_THREADS=1
declare -A flags=(
  # the tutorial's space (valid 5x5 convolutions, many lists cannot be built), RAdam, longer
  [digits-tutorial-3]="--dataset digits --space tutorial --layers 3 --epochs 10 --optimizer radam"
  # the harder built-in data set, the default space, a short training
  [shifted-default-3]="--dataset digits-shifted --space default --layers 3 --epochs 3 --optimizer adam"
  # the harder data set, 4 layers of a 4-choice space without `none` (every network 4 deep)
  [shifted-small-4]="--dataset digits-shifted --space $here/nas_small_space.json --layers 4 --epochs 6 --optimizer adam"
)
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(digits-tutorial-3 shifted-default-3 shifted-small-4)
for name in "${names[@]}"; do
  # shellcheck disable=SC2086
  gymlab nas ${flags[$name]} --workers 1 build-table --seeds 2 --out "$out/$name.npz"
done
