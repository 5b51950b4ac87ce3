"""`edge-sdk build` end to end on a tiny random BERT and a slice of CLINC150-style data."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import tiny_bert

from edge_runtime import Manifest

BIN = Path(sys.executable).parent
ALL_TARGETS = ["x86-avx2", "x86-avx512-vnni", "arm64", "gpu-tensorrt", "web-wasm"]
INTENTS = {
    "balance": ["what's my balance", "how much money is in checking", "show my account balance",
                "balance of savings please", "how much do i have in the bank", "tell me my balance now"],
    "weather": ["will it rain today", "what's the weather in paris", "is it cold outside",
                "forecast for tomorrow", "do i need an umbrella", "how hot will it be"],
    "alarm": ["wake me up at 7", "set an alarm for 6am", "alarm at noon please",
              "set my alarm for tomorrow morning", "remind me with an alarm at 5", "turn on an alarm for 8:30"],
    "oos": ["who wrote hamlet", "tell me a joke", "what is the capital of peru", "how tall is everest",
            "sing a song", "what's 2 plus 2"],
}


def edge_sdk(*args, timeout=900):
    return subprocess.run([str(BIN / "edge-sdk"), *map(str, args)], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, minilm_dir) -> Path:
    """A tiny random BERT with the MiniLM tokenizer and no head for our labels (so build fine-tunes it)."""
    out = tmp_path_factory.mktemp("model") / "tiny-bert"
    tiny_bert(num_labels=2).save_pretrained(out)
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        shutil.copy(minilm_dir / name, out / name)
    return out


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("data")
    for split, copies in (("train", 6), ("test", 2)):
        rows = [{"text": f"{t} {'please' if i % 2 else ''} {i}".strip(), "intent": label}
                for label, texts in INTENTS.items() for t in texts for i in range(copies)]
        (folder / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


@pytest.fixture(scope="session")
def built(tmp_path_factory, tiny_model_dir, tiny_data):
    """Every target built in one command, plus a repeated build that must come from the cache."""
    out = tmp_path_factory.mktemp("build")
    cache = tmp_path_factory.mktemp("cache")
    args = ["build", *sum((["--target", t] for t in ALL_TARGETS), []), "--model", tiny_model_dir,
            "--data", tiny_data, "--out", out, "--cache-dir", cache, "--latency-queries", "20",
            "--max-accuracy-drop", "100"]
    first = edge_sdk(*args)
    assert first.returncode == 0, first.stdout + first.stderr[-4000:]
    second = edge_sdk(*args)
    assert second.returncode == 0, second.stderr[-4000:]
    return {"out": out, "cache": cache, "first": first, "second": second, "model": tiny_model_dir, "data": tiny_data}


@pytest.mark.parametrize("target", ALL_TARGETS)
def test_every_target_builds_a_verified_bundle(built, target):
    bundle = built["out"] / target
    manifest = Manifest.read(bundle)
    assert manifest.target["name"] == target
    assert manifest.labels == ("alarm", "balance", "oos", "weather") and manifest.oos_label == "oos"
    assert manifest.recipe["name"] == "default"
    assert manifest.source["data_fingerprint"]
    for entry in manifest.models:
        assert {"accuracy", "size_mb", "latency", "accuracy_drop_points", "validation"} <= set(entry.metrics)
    verify = subprocess.run([str(BIN / "edge-runtime"), "verify", bundle], capture_output=True, text=True)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert verify.stdout.count(": OK") == len(manifest.models)
    predict = subprocess.run([str(BIN / "edge-runtime"), "predict", bundle, "wake me up at 7"],
                             capture_output=True, text=True)
    assert predict.returncode == 0 and json.loads(predict.stdout)["label"] in manifest.labels


def test_target_specific_models(built):
    avx2 = Manifest.read(built["out"] / "x86-avx2")
    assert avx2.target["models"][0]["quantization"]["reduce_range"] is True
    gpu = Manifest.read(built["out"] / "gpu-tensorrt")
    assert [m.precision for m in gpu.models] == ["fp16", "int8"]
    assert gpu.execution["providers"][0] == "TensorrtExecutionProvider"
    import onnx

    qdq = onnx.load(str(built["out"] / "gpu-tensorrt" / "model.qdq.int8.onnx"))
    ops = {n.op_type for n in qdq.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops and "MatMulInteger" not in ops
    wasm = onnx.load(str(built["out"] / "web-wasm" / "model.int8.onnx"))
    assert all(n.domain in ("", "ai.onnx") for n in wasm.graph.node), "web-wasm must use standard ops only"


def test_host_timed_targets_choose_among_four_graph_variants(built):
    """x86 (timed on this host): plain or fused graph, each with and without SkipLayerNormalization;
    the variant kept is the one the manifest opens (its session's disabled optimizers)."""
    import onnx

    from edge_runtime import Pipeline

    bundle = built["out"] / "x86-avx512-vnni"
    model = Manifest.read(bundle).models[0]
    choice = model.metrics["graph_choice"]
    assert set(choice["p50_ms"]) == {"plain", "plain, LayerNorm unfused", "fused", "fused, LayerNorm unfused"}
    unfused = choice["kept"].endswith("LayerNorm unfused")
    assert model.disabled_optimizers == (("SkipLayerNormFusion",) if unfused else ())
    ops = {n.op_type for n in onnx.load(str(bundle / model.file)).graph.node}
    assert ("SkipLayerNormalization" in ops) == (choice["kept"] == "fused")
    assert ("Attention" in ops or "QAttention" in ops) == choice["kept"].startswith("fused")
    pipe = Pipeline.load(bundle)
    assert pipe([" hello"])[0]["label"] in pipe.labels
    # arm64 is not timed here: its choice stays between the plain and the fused graph
    arm = Manifest.read(built["out"] / "arm64").models[0]
    assert set(arm.metrics["graph_choice"]["p50_ms"]) == {"plain", "fused"} and arm.disabled_optimizers == ()


def test_report_written(built):
    report = (built["out"] / "report.md").read_text()
    assert "PyTorch FP32 teacher" in report and "x86-avx512-vnni" in report
    assert (built["out"] / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_repeated_build_reuses_every_step(built):
    assert "0 made" in built["second"].stderr
    assert "fine-tune" in built["first"].stderr


def test_second_target_reuses_teacher(built, tmp_path):
    out = tmp_path / "out"
    result = edge_sdk("build", "--target", "arm64", "--model", built["model"], "--data", built["data"],
                      "--out", out, "--cache-dir", built["cache"], "--latency-queries", "10",
                      "--max-accuracy-drop", "100")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "0 made" in result.stderr and (out / "arm64" / "manifest.json").is_file()


def test_accuracy_guard_ships_nothing(tmp_path, tiny_model_dir, tiny_data, monkeypatch, built):
    """Past the budget the build exits non-zero with the numbers and leaves no bundle."""
    import edge_sdk.builder.guard as guard
    from edge_sdk.cli import cli

    real = guard.measure_bundle

    def worse(*args, **kwargs):
        metrics = real(*args, **kwargs)
        return {**metrics, "accuracy": metrics["accuracy"] - 0.5}

    monkeypatch.setattr(guard, "measure_bundle", worse)
    out = tmp_path / "out"
    (out / "arm64").mkdir(parents=True)
    (out / "arm64" / "old.txt").write_text("previous bundle")
    result = CliRunner().invoke(cli, ["build", "--target", "arm64", "--model", str(tiny_model_dir), "--data",
                                      str(tiny_data), "--out", str(out), "--cache-dir", str(built["cache"]),
                                      "--latency-queries", "10", "--max-accuracy-drop", "1"])
    assert result.exit_code == 1
    assert "loses 50.00 accuracy points" in result.output and "budget is 1.0 points" in result.output
    assert (out / "arm64" / "old.txt").read_text() == "previous bundle"  # untouched, not half-replaced
    assert not [p for p in out.iterdir() if p.name.startswith(".arm64")]


def test_interrupted_bundle_write_leaves_nothing(tmp_path, bundle_dir, tokenizer_path, tiny_onnx):
    from conftest import make_bundle

    from edge_runtime.manifest import ModelFile

    out = tmp_path / "b"

    def boom(_):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        make_bundle(out, tokenizer_path, [(ModelFile("model.onnx", "onnx", "fp32",
                                                     ("input_ids", "attention_mask", "token_type_ids")), tiny_onnx)],
                    measure=boom)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args, message", [
    (["--target", "nope"], "unknown target 'nope'"),
    ([], "no target given"),
    (["--target", "arm64", "--data", "/nonexistent/data.csv"], "data not found"),
    (["--target", "arm64", "--recipe", "nope"], "unknown recipe 'nope'"),
])
def test_bad_arguments_one_line_errors(args, message, tmp_path, tiny_model_dir):
    result = edge_sdk("build", *args, "--model", tiny_model_dir, "--out", tmp_path / "o",
                      "--cache-dir", tmp_path / "c", timeout=300)
    assert result.returncode == 1
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "o" / "arm64").exists()


