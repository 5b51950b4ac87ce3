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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge_runtime.bench import latency_stats, throughput, time_each

from ..metrics import accuracy_report, label_ids
from ..report.environment import environment
from ..report.table import with_ratios
from .flops import flops_from_shapes, median_length
from .variants import VariantSpec, baseline_specs, bundle_labels, bundle_specs, open_runner, prepare_references

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


def run_benchmark(bundles: list[Path], data, teacher: Path | None, settings: Settings,
                  log: Callable[[str], None] = print, command: str | None = None,
                  work_dir: Path | None = None, baselines: tuple[Path, ...] = ()) -> dict:
    """Measure the reference rows (when `teacher` is given), an FP32 PyTorch row per baseline model,
    and every model of every bundle.

    data: a LabelledData (edge_sdk.data.load_data). Returns {"environment", "gemm", "settings",
    "rows", "notes"}; rows carry their ratios.
    """
    env = environment(threads=settings.threads, command=command)  # load average before we add ours
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="edge-bench-") as tmp:
        specs, info = collect_variants(bundles, teacher, Path(work_dir) if work_dir else Path(tmp), log, baselines)
        warm, timed = latency_queries(list(data.test.texts), settings, notes)
        rows_base = accuracy_rows(specs, info, data, settings, log, notes)
        specs = [spec for spec in specs if spec.name in rows_base]  # a model that could not run is noted
        rss = {spec.name: _rss(spec, settings.threads[0], timed, log) for spec in specs} \
            if settings.measure_rss else {}
        gemm, rows = {}, []
        for threads in settings.threads:
            gemm[threads], timed_rows = timed_at(threads, specs, warm, timed, settings, log)
            rows += [with_gemm_fraction(dict(rows_base[name], **row, **rss.get(name, {})), gemm[threads])
                     for name, row in timed_rows.items()]
        env["load_average_end"] = environment()["load_average"]
        return {"environment": env, "gemm": {str(k): v for k, v in gemm.items()},
                "settings": {**settings.__dict__, "timed_queries": len(timed), "data": data.name,
                             "test_texts": len(data.test)},
                "rows": with_ratios(rows), "notes": notes}


def collect_variants(bundles: list[Path], teacher: Path | None, work: Path, log: Callable[[str], None],
                     baselines: tuple[Path, ...] = ()) -> tuple[list[VariantSpec], dict[str, dict]]:
    """Every bundle's model files (opened first: a bad bundle fails before minutes of work), then
    the reference rows built from the teacher, placed first, and the baseline rows after them."""
    specs: list[VariantSpec] = []
    info: dict[str, dict] = {}
    for bundle, label in zip(bundles, bundle_labels([Path(b) for b in bundles])):
        s, i = bundle_specs(Path(bundle), label)
        specs += s
        info.update(i)
    if teacher is not None:
        log(f"reference rows: exporting and quantizing the teacher {teacher}")
        s, i = prepare_references(Path(teacher), work / "reference")
        specs = s + specs
        info.update(i)
    if baselines:
        s, i = baseline_specs(list(baselines), work / "baselines")
        references = sum(1 for spec in specs if spec.kind == "reference")
        specs = specs[:references] + s + specs[references:]
        info.update(i)
    return specs, info


def latency_queries(test_texts: list[str], settings: Settings, notes: list[str]) -> tuple[list[str], list[str]]:
    """Warm-up and timed queries: distinct test texts in a seeded order."""
    pool = distinct_queries(test_texts, settings.queries + settings.warmup, settings.seed)
    if len(pool) < settings.queries + settings.warmup:
        notes.append(f"the test split has only {len(pool)} distinct texts; latency uses "
                     f"{max(len(pool) - settings.warmup, 1)} of them")
    warm, timed = pool[:settings.warmup], pool[settings.warmup:] or pool
    if len(timed) < PROTOCOL_QUERIES:
        notes.append(f"latency over {len(timed)} queries, fewer than the protocol's {PROTOCOL_QUERIES}: "
                     "a smoke test, not a claim")
    return warm, timed


