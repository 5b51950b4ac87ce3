"""The headline claims on CLINC150, end to end through the CLI (slow: fine-tunes MiniLM, ~30 min on
2 cores the first time, then cached in ~/.cache/edge-sdk). Run with `make test-slow`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from edge_runtime import Manifest

pytestmark = pytest.mark.slow


def test_clinc150_teacher_and_vnni_bundle(tmp_path, clinc_dir):
    out = tmp_path / "clinc"
    result = subprocess.run([str(Path(sys.executable).parent / "edge-sdk"), "build", "--target", "x86-avx512-vnni",
                             "--data", str(clinc_dir), "--out", str(out)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    manifest = Manifest.read(out / "x86-avx512-vnni")
    teacher = manifest.metrics["teacher_accuracy"]
    model = manifest.models[0].metrics
    assert teacher >= 0.87                                  # the book's BERT-base: 0.867
    assert teacher - model["accuracy"] <= 0.01              # within 1 point of the teacher
    assert model["size_mb"] * 3.5 <= 91.0                   # the FP32 teacher's weights are 91 MB
