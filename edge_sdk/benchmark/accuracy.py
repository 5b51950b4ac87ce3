"""Accuracy the way the benchmark protocol reports it: overall, in-scope, out-of-scope recall."""

from __future__ import annotations

import numpy as np


def accuracy_report(predicted: np.ndarray, gold: np.ndarray, oos_id: int | None) -> dict[str, float]:
    """`predicted` and `gold` are label ids; oos_id is the out-of-scope label's id, if any."""
    predicted, gold = np.asarray(predicted), np.asarray(gold)
    correct = predicted == gold
    report = {"accuracy": float(correct.mean()), "n": int(len(gold))}
    if oos_id is not None and (gold == oos_id).any():
        report["in_scope_accuracy"] = float(correct[gold != oos_id].mean())
        report["oos_recall"] = float(correct[gold == oos_id].mean())
    return report


def predicted_ids(labels: tuple[str, ...], predictions: list[dict]) -> np.ndarray:
    """Label ids from Pipeline results (the oos fallback may rename a prediction)."""
    index = {label: i for i, label in enumerate(labels)}
    return np.array([index[p["label"]] for p in predictions])
