"""`edge-sdk build --target arm64 --target android-tflite` end to end through the CLI, on a tiny model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from edge_runtime import Manifest

pytest.importorskip("litert_torch", reason="the tflite extra: pip install 'edge-sdk[tflite]'")

from test_build import edge_sdk, tiny_data, tiny_model_dir  # noqa: F401  (fixtures)

BIN = Path(sys.executable).parent


def edge_runtime(*args):
    return subprocess.run([str(BIN / "edge-runtime"), *map(str, args)], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def tflite_built(tmp_path_factory, tiny_model_dir, tiny_data):
    out = tmp_path_factory.mktemp("build")
    cache = tmp_path_factory.mktemp("cache")
    result = edge_sdk("build", "--target", "arm64", "--target", "android-tflite", "--model", tiny_model_dir,
                      "--data", tiny_data, "--out", out, "--cache-dir", cache, "--latency-queries", "10",
                      "--max-accuracy-drop", "100")
    assert result.returncode == 0, result.stdout + result.stderr[-4000:]
    return {"out": out, "cache": cache, "model": tiny_model_dir, "data": tiny_data}


def test_arm64_ships_onnx_and_tflite(tflite_built):
    manifest = Manifest.read(tflite_built["out"] / "arm64")
    assert [(m.file, m.backend, m.precision) for m in manifest.models] == [
        ("model.int8.onnx", "onnx", "int8"), ("model.int8.tflite", "tflite", "int8")]
    tfl = manifest.models[1]
    assert tfl.sequence_length == manifest.max_length == 128 and tfl.tolerance == 0.25
    assert {"accuracy", "size_mb", "latency", "validation", "accuracy_drop_points"} <= set(tfl.metrics)
    assert tfl.metrics["validation"]["argmax_agreement"] >= 0.9
    android = Manifest.read(tflite_built["out"] / "android-tflite")
    assert [m.backend for m in android.models] == ["tflite"] and android.execution["threads"] == 4


@pytest.mark.parametrize("target", ["arm64", "android-tflite"])
def test_runtime_verifies_and_predicts(tflite_built, target):
    bundle = tflite_built["out"] / target
    verify = edge_runtime("verify", bundle)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert verify.stdout.count(": OK") == len(Manifest.read(bundle).models)
    for backend in (["onnx", "tflite"] if target == "arm64" else ["tflite"]):
        predict = edge_runtime("predict", "--backend", backend, bundle, "wake me up at 7", "what's my balance")
        assert predict.returncode == 0, predict.stderr
        rows = [json.loads(line) for line in predict.stdout.splitlines()]
        assert len(rows) == 2 and all(r["label"] in ("alarm", "balance", "oos", "weather") for r in rows)


def test_build_without_the_converter_fails_in_one_line(tflite_built, tmp_path):
    """A stand-in litert_torch that cannot be imported; a profile whose length is not cached yet."""
    fake = tmp_path / "site"
    (fake / "litert_torch").mkdir(parents=True)
    (fake / "litert_torch" / "__init__.py").write_text("raise ImportError('No module named litert_torch')\n")
    profile = tmp_path / "tflite-64.toml"
    profile.write_text('name = "tflite-64"\nwhy = "test"\nmax_length = 64\n[[models]]\nfile = "m.tflite"\n'
                       'format = "tflite"\nprecision = "int8"\n[models.quantization]\nmethod = "dynamic"\n')
    env = {**os.environ, "PYTHONPATH": str(fake)}
    result = subprocess.run([str(BIN / "edge-sdk"), "build", "--target", profile, "--model", tflite_built["model"],
                             "--data", tflite_built["data"], "--out", tmp_path / "out", "--cache-dir",
                             tflite_built["cache"], "--latency-queries", "10"],
                            capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: TFLite export needs") and "pip install 'edge-sdk[tflite]'" in last
    assert "Traceback" not in result.stderr and not (tmp_path / "out" / "tflite-64").exists()
