"""Bundles built elsewhere (hand-made recipes a search cannot make), measured the way a search
measures its trials, and set against that search's Pareto front: does a front point dominate or
equal each of them (no lower accuracy, no higher p50, no larger file)?

    python benchmarks/front_vs_bundles.py build/autotune-vs/autotune ../shared/data/clinc150 \
        build/compression/lowrank128/x86-avx512-vnni build/compression/sparse50/x86-avx512-vnni

Each bundle's first model file: validation accuracy through edge_runtime (batch 64, all cores),
batch-1 p50 over the first 200 validation texts at 1 thread, and the file's size: what
`search/evaluate.py` records per trial (builder.measure.measure_bundle). The p50s of the front were
timed inside the study, so a comparison within ~10% of p50 is a tie, not a win: the table says so.
Prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

P50_NOISE = 0.10  # relative p50 difference between two separate timing runs that decides nothing


def verdict(point: dict, front: list[dict]) -> str:
    """Which front trial dominates or equals `point` (accuracy, p50, size), in words."""
    def no_worse(row, slack=0.0):
        return (row["accuracy"] >= point["accuracy"] and row["size_mb"] <= point["size_mb"] * 1.001
                and row["p50_ms"] <= point["p50_ms"] * (1 + slack))

    beating = [r for r in front if no_worse(r)]
    if beating:
        best = min(beating, key=lambda r: r["p50_ms"])
        return f"dominated or equalled by trial {best['number']} ({best['summary']})"
    tied = [r for r in front if no_worse(r, P50_NOISE)]
    if tied:
        best = min(tied, key=lambda r: r["p50_ms"])
        return f"tie within p50 noise with trial {best['number']} ({best['summary']})"
    return "not dominated"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("study_out", type=Path, help="a search's --out folder (holds trials.json)")
    parser.add_argument("data")
    parser.add_argument("bundles", nargs="+", type=Path)
    args = parser.parse_args()

    from edge_runtime import Manifest
    from edge_sdk.builder.measure import measure_bundle
    from edge_sdk.data import load_data

    study = json.loads((args.study_out / "trials.json").read_text())
    front = [r for r in study["rows"] if r["number"] in study["front"]]
    data = load_data(args.data)
    print("| bundle | val acc | p50 ms | size MB | against the front |")
    print("| --- | ---: | ---: | ---: | --- |")
    for bundle in args.bundles:
        model = Manifest.read(bundle).models[0].file
        m = measure_bundle(bundle, model, data, 200, split="validation")
        point = {"accuracy": m["accuracy"], "p50_ms": m["latency"]["p50_ms"], "size_mb": m["size_mb"]}
        name = f"{bundle.parent.name}/{bundle.name}/{model}"
        print(f"| {name} | {point['accuracy']:.4f} | {point['p50_ms']:.2f} | {point['size_mb']:.1f} | "
              f"{verdict(point, front)} |", flush=True)


if __name__ == "__main__":
    main()
