"""The build report: every target's shipped files beside the PyTorch references, as a table and a plot."""

from __future__ import annotations

from pathlib import Path

from ..data import LabelledData


def write_build_report(out: Path, results, references: dict[str, dict], data: LabelledData) -> Path:
    from ..report.environment import environment
    from ..report.markdown import write_report
    from ..report.plot import plot_metrics

    rows = list(references.values())
    for result in results:
        rows += result.rows
    out.mkdir(parents=True, exist_ok=True)
    plot = plot_metrics(rows, out / "report.png")
    context = {**environment(threads=1), "data": data.name,
               "targets": ", ".join(f"{r.target}: {'ok' if r.error is None else 'FAILED'}" for r in results)}
    return write_report(out / "report.md", "edge-sdk build report", rows, plot, context)
