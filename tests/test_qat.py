"""Quantization-aware training end to end through `edge-sdk build` on a tiny model: a qat recipe
makes a full-integer TFLite (android-npu) and a QDQ ONNX (gpu-tensorrt) whose scales are the trained
ones, and both go through validation, the parity fixtures and the accuracy guard like any bundle."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edge_runtime import Manifest

pytest.importorskip("torchao", reason="the qat extra: pip install 'edge-sdk[qat]'")
pytest.importorskip("litert_torch", reason="the qat extra: pip install 'edge-sdk[qat]'")

from test_build import edge_sdk, tiny_data, tiny_model_dir  # noqa: F401  (fixtures)
from test_lowbit import TEACHER, tiny_cache  # noqa: F401  (fixture: the teacher trains once for both files)

BIN = Path(sys.executable).parent
# The fast teacher of test_lowbit, then one QAT epoch.
QAT_RECIPE = ('name = "tiny-qat"\nwhy = "one QAT epoch on the tiny teacher, for tests"\n' + TEACHER +
              '[[steps]]\nstep = "qat"\nepochs = 1\nlearning_rate = 1e-3\n'
              '[onnx_quantization]\nmethod = "qat"\n[tflite_quantization]\nmethod = "qat"\n')


@pytest.fixture(scope="module")
def qat_built(tmp_path_factory, tiny_model_dir, tiny_data, tiny_cache):
    out = tmp_path_factory.mktemp("build")
    recipe = tmp_path_factory.mktemp("recipe") / "tiny-qat.toml"
    recipe.write_text(QAT_RECIPE)
    result = edge_sdk("build", "--target", "android-npu", "--target", "gpu-tensorrt", "--recipe", recipe,
                      "--model", tiny_model_dir, "--data", tiny_data, "--out", out, "--cache-dir", tiny_cache,
                      "--latency-queries", "10", "--max-accuracy-drop", "100")
    assert result.returncode == 0, result.stdout + result.stderr[-4000:]
    return {"out": out, "cache": tiny_cache, "recipe": recipe, "model": tiny_model_dir, "data": tiny_data,
            "log": result.stderr}


def _program(built) -> Path:
    """The int8 program the qat step left in the cache (the model every file was made from)."""
    manifest = Manifest.read(built["out"] / "android-npu")
    from edge_sdk.qat.program import PROGRAM

    teacher = built["cache"] / "qat"
    programs = [p / PROGRAM for p in teacher.iterdir() if (p / PROGRAM).is_file()]
    assert programs and manifest.source["lineage"][-1]["step"] == "qat"
    return programs[0]


def test_qat_step_in_lineage_and_recipe(qat_built):
    assert "step 1 (qat)" in qat_built["log"]
    # the files are held against the model QAT started from (here the teacher), not QAT's float weights
    assert "after the recipe's steps" not in qat_built["log"] and "before QAT" not in qat_built["log"]
    for target in ("android-npu", "gpu-tensorrt"):
        manifest = Manifest.read(qat_built["out"] / target)
        assert manifest.recipe["steps"][0]["name"] == "qat"
        qat = manifest.source["lineage"][-1]
        assert [e["step"] for e in manifest.source["lineage"]] == ["teacher", "qat"]
        assert qat["config"]["epochs"] == 1 and 0.0 <= qat["validation_accuracy_int8"] <= 1.0
        assert qat["config"]["scope"] == "full"
        # the int8 program's classifier bias was re-fitted to the FP32 model's softmax (validation texts)
        correction = qat["bias_correction"]
        assert correction["validation_accuracy"] == qat["validation_accuracy_int8"]
        assert {"largest_shift", "agreement_before", "agreement_after", "validation_accuracy_before"} <= set(correction)
        # the guard measured every file (accuracy against the FP32 model QAT started from, inside the budget)
        assert manifest.metrics["source_accuracy"] == manifest.metrics["teacher_accuracy"]
        for entry in manifest.models:
            assert {"accuracy", "accuracy_drop_points", "validation", "size_mb"} <= set(entry.metrics)


def test_tflite_is_full_integer(qat_built):
    """Op and tensor types of the file, not its name: every GEMM int8 in and out, int8 weights (the
    embedding table too), int8 logits with a scale; only LayerNorm internals and the masked softmax float."""
    from ai_edge_litert.interpreter import Interpreter

    path = qat_built["out"] / "android-npu" / "model.int8.tflite"
    interpreter = Interpreter(model_path=str(path))
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    ops = interpreter._get_ops_details()

    def dtype(i):
        return np.dtype(tensors[i]["dtype"]).name

    gemms = [op for op in ops if op["op_name"] in ("FULLY_CONNECTED", "BATCH_MATMUL")]
    assert len(gemms) == 14 + 4  # 2 layers x (q, k, v, out, up, down) + pooler + classifier; 2 x 2 attention
    for op in gemms:
        assert [dtype(i) for i in op["inputs"][:2]] == ["int8", "int8"], op
        assert dtype(op["outputs"][0]) == "int8", op
    for op in ops:
        if op["op_name"] in ("GELU", "TANH"):
            assert dtype(op["outputs"][0]) == "int8"
    # the word embedding table is stored int8 (dequantized once at load, as LiteRT does for weights)
    tables = [tensors[op["inputs"][0]] for op in ops if op["op_name"] == "DEQUANTIZE"]
    assert any(dtype(t["index"]) == "int8" and list(t["shape"]) == [30522, 32] for t in tables)
    runner = interpreter.get_signature_runner("seq_16")
    output = next(iter(runner.get_output_details().values()))
    assert np.dtype(output["dtype"]).name == "int8" and output["quantization"][0] > 0
    assert all(np.dtype(d["dtype"]).name == "int32" for d in runner.get_input_details().values())  # token ids
    summary = Manifest.read(qat_built["out"] / "android-npu").models[0].metrics["integer"]
    assert set(summary["float_ops"]) <= {"MEAN", "SQUARED_DIFFERENCE", "RSQRT", "SUB", "MUL", "ADD", "SOFTMAX"}


def test_onnx_is_qdq_without_float_islands(qat_built):
    import onnx
    from onnx import numpy_helper

    from edge_sdk.export.qdq_onnx import float_gemms

    path = qat_built["out"] / "gpu-tensorrt" / "model.qdq.int8.onnx"
    assert float_gemms(path) == []
    model = onnx.load(str(path))
    graph = model.graph
    producer = {out: n for n in graph.node for out in n.output}
    inits = {i.name: i for i in graph.initializer}
    gemms = [n for n in graph.node if n.op_type in ("MatMul", "Gemm")]
    assert len(gemms) == 18 and "MatMulInteger" not in {n.op_type for n in graph.node}
    for gemm in gemms:  # weights are int8 initializers behind a DequantizeLinear
        weight = producer.get(gemm.input[1])
        while weight is not None and weight.op_type != "DequantizeLinear":
            weight = producer.get(weight.input[0])
        assert weight is not None
        source = weight.input[0]
        if source in inits:
            assert inits[source].data_type == onnx.TensorProto.INT8
    zero_points = [numpy_helper.to_array(inits[n.input[2]]) for n in graph.node
                   if n.op_type == "QuantizeLinear" and len(n.input) > 2 and n.input[2] in inits]
    assert zero_points and all((z == 0).all() for z in zero_points)  # symmetric: what TensorRT takes
    info = Manifest.read(qat_built["out"] / "gpu-tensorrt").models[1].metrics["integer"]
    assert info["float_gemms"] == 0 and info["gemms"] == 18


def test_scales_come_from_the_trained_program(qat_built):
    """The activation scales in both files are the program's (trained), not recalibrated ones; the
    TFLite logits through edge_runtime (int8 output dequantized) match the program's in PyTorch."""
    import onnx
    import torch
    from onnx import numpy_helper

    from edge_runtime.backends.tflite import TFLiteBackend
    from edge_sdk.qat.program import load_program, program_logits

    program = load_program(_program(qat_built))
    decomposed = torch.ops.quantized_decomposed
    trained = {round(float(n.args[1]), 7) for n in program.graph.nodes
               if n.op == "call_function" and n.target == decomposed.quantize_per_tensor.default}
    model = onnx.load(str(qat_built["out"] / "gpu-tensorrt" / "model.qdq.int8.onnx"))
    inits = {i.name: i for i in model.graph.initializer}
    exported = {round(float(numpy_helper.to_array(inits[n.input[1]])), 7) for n in model.graph.node
                if n.op_type == "QuantizeLinear" and n.input[1] in inits and inits[n.input[1]].dims == []}
    assert exported and exported <= trained

    names = ("input_ids", "attention_mask", "token_type_ids")
    rng = np.random.default_rng(0)
    feeds = {"input_ids": rng.integers(1000, 20000, (3, 12)), "attention_mask": np.ones((3, 12), np.int64),
             "token_type_ids": np.zeros((3, 12), np.int64)}
    want = program_logits(program, [feeds], names)
    backend = TFLiteBackend(str(qat_built["out"] / "android-npu" / "model.int8.tflite"), threads=1,
                            input_names=names, sequence_length=128)
    got = backend.run(feeds)
    assert got.dtype == np.float32
    assert np.abs(got - want).max() < 0.1 * max(1.0, np.abs(want).max())


