"""Weight-only low-bit ONNX models: 4-bit (and 8-bit) block-quantized MatMul weights (MatMulNBits)
and embedding tables (GatherBlockQuantized), from a profile or the int4 recipe, run by edge_runtime."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from test_build import edge_sdk, tiny_data, tiny_model_dir  # noqa: F401  (fixtures)

from edge_runtime import Manifest

BIN = Path(sys.executable).parent
# Fast teacher settings (as test_build's distilled recipe); test_qat uses them too.
TEACHER = "[teacher]\nlearning_rate = 1e-3\nepochs = 1\nmin_steps = 200\npatience = 2\n"


@pytest.fixture(scope="session")
def tiny_cache(tmp_path_factory) -> Path:
    """One step cache for the tiny builds of test_lowbit and test_qat (the teacher trains once)."""
    return tmp_path_factory.mktemp("cache")


def _ops(path: Path) -> Counter:
    import onnx

    return Counter(n.op_type for n in onnx.load(str(path)).graph.node)


@pytest.mark.parametrize("bits, embeddings", [(4, True), (4, False), (8, False)])
def test_weight_only_quantizes_every_matmul_weight(tmp_path, tiny_onnx, bits, embeddings):
    import onnx
    import onnxruntime as ort

    from edge_sdk.optimize.quantize_onnx import quantize
    from edge_sdk.profiles import OnnxQuantization

    fp32 = onnx.load(str(tiny_onnx))
    weights = {i.name for i in fp32.graph.initializer}
    matmuls = sum(n.op_type == "MatMul" and n.input[1] in weights for n in fp32.graph.node)
    gemms = sum(n.op_type == "Gemm" for n in fp32.graph.node)  # the pooler and the classifier
    spec = OnnxQuantization(method="weight-only", bits=bits, block_size=32, embeddings=embeddings)
    out = quantize(tiny_onnx, tmp_path / "model.onnx", spec)
    ops = _ops(out)
    # 2 layers x (q, k, v, out, up, down) and the pooler's Gemm rewritten as MatMul + Add; the
    # classifier's Gemm, which writes the logits, stays float
    assert (matmuls, gemms) == (12, 2) and ops["MatMulNBits"] == 13 and ops["Gemm"] == 1
    assert ops["GatherBlockQuantized"] == (3 if embeddings else 0)  # word, position, token-type tables
    model = onnx.load(str(out))
    nbits = [n for n in model.graph.node if n.op_type == "MatMulNBits"]
    assert all({a.name: a.i for a in n.attribute}["bits"] == bits for n in nbits)
    assert all({a.name: a.i for a in n.attribute}["block_size"] == 32 for n in nbits)
    if embeddings:  # the 30522 x 32 table dominates the tiny model: 4 bits make the file ~6x smaller
        assert out.stat().st_size < 0.2 * tiny_onnx.stat().st_size
    rng = np.random.default_rng(0)
    feeds = {"input_ids": rng.integers(1000, 20000, (2, 9)), "attention_mask": np.ones((2, 9), np.int64),
             "token_type_ids": np.zeros((2, 9), np.int64)}
    want = ort.InferenceSession(str(tiny_onnx), providers=["CPUExecutionProvider"]).run(None, feeds)[0]
    got = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(None, feeds)[0]
    # a random 32-wide model: one 4-bit scale per 32 weights rounds coarsely (the pooler adds ~5%)
    assert np.abs(got - want).max() < (0.5 if embeddings else 0.15 if bits == 4 else 0.05) * np.abs(want).max()


@pytest.mark.parametrize("settings, message", [
    ({"bits": 8}, "bits = 8 needs embeddings = false"),
    ({"block_size": 24}, "power of 2"),
    ({"bits": 3}, "bits must be one of 4, 8"),
    ({"accuracy_level": 5}, "accuracy_level must be one of"),
])
def test_weight_only_settings_are_checked(settings, message):
    from edge_sdk.config import from_table
    from edge_sdk.errors import ConfigError
    from edge_sdk.profiles import OnnxQuantization

    with pytest.raises(ConfigError, match=message):
        from_table(OnnxQuantization, {"method": "weight-only", **settings}, "recipe x [onnx_quantization]")


def test_int4_recipe_retags_int8_onnx_files():
    from edge_sdk.builder.progress import Progress
    from edge_sdk.builder.run import with_recipe
    from edge_sdk.errors import ConfigError
    from edge_sdk.profiles import load_target, parse_profile
    from edge_sdk.recipes import load_recipe

    arm = with_recipe(load_target("arm64"), load_recipe("int4"), Progress())
    onnx_model, tflite_model = arm.models
    assert (onnx_model.file, onnx_model.precision, onnx_model.quantization.method) == \
        ("model.int4.onnx", "int4", "weight-only")
    assert (tflite_model.file, tflite_model.precision) == ("model.int8.tflite", "int8")  # a TFLite file: untouched
    with pytest.raises(ConfigError, match="precision 'int8', but quantization method 'weight-only' makes int4"):
        parse_profile({"name": "x", "why": "y", "models": [{"file": "m.onnx", "format": "onnx", "precision": "int8",
                                                            "quantization": {"method": "weight-only"}}]})


def test_int4_bundle_builds_and_runs(tmp_path, tiny_model_dir, tiny_data, tiny_cache):
    recipe = tmp_path / "tiny-int4.toml"
    recipe.write_text('name = "tiny-int4"\nwhy = "4-bit weights on the tiny teacher, for tests"\n' + TEACHER +
                      '[onnx_quantization]\nmethod = "weight-only"\nbits = 4\nblock_size = 16\n')
    out = tmp_path / "out"
    result = edge_sdk("build", "--target", "x86-avx512-vnni", "--recipe", recipe, "--model", tiny_model_dir,
                      "--data", tiny_data, "--out", out, "--cache-dir", tiny_cache, "--latency-queries", "10",
                      "--max-accuracy-drop", "100")
    assert result.returncode == 0, result.stdout + result.stderr[-4000:]
    bundle = out / "x86-avx512-vnni"
    manifest = Manifest.read(bundle)
    (entry,) = manifest.models
    assert (entry.file, entry.precision) == ("model.int4.onnx", "int4")
    assert {"accuracy", "size_mb", "latency", "validation"} <= set(entry.metrics)
    assert _ops(bundle / "model.int4.onnx")["MatMulNBits"] > 0
    # never a fused graph: Attention / EmbedLayerNormalization would hide the weights from the quantizer
    assert _ops(bundle / "model.int4.onnx")["GatherBlockQuantized"] > 0
    assert "Attention" not in _ops(bundle / "model.int4.onnx") and "fused_operators" not in entry.metrics
    verify = subprocess.run([str(BIN / "edge-runtime"), "verify", bundle], capture_output=True, text=True)
    assert verify.returncode == 0 and verify.stdout.count(": OK") == 1, verify.stdout + verify.stderr
    predict = subprocess.run([str(BIN / "edge-runtime"), "predict", bundle, "what's my balance"],
                             capture_output=True, text=True)
    assert predict.returncode == 0 and json.loads(predict.stdout)["label"] in manifest.labels
