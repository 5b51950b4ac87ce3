"""The benchmark protocol of DESIGN.md, end to end: every row measured in one run.

1. accuracy of every variant on the full test split (batched: accuracy does not need batch 1);
2. this machine's dense GEMM rate, per thread count, in the same run;
3. per thread count, batch-1 latency over distinct test queries after warm-up and batch-32
   throughput, in interleaved rounds (each round every variant in turn, the order rotating), so
   drift of a shared machine hits every row alike;
4. peak RSS of each variant alone in a fresh process (see rss.py);
5. ratios against the first reference row at the same thread count (report.table.with_ratios).
"""

from __future__ import annotations

import random
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from edge_runtime.bench import latency_stats, throughput, time_each

from ..report.environment import environment
from ..report.table import with_ratios
from .accuracy import accuracy_report
from .flops import flops_from_shapes, median_length
from .variants import VariantSpec, bundle_labels, bundle_specs, open_runner, prepare_references

PROTOCOL_QUERIES = 500  # the protocol's minimum; fewer only for smoke tests


@dataclass
class Settings:
    threads: list[int] = field(default_factory=lambda: [1])
    queries: int = PROTOCOL_QUERIES
    warmup: int = 10
    round_size: int = 50  # batch-1 queries per variant per round
    throughput_round: int = 128  # texts per variant per throughput round (4 batches of 32)
    accuracy_batch: int = 64
    measure_rss: bool = True
    seed: int = 0


def distinct_queries(texts, n: int, seed: int = 0) -> list[str]:
    """`n` distinct texts in a seeded random order (fewer if the split has fewer)."""
    unique = sorted(set(texts))
    random.Random(seed).shuffle(unique)
    return unique[:n]


def predicted_label_ids(names: list[str], labels: tuple[str, ...], variant: str) -> np.ndarray:
    index = {label: i for i, label in enumerate(labels)}
    unknown = sorted({n for n in names if n not in index})
    if unknown:
        from ..errors import EdgeSdkError

        raise EdgeSdkError(f"{variant} predicts label(s) the data does not have: {', '.join(unknown[:5])} "
                           "(was it trained on other data?)")
    return np.array([index[n] for n in names])