@pytest.mark.parametrize("target", ["android-npu", "gpu-tensorrt"])
def test_runtime_verifies_fixtures_and_predicts(qat_built, target):
    bundle = qat_built["out"] / target
    verify = subprocess.run([str(BIN / "edge-runtime"), "verify", bundle], capture_output=True, text=True)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert verify.stdout.count(": OK") == len(Manifest.read(bundle).models)
    fixtures = json.loads((bundle / "fixtures.json").read_text())
    assert fixtures  # written on the host at batch 1, replayed above
    predict = subprocess.run([str(BIN / "edge-runtime"), "predict", bundle, "wake me up at 7"],
                             capture_output=True, text=True)
    assert predict.returncode == 0 and json.loads(predict.stdout)["label"] in ("alarm", "balance", "oos", "weather")


def test_accuracy_guard_holds_qat_files(qat_built, tmp_path, monkeypatch):
    """Past the budget nothing ships, as for every bundle (the cached steps make this quick)."""
    from click.testing import CliRunner

    import edge_sdk.builder.guard as guard
    from edge_sdk.cli import cli

    real = guard.measure_bundle
    monkeypatch.setattr(guard, "measure_bundle",
                        lambda *a, **k: {**(m := real(*a, **k)), "accuracy": m["accuracy"] - 0.5})
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["build", "--target", "android-npu", "--recipe", str(qat_built["recipe"]),
                                      "--model", str(qat_built["model"]), "--data", str(qat_built["data"]),
                                      "--out", str(out), "--cache-dir", str(qat_built["cache"]),
                                      "--latency-queries", "10", "--max-accuracy-drop", "1"])
    assert result.exit_code == 1 and "loses 50.00 accuracy points" in result.output, \
        (result.exit_code, result.output[-2000:], repr(result.exception))
    assert not (out / "android-npu").exists()


