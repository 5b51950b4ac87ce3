"""Accuracy the way the benchmark protocol reports it: overall, in-scope, out-of-scope recall."""

from __future__ import annotations

import numpy as np

from .errors import DataError


def accuracy_report(predicted: np.ndarray, gold: np.ndarray, oos_id: int | None) -> dict[str, float]:
    """`predicted` and `gold` are label ids; oos_id is the out-of-scope label's id, if any."""
    predicted, gold = np.asarray(predicted), np.asarray(gold)
    correct = predicted == gold
    report = {"accuracy": float(correct.mean()), "n": int(len(gold))}
    if oos_id is not None and (gold == oos_id).any():
        report["in_scope_accuracy"] = float(correct[gold != oos_id].mean())
        report["oos_recall"] = float(correct[gold == oos_id].mean())
    return report


def label_ids(names: list[str], labels: tuple[str, ...], who: str = "the model") -> np.ndarray:
    """Ids into `labels` of predicted label names; a name the data does not have is a DataError."""
    index = {label: i for i, label in enumerate(labels)}
    unknown = sorted({n for n in names if n not in index})
    if unknown:
        raise DataError(f"{who} predicts label(s) the data does not have: {', '.join(unknown[:5])} "
                        "(was it trained on other data?)")
    return np.array([index[n] for n in names], dtype=np.int64)


def drop_points(reference_accuracy: float, accuracy: float) -> float:
    """Accuracy points lost, rounded as reports show them (2 decimals), so a drop printed as 1.00 is
    compared with a 1.0 budget as 1.00, not as 1.0000001."""
    return round(100.0 * (reference_accuracy - accuracy), 2)


def thresholded(probs: np.ndarray, threshold: float, oos_id: int) -> np.ndarray:
    """Predicted ids where a top probability below `threshold` becomes the out-of-scope label (what
    edge_runtime.Pipeline does with a manifest's oos_threshold)."""
    predicted = probs.argmax(-1)
    return np.where(probs.max(-1) < threshold, oos_id, predicted)


def fit_oos_threshold(probs: np.ndarray, gold: np.ndarray, oos_id: int) -> float:
    """The top-probability threshold that maximises accuracy on these (validation) rows: every
    distinct top probability is a candidate, 0 (never fall back) included; ties go to the lowest."""
    top = np.sort(np.unique(probs.max(-1)))
    candidates = np.concatenate([[0.0], top])
    gold = np.asarray(gold)
    scores = [float((thresholded(probs, t, oos_id) == gold).mean()) for t in candidates]
    return float(candidates[int(np.argmax(scores))])
