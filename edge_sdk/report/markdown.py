"""The Markdown report: the table, the plot, and what it was measured on."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .table import table_cells, with_ratios

COLUMN_NOTES = (
    "acc: accuracy on the full test split; in-scope: accuracy on in-scope queries; oos recall: share of "
    "out-of-scope queries predicted as out-of-scope. size: what ships for that row (model file + tokenizer). "
    "Latency: batch 1, distinct test queries after warm-up, tokenization included. b32 q/s: throughput at "
    "batch 32. peak RSS: see the note below. GFLOP/query: one forward pass at the median query length; "
    "of fp32 GEMM: achieved GFLOP/s at p50 over this machine's fp32 GEMM rate measured in the same run "
    "(int8 rows also over the int8 GEMM rate). "
    "Ratios (speedup, q/s ×, size ×, Δacc) are against the first reference row at the same thread count, "
    "measured in the same run."
)


def _escape(cell: str) -> str:
    return cell.replace("|", "\\|")


def markdown_table(rows: list[dict]) -> str:
    """A GitHub Markdown table of `rows`; missing values show as an en dash."""
    headers, cells = table_cells(rows)
    lines = ["| " + " | ".join(headers) + " |",
             "| " + " | ".join("---" if i < 2 else "---:" for i in range(len(headers))) + " |"]
    lines += ["| " + " | ".join(_escape(c) for c in row) + " |" for row in cells]
    return "\n".join(lines) + "\n"


def _context_lines(context: dict[str, Any]) -> list[str]:
    lines = []
    known = {"cpu": "CPU", "cores": "cores", "isa": "int8-relevant ISA", "threads": "threads",
             "load_average": "load average (1, 5, 15 min) at start",
             "load_average_end": "load average (1, 5, 15 min) at end", "os": "OS", "python": "Python",
             "gemm": "dense GEMM rate", "queries": "latency queries", "command": "command"}
    for key, label in known.items():
        value = context.get(key)
        if value is None or value == []:
            continue
        if key == "command":
            lines.append(f"- {label}: `{value}`")
        elif key == "isa":
            lines.append(f"- {label}: {', '.join(value)}")
        elif key == "gemm" and isinstance(value, dict):
            parts = [f"{k}: {v:.1f} GFLOP/s" if isinstance(v, float) else f"{k}: {v}" for k, v in value.items()]
            lines.append(f"- {label}: " + "; ".join(parts))
        else:
            lines.append(f"- {label}: {value}")
    versions = context.get("versions") or {}
    if versions:
        lines.append("- versions: " + ", ".join(f"{k} {v}" for k, v in versions.items() if v))
    for key, value in context.items():
        if key not in known and key not in ("versions", "notes", "machine", "usable_cores") and value not in (None, ""):
            lines.append(f"- {key}: {value}")
    return lines


def write_report(path: str | Path, title: str, rows: list[dict], plot_path: str | Path | None,
                 context: dict[str, Any]) -> Path:
    """Write `path` (Markdown): title, table, the plot (linked relative to the report), context, notes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = with_ratios(rows)
    parts = [f"# {title}", "", markdown_table(rows)]
    if plot_path is not None:
        rel = os.path.relpath(Path(plot_path).resolve(), path.parent.resolve())
        parts += [f"![accuracy against p50 latency, point area by size]({Path(rel).as_posix()})", ""]
    parts += ["## Measured on", "", *_context_lines(context), "", "## Columns", "", COLUMN_NOTES, ""]
    notes = context.get("notes")
    if notes:
        parts += ["## Notes", ""] + [f"- {n}" for n in ([notes] if isinstance(notes, str) else notes)] + [""]
    path.write_text("\n".join(parts), encoding="utf-8")
    return path
