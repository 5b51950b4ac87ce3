#!/bin/bash
# Issue 18's comparison: one autotune study for x86-avx512-vnni whose first trials are the hand-made
# recipes (the built-in ones the knobs can make, plus the pruning experiments of BENCHMARKS.md), then
# the hand-made bundles and the autotune pick side by side in one `edge-sdk benchmark` run on the test
# split. Steps are cached: hand-made recipes built before cost only their measurement.
#
#   bash benchmarks/autotune_vs_handmade.sh ../shared/data/clinc150 build/autotune-vs TEACHER_DIR [TRIALS]
#
# TEACHER_DIR: the default recipe's fine-tuned MiniLM (a ~/.cache/edge-sdk/teacher/<key> entry).
# Run it on an idle machine: each trial's p50 is timed inside the study, the table's in the benchmark.
set -eu
D=${1:?data folder}; OUT=${2:?output folder}; TEACHER=${3:?teacher folder}; TRIALS=${4:-14}
X=x86-avx512-vnni
R=benchmarks/recipes
edge-sdk autotune --target $X --data "$D" --trials "$TRIALS" --depths 3,6 --keep-heads 0.5:1 --keep-neurons 0.25:1 \
    --embedding-ranks 128 --precisions int8,int4 --max-accuracy-drop 0.5 \
    --start $R/prune-h50n50.toml --start $R/prune-h50n25.toml --out "$OUT/autotune"
build() { edge-sdk build --target $X --data "$D" --out "$OUT/$1" "${@:2}" > "$OUT/$1.log" 2>&1 || echo "$1 failed"; }
build minilm
for r in distilled pruned trimmed compact int4; do build $r --recipe $r; done
for r in prune-h50n50 prune-h50n25 lowrank128 sparse50; do build $r --recipe $R/$r.toml; done
edge-sdk benchmark "$OUT"/{minilm,distilled,pruned,trimmed,compact,int4,prune-h50n50,prune-h50n25,lowrank128,sparse50,autotune}/$X \
    --data "$D" --teacher "$TEACHER" --threads 1 \
    --json benchmarks/clinc150-autotune-vs-handmade.json --markdown benchmarks/clinc150-autotune-vs-handmade.md