def accuracy_rows(specs: list[VariantSpec], info: dict[str, dict], data, settings: Settings,
                  log: Callable[[str], None], notes: list[str]) -> dict[str, dict]:
    """Per variant: accuracy on the whole test split, size, FLOPs at the median length."""
    from edge_runtime.errors import BackendUnavailableError

    test_texts = list(data.test.texts)
    rows: dict[str, dict] = {}
    for spec in specs:
        try:
            runner = open_runner(spec, settings.threads[0])
        except BackendUnavailableError as exc:  # e.g. a TFLite model without LiteRT installed
            notes.append(f"{spec.name}: not measured: {exc}")
            continue
        start = time.perf_counter()
        report = scored(runner, data, settings.accuracy_batch, spec.name)
        length = median_length(runner.token_lengths(test_texts))
        shapes = info[spec.name].get("shapes")
        log(f"accuracy {spec.name}: {report['accuracy']:.4f} ({len(test_texts)} texts, "
            f"{time.perf_counter() - start:.0f} s)")
        if runner.fallbacks:
            notes.append(f"{spec.name}: the bundle asks for {', '.join(runner.fallbacks)}, not available "
                         f"in this onnxruntime; measured on {', '.join(runner.providers)}")
        rows[spec.name] = {
            "name": spec.name, "kind": spec.kind, "runner": spec.runner,
            "backend": info[spec.name].get("backend"), "precision": info[spec.name].get("precision"),
            "path": spec.path if spec.kind == "bundle" else None, "model_file": spec.model,
            "providers": list(runner.providers) or None, "accuracy_batch": settings.accuracy_batch,
            "accuracy": report["accuracy"], "in_scope_accuracy": report.get("in_scope_accuracy"),
            "oos_recall": report.get("oos_recall"), "test_n": report["n"],
            **{k: report[k] for k in ("oos_threshold", "accuracy_thr", "in_scope_accuracy_thr", "oos_recall_thr")
               if k in report},
            "size_mb": info[spec.name]["size_mb"], "median_tokens": length,
            "flops": flops_from_shapes(shapes, length) if shapes else None,
        }
        runner.close()
    return rows


def scored(runner, data, batch_size: int, name: str) -> dict:
    """Test-split accuracy from the variant's logits, and, where the data has an out-of-scope label,
    the same with a threshold on the top probability fitted on the validation split for this variant
    (every row, the teacher included, gets its own: nothing is compared unfairly)."""
    from edge_runtime.pipeline import softmax

    from ..metrics import fit_oos_threshold, thresholded

    to_data = label_ids(list(runner.labels), data.labels, name)  # model label order -> data label ids
    gold = np.asarray(data.test.labels)
    test = softmax(runner.logits_in_batches(list(data.test.texts), batch_size))
    report = accuracy_report(to_data[test.argmax(-1)], gold, data.oos_id)
    if data.oos_id is not None and len(data.validation) and data.oos_label in runner.labels:
        oos = runner.labels.index(data.oos_label)
        validation = softmax(runner.logits_in_batches(list(data.validation.texts), batch_size))
        threshold = fit_oos_threshold(validation, to_data.argsort()[np.asarray(data.validation.labels)], oos)
        fitted = accuracy_report(to_data[thresholded(test, threshold, oos)], gold, data.oos_id)
        report.update(oos_threshold=threshold, accuracy_thr=fitted["accuracy"],
                      in_scope_accuracy_thr=fitted.get("in_scope_accuracy"), oos_recall_thr=fitted.get("oos_recall"))
    return report


def timed_at(threads: int, specs: list[VariantSpec], warm: list[str], timed: list[str], settings: Settings,
             log: Callable[[str], None]) -> tuple[dict, dict[str, dict]]:
    """This machine's GEMM rates and every variant's latency and throughput at `threads`."""
    from .gemm import gemm_rates

    gemm = gemm_rates(threads)
    log(f"threads {threads}: dense GEMM fp32 {gemm['fp32_gflops']:.1f} GFLOP/s"
        + (f", int8 {gemm['int8_gops']:.1f} GOP/s" if gemm.get("int8_gops") else ""))
    runners = {spec.name: open_runner(spec, threads) for spec in specs}
    try:
        latency, qps = _timed_rounds(runners, warm, timed, settings, log, threads)
    finally:
        for runner in runners.values():
            runner.close()
    return gemm, {name: {"threads": threads, "latency": latency[name], "batch32_qps": qps[name]}
                  for name in runners}


def with_gemm_fraction(row: dict, gemm: dict) -> dict:
    """The row with achieved GFLOP/s at p50 and its share of the GEMM rates measured in the run."""
    if row.get("flops") and row["latency"]["p50_ms"] > 0:
        achieved = row["flops"] / (row["latency"]["p50_ms"] / 1000.0) / 1e9
        row["achieved_gflops"] = achieved
        row["gemm_fraction"] = achieved / gemm["fp32_gflops"]
        if row.get("precision") == "int8" and gemm.get("int8_gops"):
            row["gemm_fraction_int8"] = achieved / gemm["int8_gops"]
    return row


def _rss(spec: VariantSpec, threads: int, texts: list[str], log: Callable[[str], None]) -> dict:
    from .rss import measure_in_subprocess

    log(f"peak RSS {spec.name}: fresh process")
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
