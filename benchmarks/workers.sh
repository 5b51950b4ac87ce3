#!/bin/bash
# One worker against two on one SQLite Optuna study (issue 18): the same pruning study, N trials in
# all (trial 0 the untouched model, the others trained for 1 epoch), 1 thread per worker, each run
# on a fresh step cache holding only the teacher. Run it on an otherwise idle machine.
#
#   bash benchmarks/workers.sh TEACHER_CACHE_ENTRY DATA OUT [TRIALS]
#   bash benchmarks/workers.sh ~/.cache/edge-sdk/teacher/<key> ../shared/data/clinc150 build/workers 5
#
# TEACHER_CACHE_ENTRY: a teacher folder of the step cache (~/.cache/edge-sdk/teacher/<key>), copied
# into each fresh cache so that no run trains it. Prints the wall time of each run.
set -euo pipefail
teacher=${1:?teacher cache entry}; data=${2:?data}; out=${3:?output folder}; trials=${4:-5}
edge_sdk=${EDGE_SDK:-.venv/bin/edge-sdk}
for n in 1 2; do
  run=$out/workers-$n
  rm -rf "$run"; mkdir -p "$run/cache/teacher"; cp -r "$teacher" "$run/cache/teacher/"
  start=$(date +%s); uptime
  for w in $(seq 1 $n); do
    OMP_NUM_THREADS=1 $edge_sdk prune --target x86-avx512-vnni --data "$data" --trials "$trials" --epochs 1 \
        --keep-heads 0.5:1 --keep-neurons 0.25:1 --max-accuracy-drop 100 --cache-dir "$run/cache" --no-build \
        --storage "sqlite:///$(realpath "$run")/study.db" --study shared --out "$run/w$w" > "$run/w$w.log" 2>&1 &
  done
  wait
  echo "workers $n: $(( $(date +%s) - start )) s"
done
uptime
