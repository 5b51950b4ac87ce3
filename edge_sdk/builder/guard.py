"""The accuracy guard: every file a bundle ships is measured on the full test split through
edge_runtime (the device code path) before the bundle is published; past the budget the build
stops and nothing reaches the output path.

Two budgets, each against what it is responsible for:
- a target's `max_accuracy_drop` bounds what export and quantization for that hardware lose
  against the FP32 model they start from (the teacher, or the last model step's output; for a
  final qat step, the model QAT started from: its int8 program is what QAT delivers);
- a recipe's `max_accuracy_drop` bounds what its model steps (distillation, ...) lose against the
  FP32 teacher, checked once before any target is built (`check_model_steps`).
Drops are compared as they are shown (2 decimals): a drop printed as 1.00 passes a 1.0 budget.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edge_runtime.manifest import ModelFile

from ..data import LabelledData
from ..errors import AccuracyBudgetError
from ..metrics import drop_points
from .measure import measure_bundle
from .progress import Progress


@dataclass(frozen=True)
class Budget:
    target: str
    max_drop: float  # points
    source: str  # what the shipped files are compared with, e.g. "FP32 teacher"
    source_accuracy: float
    teacher_accuracy: float


def check_model_steps(teacher_accuracy: float, source_accuracy: float, max_drop: float | None,
                      recipe: str) -> None:
    """Raise when the recipe's model steps lost more than the recipe allows (FP32, before export)."""
    drop = drop_points(teacher_accuracy, source_accuracy)
    if max_drop is not None and drop > max_drop:
        raise AccuracyBudgetError(
            f"the model steps of recipe {recipe!r} lose {drop:.2f} accuracy points against the FP32 teacher "
            f"({source_accuracy:.4f} vs {teacher_accuracy:.4f}) in FP32, before any export; the recipe's budget "
            f"is {max_drop} points. Nothing was built.")


def accuracy_guard(files: list[ModelFile], data: LabelledData, budget: Budget, latency_queries: int,
                   progress: Progress, out_dir: Path) -> Callable[[Path], dict[str, dict]]:
    """The `measure` callback of write_bundle: metrics per model file, or AccuracyBudgetError."""
    def measure(bundle_dir: Path) -> dict[str, dict]:
        measured = {}
        for entry in files:
            with progress.step(f"{entry.file}: accuracy on {len(data.test)} test texts and latency via edge_runtime"):
                metrics = measure_bundle(bundle_dir, entry.file, data, latency_queries)
            drop = drop_points(budget.source_accuracy, metrics["accuracy"])
            metrics["accuracy_drop_points"] = drop_points(budget.teacher_accuracy, metrics["accuracy"])
            metrics["export_drop_points"] = drop
            progress.note(f"{entry.file}: accuracy {metrics['accuracy']:.4f} ({budget.source} "
                          f"{budget.source_accuracy:.4f}, drop {drop:.2f} points, budget {budget.max_drop}), "
                          f"{metrics['size_mb']:.1f} MB, p50 {metrics['latency']['p50_ms']:.2f} ms")
            if drop > budget.max_drop:
                raise AccuracyBudgetError(
                    f"{entry.file} loses {drop:.2f} accuracy points against the {budget.source} "
                    f"({metrics['accuracy']:.4f} vs {budget.source_accuracy:.4f}); the {budget.target} budget "
                    f"is {budget.max_drop} points. Nothing was written to {out_dir}.")
            measured[entry.file] = metrics
        return measured

    return measure
