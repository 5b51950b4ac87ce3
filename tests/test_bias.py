"""Bias correction after distillation (edge_sdk/distill/bias.py): the fit recovers a known logit
shift, and the correction moves a real classifier's logits by exactly that shift."""

from __future__ import annotations

import numpy as np
import pytest
from test_distill import tiny_teacher

from edge_sdk.distill.bias import classifier_output, correct_bias, fit_logit_bias


def test_fit_recovers_a_known_shift_up_to_a_constant():
    rng = np.random.default_rng(0)
    student = rng.normal(scale=3.0, size=(400, 5))
    shift = np.array([0.0, 2.0, -1.0, 0.5, 0.0])
    got = fit_logit_bias(student, student + shift)
    np.testing.assert_allclose(got, shift - shift.mean(), atol=1e-4)
    assert abs(got.mean()) < 1e-9
    np.testing.assert_allclose(fit_logit_bias(student, student), 0.0, atol=1e-6)  # nothing to correct


def test_fit_refuses_logits_of_different_shapes():
    with pytest.raises(ValueError, match="same"):
        fit_logit_bias(np.zeros((3, 4)), np.zeros((3, 5)))


def test_correction_moves_the_model_logits_by_the_fitted_shift():
    import torch

    model = tiny_teacher(["a", "b", "c"], layers=1)
    inputs = {"input_ids": torch.randint(5, 500, (64, 8)), "attention_mask": torch.ones(64, 8, dtype=torch.long)}
    with torch.no_grad():
        before = model(**inputs).logits.numpy()
    teacher = before + np.array([0.0, 1.5, -0.7])  # a teacher that differs by a bias alone
    _, record = correct_bias(model, before, teacher)
    with torch.no_grad():
        after = model(**inputs).logits.numpy()
    shift = np.broadcast_to(fit_logit_bias(before, teacher), before.shape)
    np.testing.assert_allclose(after - before, shift, atol=1e-5)
    assert record["agreement_after"] == 1.0 and record["texts"] == 64
    assert classifier_output(model) is model.classifier
