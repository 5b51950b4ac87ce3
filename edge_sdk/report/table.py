"""The benchmark table: which columns, how each cell is written, and ratios against the reference.

A row is a plain dict (see `edge_sdk.report`); every key but `name` may be missing and shows as
an en dash. Shared by the Markdown report and the console table so both say the same thing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

DASH = "–"


def reference_for(row: dict, rows: list[dict]) -> dict | None:
    """The first reference row measured at the same thread count (ratios never mix runs or threads)."""
    for candidate in rows:
        if candidate.get("kind") == "reference" and candidate.get("threads") == row.get("threads"):
            return candidate
    return None


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _latency(row: dict, key: str) -> float | None:
    return _num((row.get("latency") or {}).get(key))


def with_ratios(rows: list[dict]) -> list[dict]:
    """Copies of `rows` with a `ratios` dict against their reference row (the first reference row
    at the same thread count): speedup_p50 and speedup_mean (reference / row), throughput (row /
    reference), size (row / reference), rss (row / reference), accuracy_delta (row - reference)."""
    out = []
    for row in rows:
        base = reference_for(row, rows)
        ratios: dict[str, Any] = {"reference": base.get("name") if base else None}
        if base is not None:
            def div(a, b):
                return a / b if a is not None and b not in (None, 0) else None
            ratios["speedup_p50"] = div(_latency(base, "p50_ms"), _latency(row, "p50_ms"))
            ratios["speedup_mean"] = div(_latency(base, "mean_ms"), _latency(row, "mean_ms"))
            ratios["throughput"] = div(_num(row.get("batch32_qps")), _num(base.get("batch32_qps")))
            ratios["size"] = div(_num(row.get("size_mb")), _num(base.get("size_mb")))
            ratios["rss"] = div(_num(row.get("peak_rss_mb")), _num(base.get("peak_rss_mb")))
            acc, ref_acc = _num(row.get("accuracy")), _num(base.get("accuracy"))
            ratios["accuracy_delta"] = acc - ref_acc if acc is not None and ref_acc is not None else None
        out.append({**row, "ratios": ratios})
    return out


def _pct(value: Any) -> str:
    v = _num(value)
    return DASH if v is None else f"{100 * v:.2f}"


def _fixed(value: Any, digits: int = 1) -> str:
    v = _num(value)
    return DASH if v is None else f"{v:.{digits}f}"


def _ratio(value: Any) -> str:
    v = _num(value)
    return DASH if v is None else f"{v:.2f}×"


def _mean_std(row: dict) -> str:
    mean, std = _latency(row, "mean_ms"), _latency(row, "std_ms")
    if mean is None:
        return DASH
    return f"{mean:.2f} ± {std:.2f}" if std is not None else f"{mean:.2f}"


def _rss(row: dict) -> str:
    peak = _num(row.get("peak_rss_mb"))
    return DASH if peak is None else f"{peak:.0f}"


def _delta(row: dict) -> str:
    v = _num((row.get("ratios") or {}).get("accuracy_delta"))
    return DASH if v is None else f"{100 * v:+.2f}"


def _gflops(row: dict) -> str:
    v = _num(row.get("flops"))
    return DASH if v is None else f"{v / 1e9:.3g}"


def _gemm(row: dict) -> str:
    """Share of the fp32 GEMM rate; int8 rows also against the int8 rate (VNNI runs int8 faster)."""
    v = _num(row.get("gemm_fraction"))
    if v is None:
        return DASH
    int8 = _num(row.get("gemm_fraction_int8"))
    return f"{100 * v:.1f}%" + (f" (int8 {100 * int8:.0f}%)" if int8 is not None else "")


Column = tuple[str, str, Callable[[dict], str]]

# (key, header, cell): key names the column in tests and JSON consumers; header is what people read.
COLUMNS: list[Column] = [
    ("name", "model", lambda r: str(r.get("name", DASH))),
    ("threads", "thr", lambda r: str(r.get("threads", DASH))),
    ("accuracy", "acc %", lambda r: _pct(r.get("accuracy"))),
    ("in_scope_accuracy", "in-scope %", lambda r: _pct(r.get("in_scope_accuracy"))),
    ("oos_recall", "oos recall %", lambda r: _pct(r.get("oos_recall"))),
    # the same with an out-of-scope threshold fitted on the validation split for that row
    ("accuracy_thr", "acc % (thr)", lambda r: _pct(r.get("accuracy_thr"))),
    ("oos_recall_thr", "oos recall % (thr)", lambda r: _pct(r.get("oos_recall_thr"))),
    ("size_mb", "size MB", lambda r: _fixed(r.get("size_mb"), 1)),
    ("mean_std_ms", "mean ± std ms", _mean_std),
    ("p50_ms", "p50 ms", lambda r: _fixed(_latency(r, "p50_ms"), 2)),
    ("p95_ms", "p95 ms", lambda r: _fixed(_latency(r, "p95_ms"), 2)),
    ("p99_ms", "p99 ms", lambda r: _fixed(_latency(r, "p99_ms"), 2)),
    ("batch32_qps", "b32 q/s", lambda r: _fixed(r.get("batch32_qps"), 0)),
    ("peak_rss_mb", "peak RSS MB", _rss),
    ("gflops", "GFLOP/query", _gflops),
    ("gemm_fraction", "of fp32 GEMM", _gemm),
    ("speedup_p50", "p50 speedup", lambda r: _ratio((r.get("ratios") or {}).get("speedup_p50"))),
    ("throughput_ratio", "q/s ×", lambda r: _ratio((r.get("ratios") or {}).get("throughput"))),
    ("size_ratio", "size ×", lambda r: _ratio((r.get("ratios") or {}).get("size"))),
    ("accuracy_delta", "Δacc pt", _delta),
]


def table_cells(rows: list[dict]) -> tuple[list[str], list[list[str]]]:
    """Headers and the formatted cells of every row (ratios added when the rows lack them)."""
    rows = rows if all("ratios" in r for r in rows) else with_ratios(rows)
    return [h for _, h, _ in COLUMNS], [[cell(r) for _, _, cell in COLUMNS] for r in rows]
