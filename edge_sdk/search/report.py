"""What a search writes: every trial as a table (front and chosen point marked), the front as a
plot (accuracy against p50, point area by size), and everything as JSON."""

from __future__ import annotations

import json
from pathlib import Path

from ..files import atomic_write_text


def write_front(out: Path, result, teacher: dict) -> dict:
    from ..report.plot import plot_metrics

    files = {"table": out / "front.md", "plot": out / "front.png", "json": out / "trials.json"}
    atomic_write_text(files["json"], json.dumps({**result.__dict__, "files": None}, indent=2, default=str) + "\n")
    atomic_write_text(files["table"], front_table(result))
    points = [{"name": "teacher FP32 (PyTorch)", "kind": "reference", "accuracy": teacher["accuracy"],
               "latency": teacher["latency"], "size_mb": teacher["size_mb"]}]
    points += [{"name": f"trial {r['number']}: {_what(r)}", "kind": "candidate", "accuracy": r["accuracy"],
                "latency": {"p50_ms": r["p50_ms"]}, "size_mb": r["size_mb"], "chosen": r["number"] == result.chosen}
               for r in result.rows if r["number"] in result.front]
    plot_metrics(points, files["plot"], split="validation",
                 title=f"{result.target}: the Pareto front of {len(result.rows)} trials (area ∝ size)")
    return files


def front_table(result) -> str:
    lines = [f"# Search: {result.target}", "",
             f"Teacher (FP32, PyTorch) validation accuracy {result.teacher_accuracy:.4f}; budget "
             f"{result.budget} points. p50: {result.latency}. Accuracy on the validation split through "
             "edge_runtime at batch 1, of the file the target ships.", "",
             "| trial | state | what | val acc | Δ pt | p50 ms | size MB | front |",
             "| ---: | --- | --- | ---: | ---: | ---: | ---: | --- |"]
    for r in sorted(result.rows, key=lambda r: r["number"]):
        done = r["accuracy"] is not None
        mark = "**chosen**" if r["number"] == result.chosen else ("front" if r["number"] in result.front else "")
        state = r["state"].lower() + (f" ({r['stopped']})" if r.get("stopped") else "")
        lines.append(
            f"| {r['number']} | {state} | {_what(r)} | "
            + (f"{r['accuracy']:.4f} | {100 * (r['accuracy'] - result.teacher_accuracy):+.2f} | {r['p50_ms']:.2f} | "
               f"{r['size_mb']:.1f}" if done else "– | – | – | –")
            + f" | {mark} |")
    return "\n".join(lines) + "\n"


def _what(row: dict) -> str:
    """The trial's summary, and the recipe it started from (a starting point of the study)."""
    start = row.get("start")
    return row["summary"] + (f" (recipe {start})" if start and start != "uncompressed" else "")