def run_benchmark(bundles: list[Path], data, teacher: Path | None, settings: Settings,
                  log: Callable[[str], None] = print, command: str | None = None,
                  work_dir: Path | None = None) -> dict:
    """Measure the reference rows (when `teacher` is given) and every model of every bundle.

    data: a LabelledData (edge_sdk.data.load_data). Returns {"environment", "gemm", "settings",
    "rows", "notes"}; rows carry their ratios.
    """
    env = environment(threads=settings.threads, command=command)  # load average before we add ours
    with tempfile.TemporaryDirectory(prefix="edge-bench-") as tmp:
        work = Path(work_dir) if work_dir else Path(tmp)
        specs: list[VariantSpec] = []
        info: dict[str, dict] = {}
        notes: list[str] = []
        for bundle, label in zip(bundles, bundle_labels([Path(b) for b in bundles])):
            s, i = bundle_specs(Path(bundle), label)  # first: a bad bundle fails before minutes of work
            specs += s
            info.update(i)
        if teacher is not None:
            log(f"reference rows: exporting and quantizing the teacher {teacher}")
            s, i = prepare_references(Path(teacher), work / "reference")
            specs = s + specs
            info.update(i)

        test_texts, gold = list(data.test.texts), np.asarray(data.test.labels)
        pool = distinct_queries(test_texts, settings.queries + settings.warmup, settings.seed)
        if len(pool) < settings.queries + settings.warmup:
            notes.append(f"the test split has only {len(pool)} distinct texts; latency uses "
                         f"{max(len(pool) - settings.warmup, 1)} of them")
        warm, timed = pool[:settings.warmup], pool[settings.warmup:] or pool
        if len(timed) < PROTOCOL_QUERIES:
            notes.append(f"latency over {len(timed)} queries, fewer than the protocol's {PROTOCOL_QUERIES}: "
                         "a smoke test, not a claim")

        first = settings.threads[0]
        rows_base: dict[str, dict] = {}
        for spec in list(specs):
            try:
                runner = open_runner(spec, first)
            except Exception as exc:  # e.g. a TFLite model without LiteRT installed
                from edge_runtime.errors import BackendUnavailableError

                if not isinstance(exc, BackendUnavailableError):
                    raise
                notes.append(f"{spec.name}: not measured: {exc}")
                specs.remove(spec)
                continue
            start = time.perf_counter()
            names = runner.label_names(test_texts, settings.accuracy_batch)
            report = accuracy_report(predicted_label_ids(names, data.labels, spec.name), gold, data.oos_id)
            length = median_length(runner.token_lengths(test_texts))
            shapes = info[spec.name].get("shapes")
            log(f"accuracy {spec.name}: {report['accuracy']:.4f} ({len(test_texts)} texts, "
                f"{time.perf_counter() - start:.0f} s)")
            if runner.fallbacks:
                notes.append(f"{spec.name}: the bundle asks for {', '.join(runner.fallbacks)}, not available "
                             f"in this onnxruntime; measured on {', '.join(runner.providers)}")
            rows_base[spec.name] = {
                "name": spec.name, "kind": spec.kind, "runner": spec.runner,
                "backend": info[spec.name].get("backend"), "precision": info[spec.name].get("precision"),
                "path": spec.path if spec.kind == "bundle" else None, "model_file": spec.model,
                "providers": list(runner.providers) or None, "accuracy_batch": settings.accuracy_batch,
                "accuracy": report["accuracy"], "in_scope_accuracy": report.get("in_scope_accuracy"),
                "oos_recall": report.get("oos_recall"), "test_n": report["n"],
                "size_mb": info[spec.name]["size_mb"], "median_tokens": length,
                "flops": flops_from_shapes(shapes, length) if shapes else None,
            }
            runner.close()

        rss: dict[str, dict] = {}
        if settings.measure_rss:
            for spec in specs:
                log(f"peak RSS {spec.name}: fresh process")
                rss[spec.name] = _rss(spec, first, timed)

        from .gemm import gemm_rates

        gemm, rows = {}, []
        for threads in settings.threads:
            gemm[threads] = gemm_rates(threads)
            log(f"threads {threads}: dense GEMM fp32 {gemm[threads]['fp32_gflops']:.1f} GFLOP/s"
                + (f", int8 {gemm[threads]['int8_gops']:.1f} GOP/s" if gemm[threads].get("int8_gops") else ""))
            runners = {spec.name: open_runner(spec, threads) for spec in specs}
            latency, qps = _timed_rounds(runners, warm, timed, settings, log, threads)
            for spec in specs:
                row = dict(rows_base[spec.name], threads=threads, latency=latency[spec.name],
                           batch32_qps=qps[spec.name], **rss.get(spec.name, {}))
                if row.get("flops") and row["latency"]["p50_ms"] > 0:
                    achieved = row["flops"] / (row["latency"]["p50_ms"] / 1000.0) / 1e9
                    row["achieved_gflops"] = achieved
                    row["gemm_fraction"] = achieved / gemm[threads]["fp32_gflops"]
                    if row.get("precision") == "int8" and gemm[threads].get("int8_gops"):
                        row["gemm_fraction_int8"] = achieved / gemm[threads]["int8_gops"]
                rows.append(row)
            for runner in runners.values():
                runner.close()
        env["load_average_end"] = environment()["load_average"]
        return {"environment": env, "gemm": {str(k): v for k, v in gemm.items()},
                "settings": {**settings.__dict__, "timed_queries": len(timed), "data": data.name,
                             "test_texts": len(test_texts)},
                "rows": with_ratios(rows), "notes": notes}


def _rss(spec: VariantSpec, threads: int, texts: list[str]) -> dict:
    from .rss import measure_in_subprocess

    result = measure_in_subprocess(spec.to_dict(), threads, texts)
    if "error" in result:
        return {"peak_rss_mb": None, "rss_error": result["error"]}
    return {"peak_rss_mb": result["peak_rss_mb"], "import_rss_mb": result["import_rss_mb"],
            "loaded_rss_mb": result["loaded_rss_mb"], "rss_process_imported_torch": result["torch_imported"]}


def _timed_rounds(runners: dict, warm: list[str], timed: list[str], settings: Settings,
                  log: Callable[[str], None], threads: int) -> tuple[dict, dict]:
    names = list(runners)
    for name in names:  # warm-up: first calls allocate, pick kernels, fill caches
        time_each(runners[name].predict, warm or timed[:1])
    samples: dict[str, list[float]] = {n: [] for n in names}
    chunks = [timed[i:i + settings.round_size] for i in range(0, len(timed), settings.round_size)]
    log(f"threads {threads}: batch-1 latency, {len(timed)} queries × {len(names)} variants "
        f"in {len(chunks)} interleaved rounds")
    for r, chunk in enumerate(chunks):
        for name in names[r % len(names):] + names[:r % len(names)]:
            samples[name] += time_each(runners[name].predict, chunk)
    seconds: dict[str, float] = {n: 0.0 for n in names}
    t_chunks = [timed[i:i + settings.throughput_round] for i in range(0, len(timed), settings.throughput_round)]
    for r, chunk in enumerate(t_chunks):
        for name in names[r % len(names):] + names[:r % len(names)]:
            seconds[name] += len(chunk) / throughput(runners[name].predict, chunk, batch_size=32)
    latency = {n: latency_stats(samples[n]) for n in names}
    qps = {n: len(timed) / seconds[n] for n in names}
    return latency, qps