def test_gemm_scope_recipe_builds_qdq_onnx_for_tensorrt(tmp_path, tiny_model_dir, tiny_data, tiny_cache):
    """scope = "gemm" end to end: a QDQ ONNX whose every GEMM is int8 and nothing else is quantized
    (LayerNorm, softmax and GELU read float tensors), through validation and the guard."""
    import onnx

    from edge_sdk.export.qdq_onnx import float_gemms

    recipe = tmp_path / "tiny-qat-gemm.toml"
    recipe.write_text(QAT_RECIPE.replace('step = "qat"\n', 'step = "qat"\nscope = "gemm"\n')
                      .replace('[tflite_quantization]\nmethod = "qat"\n', ''))
    out = tmp_path / "out"
    result = edge_sdk("build", "--target", "gpu-tensorrt", "--recipe", recipe, "--model", tiny_model_dir,
                      "--data", tiny_data, "--out", out, "--cache-dir", tiny_cache, "--latency-queries", "10",
                      "--max-accuracy-drop", "100")
    assert result.returncode == 0, result.stdout + result.stderr[-4000:]
    manifest = Manifest.read(out / "gpu-tensorrt")
    assert manifest.source["lineage"][-1]["config"]["scope"] == "gemm"
    path = out / "gpu-tensorrt" / "model.qdq.int8.onnx"
    assert float_gemms(path) == []
    graph = onnx.load(str(path)).graph
    producer = {o: n.op_type for n in graph.node for o in n.output}
    others = [n for n in graph.node if n.op_type in ("LayerNormalization", "Softmax", "Erf", "Tanh", "Gelu")]
    assert others and not any(producer.get(i) == "DequantizeLinear" for n in others for i in n.input)
    assert sum(n.op_type == "QuantizeLinear" for n in graph.node) > 0


