"""What batch independence costs on a real bundle, and what it prevents (RELIABILITY.md).

    python runtime/benchmarks/batch_independence.py BUNDLE ../shared/data/clinc150 [--threads 1 2] [--rounds 3]

Runs the CLINC150 test split (4500 in-scope + 1000 out-of-scope) through the bundle's first model:
1. answers one text per call (the default for dynamic int8) against batches of 7 and 32 with
   batch_independent=False, and against batches of up to 32 texts of equal token length (no
   padding at all): labels that change, largest score change, accuracy;
2. throughput (texts/s, batch_size=32, after warm-up) of both, rounds interleaved against drift;
3. peak RSS of one call with every text at once, under the default token budget and without it.
Uses only edge_runtime; prints the load average, so numbers from a busy machine say so.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from edge_runtime import Pipeline
from edge_runtime.limits import Limits


def clinc_test(data: Path) -> tuple[list[str], list[str]]:
    split = json.loads((data / "data_oos_plus.json").read_text())
    rows = split["test"] + split["oos_test"]
    return [t for t, _ in rows], [label for _, label in rows]


def agreement(bundle: Path, texts: list[str], truth: list[str]) -> dict:
    alone = Pipeline.load(bundle, threads=1)
    batched = Pipeline.load(bundle, threads=1, batch_independent=False)
    reference = alone.logits(texts, batch_size=1)
    probs = _softmax(reference)
    out = {"one_text_per_call": alone.rows_alone,
           "accuracy_one_per_call": _accuracy(alone, reference, truth)}
    runs = {f"{name}_b{b}": pipe.logits(texts, batch_size=b)
            for name, pipe in (("default", alone), ("batched", batched)) for b in (7, 32)}
    runs["batched_equal_length_b32"] = _equal_lengths(batched, texts)
    for name, logits in runs.items():
        out[name] = {
            "labels_changed": int((logits.argmax(-1) != reference.argmax(-1)).sum()),
            "max_score_change": float(np.abs(_softmax(logits) - probs).max()),
            "max_logit_change": float(np.abs(logits - reference).max()),
            "accuracy": _accuracy(alone, logits, truth),
        }
    return out


def _equal_lengths(pipe: Pipeline, texts: list[str]) -> np.ndarray:
    """Batches of up to 32 texts of one token length: no padding, yet one activation scale per batch."""
    ids = pipe.encoder.ids(texts)
    out = np.empty((len(texts), len(pipe.labels)), np.float32)
    by_length: dict[int, list[int]] = {}
    for i, row in enumerate(ids):
        by_length.setdefault(len(row), []).append(i)
    for rows in by_length.values():
        for start in range(0, len(rows), 32):
            chunk = rows[start:start + 32]
            out[chunk] = pipe.logits_for_ids([ids[i] for i in chunk], batch_size=32)
    return out


def throughput(bundle: Path, texts: list[str], threads: int, rounds: int) -> dict:
    pipes = {"one_per_call": Pipeline.load(bundle, threads=threads),
             "batched": Pipeline.load(bundle, threads=threads, batch_independent=False)}
    for pipe in pipes.values():
        pipe(texts[:64], batch_size=32)  # warm-up
    seconds: dict[str, list[float]] = {name: [] for name in pipes}
    for _ in range(rounds):
        for name, pipe in pipes.items():
            start = time.perf_counter()
            pipe(texts, batch_size=32)
            seconds[name].append(time.perf_counter() - start)
    qps = {name: len(texts) / float(np.median(s)) for name, s in seconds.items()}
    return {**{f"{k}_qps": round(v, 1) for k, v in qps.items()},
            "cost": round(1 - qps["one_per_call"] / qps["batched"], 3)}


PEAK = """
import json, resource, sys
from edge_runtime import Pipeline
from edge_runtime.limits import Limits
bundle, tokens = sys.argv[1], int(sys.argv[2])
texts = json.loads(sys.stdin.read())
pipe = Pipeline.load(bundle, threads=1, batch_independent=False, limits=Limits(max_batch_tokens=tokens))
pipe(texts[:8])
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
pipe(texts, batch_size=len(texts))
print(before // 1024, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
"""


def peak_rss(bundle: Path, texts: list[str]) -> dict:
    out = {}
    for name, tokens in (("budget_8192_tokens", Limits().max_batch_tokens), ("unbounded", 10**12)):
        result = subprocess.run([sys.executable, "-c", PEAK, str(bundle), str(tokens)], input=json.dumps(texts),
                                capture_output=True, text=True, check=True)
        before, after = map(int, result.stdout.split())
        out[name] = {"rss_after_load_mb": before, "peak_rss_mb": after}
    return out


def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _accuracy(pipe: Pipeline, logits: np.ndarray, truth: list[str]) -> float:
    labels = [pipe.labels[i] for i in logits.argmax(-1)]
    return round(float(np.mean([a == b for a, b in zip(labels, truth)])), 4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("bundle", type=Path)
    parser.add_argument("data", type=Path, help="the CLINC150 folder (data_oos_plus.json)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    texts, truth = clinc_test(args.data)
    report = {"command": " ".join(sys.argv), "texts": len(texts), "cores": len(os.sched_getaffinity(0)),
              "load_average_start": [round(x, 2) for x in os.getloadavg()]}
    report["agreement"] = agreement(args.bundle, texts, truth)
    report["throughput"] = {f"threads_{t}": throughput(args.bundle, texts, t, args.rounds) for t in args.threads}
    report["peak_rss"] = peak_rss(args.bundle, texts)
    report["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    report["self_peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