def test_bad_data_files(tmp_path, tiny_model_dir):
    data = tmp_path / "d.csv"
    data.write_text("sentence,category\nhello,a\nbye,a\n")
    result = edge_sdk("build", "--target", "arm64", "--model", tiny_model_dir, "--data", data,
                      "--out", tmp_path / "o", "--cache-dir", tmp_path / "c", timeout=300)
    assert result.returncode == 1 and "two or more" in result.stderr and "Traceback" not in result.stderr
    result = edge_sdk("build", "--target", "arm64", "--model", tiny_model_dir, "--data", data,
                      "--text-column", "utterance", "--out", tmp_path / "o", "--cache-dir", tmp_path / "c",
                      timeout=300)
    assert result.returncode == 1 and "no column 'utterance'" in result.stderr


def test_targets_and_verify_commands(built):
    result = edge_sdk("targets", timeout=60)
    assert result.returncode == 0
    for name in ALL_TARGETS:
        assert name in result.stdout
    assert "reduce_range" not in result.stdout and "VNNI" in result.stdout
    ok = edge_sdk("verify", built["out"] / "arm64", timeout=120)
    assert ok.returncode == 0 and "checksums OK" in ok.stdout


def test_distilled_recipe_builds_a_smaller_student(tmp_path, built):
    """`--recipe` with a distill step: the bundle ships a student with the chosen teacher layers."""
    import onnx

    recipe = tmp_path / "tiny-distilled.toml"
    recipe.write_text('name = "tiny-distilled"\nwhy = "a one-layer student of the tiny teacher, for tests"\n'
                      "[teacher]\nlearning_rate = 1e-3\nepochs = 1\nmin_steps = 200\npatience = 2\n"
                      '[[steps]]\nstep = "distill"\nlayers = [1]\nalpha = 0.5\ntemperature = 2.0\n'
                      "learning_rate = 1e-3\nepochs = 1\n")
    out = tmp_path / "out"
    result = edge_sdk("build", "--target", "x86-avx512-vnni", "--model", built["model"], "--data", built["data"],
                      "--recipe", recipe, "--out", out, "--cache-dir", built["cache"], "--latency-queries", "10",
                      "--max-accuracy-drop", "100")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "step 1 (distill)" in result.stderr
    manifest = Manifest.read(out / "x86-avx512-vnni")
    assert manifest.recipe["name"] == "tiny-distilled"
    assert manifest.recipe["steps"] == [{"name": "distill", "config": {**manifest.recipe["steps"][0]["config"],
                                                                       "layers": [1]}}]
    distillation = manifest.source["distillation"]  # how the student was trained, beside the recipe
    assert distillation["config"]["layers"] == [1] and distillation["config"]["alpha"] == 0.5
    assert 0.0 <= distillation["test_accuracy"] <= 1.0
    # the whole lineage: the teacher the build fine-tuned, then the distillation step
    assert [entry["step"] for entry in manifest.source["lineage"]] == ["teacher", "distill"]
    assert manifest.source["lineage"][1]["config"]["layers"] == [1]
    # the target budget holds the export against the student; the total drop against the teacher is kept too
    assert {"export_drop_points", "accuracy_drop_points"} <= set(manifest.models[0].metrics)
    student = onnx.load(str(out / "x86-avx512-vnni" / "model.int8.onnx"))
    teacher = onnx.load(str(built["out"] / "x86-avx512-vnni" / "model.int8.onnx"))
    assert len(student.graph.node) < len(teacher.graph.node)