def test_gemm_scope_is_refused_for_full_integer_tflite(tmp_path, tiny_model_dir):
    result = edge_sdk("build", "--target", "android-npu", "--recipe", "qat-tensorrt", "--model", tiny_model_dir,
                      "--out", tmp_path / "o", "--cache-dir", tmp_path / "c", timeout=300)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert "full-integer" in last and "scope = 'gemm'" in last and "--recipe qat" in last
    assert not (tmp_path / "c" / "teacher").exists()


def test_qat_method_without_qat_step_fails_before_training(tmp_path, tiny_model_dir):
    result = edge_sdk("build", "--target", "android-npu", "--model", tiny_model_dir, "--out", tmp_path / "o",
                      "--cache-dir", tmp_path / "c", timeout=300)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert "quantization-aware training" in last and "--recipe qat" in last
    assert not (tmp_path / "c" / "teacher").exists()


def test_qat_must_be_the_last_step(tmp_path):
    from edge_sdk.errors import ConfigError
    from edge_sdk.recipes import load_recipe

    recipe = tmp_path / "r.toml"
    recipe.write_text('name = "r"\nwhy = "x"\n[[steps]]\nstep = "qat"\n[[steps]]\nstep = "distill"\n')
    with pytest.raises(ConfigError, match="qat must be the last"):
        load_recipe(str(recipe))
    recipe.write_text('name = "r"\nwhy = "x"\n[[steps]]\nstep = "qat"\nepoch = 2\n')
    with pytest.raises(ConfigError, match="did you mean 'epochs'"):
        load_recipe(str(recipe))
    assert load_recipe("qat").steps[-1].name == "qat"


def test_missing_quantization_library_is_one_line(tmp_path, tiny_model_dir, qat_built):
    """A stand-in torchao that cannot be imported: one line naming the extra, before anything trains."""
    fake = tmp_path / "site"
    (fake / "torchao").mkdir(parents=True)
    (fake / "torchao" / "__init__.py").write_text("raise ImportError('No module named torchao')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(fake), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([str(BIN / "edge-sdk"), "build", "--target", "gpu-tensorrt", "--recipe",
                             qat_built["recipe"], "--model", tiny_model_dir, "--out", tmp_path / "o",
                             "--cache-dir", tmp_path / "c"], capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: quantization-aware training needs torchao") and "edge-sdk[qat]" in last


def test_quantizer_leaves_the_mask_add_float():
    """The annotation quantizes every GEMM and residual add, never the add of the attention mask."""
    import torch
    from conftest import tiny_bert

    from edge_sdk.qat.program import export_graph
    from edge_sdk.qat.quantizer import annotate

    graph = annotate(export_graph(tiny_bert()), qat=False)
    aten = torch.ops.aten
    marked = {n for n in graph.graph.nodes if "quantization_annotation" in n.meta}
    nodes = [n for n in graph.graph.nodes if n.op == "call_function"]
    assert all(n in marked for n in nodes if n.target in (aten.linear.default, aten.matmul.default))
    softmax_inputs = [n.args[0] for n in nodes if n.target in (aten.softmax.int, aten._softmax.default)]
    assert softmax_inputs and not any(n in marked for n in softmax_inputs)  # scores + mask stay float
    assert sum(n in marked for n in nodes if n.target == aten.add.Tensor) >= 2 * 2 + 2  # residuals + embeddings


