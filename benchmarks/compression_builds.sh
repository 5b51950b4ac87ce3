#!/bin/bash
# The bundles of BENCHMARKS.md's compression tables (issues 15 and 16), each its own `edge-sdk build`
# (a variant whose guard fails does not stop the others). Steps are cached: a rerun rebuilds only what
# changed. The recipes in benchmarks/recipes set max_accuracy_drop = 100: they measure what a method
# costs rather than stop at a budget.
#
#   bash benchmarks/compression_builds.sh ../shared/data/clinc150 build/compression
#
# MiniLM rows: the default recipe's teacher (all-MiniLM-L6-v2 fine-tuned, cached by the first build).
# Base-teacher rows: all-mpnet-base-v2 fine-tuned by recipe distilled-base (about 20 min with bf16).
set -u
D=${1:?data folder}; OUT=${2:-build/compression}
X=x86-avx512-vnni
MPNET=sentence-transformers/all-mpnet-base-v2
build() { echo "== $1"; edge-sdk build --target $X --data "$D" --out "$OUT/$1" "${@:2}" || echo "$1 failed"; }
build minilm
build distilled --recipe distilled
build compact --recipe compact
for r in trim15k lowrank128 lowrank64 prune-h50n50 prune-h75n50 prune-h50n25 sparse50 sparse50m; do
  build $r --recipe benchmarks/recipes/$r.toml
done
build distilled-base --model $MPNET --recipe distilled-base
build distilled-base-notrim --model $MPNET --recipe benchmarks/recipes/distilled-base-notrim.toml
build distilled-base-l3 --model $MPNET --recipe distilled-base-l3
for r in base6-int4 small-l6 small-l3; do build $r --model $MPNET --recipe benchmarks/recipes/$r.toml; done
