"""Accuracy reports and the out-of-scope threshold fit, on fixed numbers."""

from __future__ import annotations

import numpy as np
import pytest

from edge_sdk.metrics import accuracy_report, drop_points, fit_oos_threshold, thresholded

OOS = 2
# top probabilities: in-scope rows are confident (>= 0.7), out-of-scope ones are not (<= 0.55),
# except the last oos row, which no threshold below 0.9 can catch
PROBS = np.array([[0.90, 0.05, 0.05], [0.10, 0.70, 0.20], [0.80, 0.15, 0.05], [0.50, 0.30, 0.20],
                  [0.20, 0.55, 0.25], [0.45, 0.40, 0.15], [0.05, 0.90, 0.05]])
GOLD = np.array([0, 1, 0, OOS, OOS, OOS, OOS])


def test_threshold_fit_maximises_validation_accuracy():
    threshold = fit_oos_threshold(PROBS, GOLD, OOS)
    # any threshold in (0.55, 0.70] catches the three unsure oos rows and keeps the three in-scope ones
    assert threshold == pytest.approx(0.70)
    predicted = thresholded(PROBS, threshold, OOS)
    assert predicted.tolist() == [0, 1, 0, OOS, OOS, OOS, 1]
    assert accuracy_report(predicted, GOLD, OOS) == {"accuracy": 6 / 7, "n": 7, "in_scope_accuracy": 1.0,
                                                     "oos_recall": 0.75}
    assert accuracy_report(PROBS.argmax(-1), GOLD, OOS)["oos_recall"] == 0.0  # without it: none caught


def test_no_threshold_when_falling_back_only_hurts():
    confident = np.array([[0.6, 0.4, 0.0], [0.3, 0.7, 0.0]])
    assert fit_oos_threshold(confident, np.array([0, 1]), OOS) == 0.0


def test_drops_compare_as_printed():
    assert drop_points(0.8758, 0.8658) == 1.0  # printed 1.00: within a 1.0 budget, not 1.0000000000000009