def test_gemm_scope_quantizes_only_the_gemm_inputs():
    """scope "gemm" (TensorRT QDQ): every GEMM's inputs int8, nothing else annotated; an unknown
    scope is refused."""
    import torch
    from conftest import tiny_bert

    from edge_sdk.qat.program import export_graph
    from edge_sdk.qat.quantizer import annotate

    graph = annotate(export_graph(tiny_bert()), qat=True, scope="gemm")
    aten = torch.ops.aten
    gemms = (aten.linear.default, aten.matmul.default)
    nodes = [n for n in graph.graph.nodes if n.op == "call_function"]
    marked = [n for n in nodes if "quantization_annotation" in n.meta]
    assert marked and all(n.target in gemms for n in marked)
    assert all(n in marked for n in nodes if n.target in gemms)
    for node in marked:
        annotation = node.meta["quantization_annotation"]
        assert annotation.output_qspec is None and node.args[0] in annotation.input_qspec_map
    with pytest.raises(ValueError, match="unknown quantization scope"):
        annotate(export_graph(tiny_bert()), qat=True, scope="some")


def test_qat_graph_trains_with_the_models_own_dropout_rate():
    """Dropout in the exported QAT graph switches on and off at the model's rate (torchao's
    move_exported_model_to_train rewrote it to 0.5, and QAT collapsed on CLINC150)."""
    import torch
    from conftest import tiny_bert

    from edge_sdk.qat.program import convert, prepare_qat
    from edge_sdk.qat.train import _graph_classifier

    model = tiny_bert()
    rate = model.config.hidden_dropout_prob
    graph = prepare_qat(model)

    def dropouts():
        return [n.args[1:] for n in graph.graph.nodes if n.target is torch.ops.aten.dropout.default]

    # hidden dropout at the model's rate; attention dropout was traced at 0 (transformers passes 0 in eval)
    assert (rate, True) in dropouts() and set(dropouts()) <= {(rate, True), (0.0, True)}
    classifier = _graph_classifier(graph, ("input_ids", "attention_mask", "token_type_ids"), model.config)
    classifier.eval()
    assert {flag for _, flag in dropouts()} == {False} and not classifier.training
    classifier.train()
    assert set(dropouts()) <= {(rate, True), (0.0, True)}
    convert(graph)
    assert {flag for _, flag in dropouts()} == {False}


def test_residual_stream_at_16_bits_annotation():
    """residual_bits = 16 (the experiment of benchmarks/qat_subsample.py --residual-bits 16): the
    residual adds (and the embeddings' sum) and what feeds them are int16, every GEMM input stays int8,
    LayerNorm reads its add at 16 bits and leaves its float output to each reader's width."""
    import torch
    from conftest import tiny_bert

    from edge_sdk.qat.program import export_graph
    from edge_sdk.qat.quantizer import annotate

    graph = annotate(export_graph(tiny_bert()), qat=True, residual_bits=16)
    aten = torch.ops.aten
    nodes = [n for n in graph.graph.nodes if n.op == "call_function"]

    def annotation(node):
        return node.meta.get("quantization_annotation")

    adds = [n for n in nodes if n.target == aten.add.Tensor and annotation(n) is not None]
    assert len(adds) == 2 * 2 + 2  # 2 residual adds per layer + the embeddings' sum (two adds)
    for add in adds:
        assert annotation(add).output_qspec.dtype == torch.int16
        assert {s.dtype for s in annotation(add).input_qspec_map.values()} == {torch.int16}
    for linear in (n for n in nodes if n.target == aten.linear.default):
        inputs = annotation(linear).input_qspec_map
        assert inputs[linear.args[0]].dtype == torch.int8 and inputs[linear.args[1]].dtype == torch.int8
    wide = [n for n in nodes if n.target == aten.linear.default and annotation(n).output_qspec.dtype == torch.int16]
    assert len(wide) == 2 * 2  # attention output and FFN down projection of each layer
    norms = [n for n in nodes if n.target == aten.layer_norm.default and n.args[0] in adds]
    # every add but the embeddings' first (it feeds their second) is read by a LayerNorm
    assert len(norms) == len(adds) - 1 and all(annotation(n).output_qspec is None for n in norms)
    with pytest.raises(ValueError, match="residual_bits must be 8 or 16"):
        annotate(export_graph(tiny_bert()), qat=True, residual_bits=4)
