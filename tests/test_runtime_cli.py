"""`edge-runtime` end to end, through the installed console script."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import LABELS

from edge_runtime.manifest import MANIFEST_FILE, sha256_file

EDGE_RUNTIME = str(Path(sys.executable).parent / "edge-runtime")


def run(*args, stdin=None):
    return subprocess.run([EDGE_RUNTIME, *map(str, args)], input=stdin, capture_output=True, text=True, timeout=120)


def assert_one_line_error(result, match):
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert match in result.stderr, result.stderr


def test_predict_texts(bundle_dir):
    result = run("predict", bundle_dir, "wake me up at 6am", "", "what's my balance", "--threads", "1")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["text"] for r in lines] == ["wake me up at 6am", "", "what's my balance"]
    assert all(r["label"] in LABELS and 0 < r["score"] <= 1 for r in lines)


def test_predict_options_between_bundle_and_texts(bundle_dir):
    result = run("predict", bundle_dir, "--model", "model.int8.onnx", "wake me up", "what's my balance")
    assert result.returncode == 0, result.stderr
    assert [json.loads(line)["text"] for line in result.stdout.splitlines()] == ["wake me up", "what's my balance"]
    assert_one_line_error(run("predict", bundle_dir, "hi", "--bogus"), "unrecognized arguments: --bogus")


def test_predict_top_k(bundle_dir):
    result = run("predict", bundle_dir, "hello", "--top-k", "3")
    assert result.returncode == 0, result.stderr
    assert len(json.loads(result.stdout)["top_k"]) == 3


def test_predict_jsonl_streams_and_reports_bad_lines(bundle_dir):
    stdin = "\n".join([
        json.dumps({"text": "move money to savings"}),
        "{broken json",
        json.dumps({"txt": "wrong field"}),
        json.dumps({"text": 42}),
        json.dumps({"text": "will it rain", "id": 7}),
    ]) + "\n"
    result = run("predict", bundle_dir, "--jsonl", "--batch-size", "1", stdin=stdin)
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["text"] for r in out] == ["move money to savings", "will it rain"]
    assert "line 2: not valid JSON" in result.stderr
    assert "line 3: expected an object" in result.stderr and "line 4: expected an object" in result.stderr
    assert_one_line_error(result, "3 line(s) failed, 2 classified")


def test_predict_usage_errors(bundle_dir, tmp_path):
    assert_one_line_error(run("predict", bundle_dir), "no text to classify")
    assert_one_line_error(run("predict", tmp_path / "missing", "hi"), "bundle not found")
    assert_one_line_error(run("predict", bundle_dir, "hi", "--top-k", "0"), "must be at least 1")


def test_verify_ok(bundle_dir):
    result = run("verify", bundle_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "checksums OK" in result.stdout
    assert result.stdout.count(": OK") == 2  # both models replayed their fixtures
    assert "argmax agree 8/8" in result.stdout


def test_verify_tampered_bundle_fails(bundle_dir, tmp_path):
    bundle = shutil.copytree(bundle_dir, tmp_path / "b")
    (bundle / "tokenizer.json").write_text((bundle / "tokenizer.json").read_text().replace("[UNK]", "[UNX]", 1))
    assert_one_line_error(run("verify", bundle), "checksum mismatch for tokenizer.json")


def test_verify_fails_past_tolerance(bundle_dir, tmp_path):
    # Fixtures that disagree with the model (re-signed, so only the parity replay can catch it).
    bundle = shutil.copytree(bundle_dir, tmp_path / "b")
    fixtures = json.loads((bundle / "fixtures.json").read_text())
    fixtures["logits"]["model.onnx"][0] = [v + 0.5 for v in fixtures["logits"]["model.onnx"][0]]
    (bundle / "fixtures.json").write_text(json.dumps(fixtures))
    manifest = json.loads((bundle / MANIFEST_FILE).read_text())
    manifest["files"]["fixtures.json"] = sha256_file(bundle / "fixtures.json")
    (bundle / MANIFEST_FILE).write_text(json.dumps(manifest))
    result = run("verify", bundle)
    assert result.returncode == 1
    assert "model.onnx: 8 fixtures" in result.stdout and "max abs diff 0.5" in result.stdout
    assert "FAIL" in result.stdout


def test_bench_json(bundle_dir, tmp_path):
    texts = tmp_path / "q.txt"
    texts.write_text("\n".join(f"query number {i}" for i in range(30)))
    result = run("bench", bundle_dir, "--texts", texts, "--threads", "1", "--json", "--warmup", "2")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["queries"] == 30 and report["batch1"]["n"] == 30
    assert 0 < report["batch1"]["p50_ms"] <= report["batch1"]["p99_ms"]
    assert report["batch32_qps"] > 0
    human = run("bench", bundle_dir, "--threads", "1")
    assert human.returncode == 0 and "batch 1: mean" in human.stdout


def test_bench_bad_texts_file(bundle_dir, tmp_path):
    assert_one_line_error(run("bench", bundle_dir, "--texts", tmp_path / "none.txt"), "cannot read")
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    assert_one_line_error(run("bench", bundle_dir, "--texts", empty), "holds no text")


def test_verify_fails_when_a_model_cannot_be_checked(bundle_dir, tmp_path, monkeypatch, capsys):
    """Without the [tflite] extra the TFLite model is not replayed: that is a failed check unless the
    user accepts it with --allow-unchecked."""
    from edge_runtime.cli import main

    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)  # as if LiteRT were not installed
    bundle = shutil.copytree(bundle_dir, tmp_path / "b")
    (bundle / "model.tflite").write_bytes(b"TFL3 stand-in: never loaded, LiteRT is missing")
    manifest = json.loads((bundle / MANIFEST_FILE).read_text())
    manifest["models"].append({"file": "model.tflite", "backend": "tflite", "precision": "int8",
                               "input_names": ["input_ids", "attention_mask", "token_type_ids"],
                               "sequence_length": 32, "tolerance": 0.05})
    manifest["files"]["model.tflite"] = sha256_file(bundle / "model.tflite")
    (bundle / MANIFEST_FILE).write_text(json.dumps(manifest))

    assert main(["verify", str(bundle)]) == 1
    captured = capsys.readouterr()
    assert captured.out.count(": OK") == 2 and "model.tflite: not checked here" in captured.out
    assert "pip install 'edge-sdk-runtime[tflite]'" in captured.out
    assert captured.err.strip() == ("error: model.tflite not checked on this device; install what is named "
                                    "above, or pass --allow-unchecked to accept a partial check")
    assert main(["verify", str(bundle), "--allow-unchecked"]) == 0
    assert main(["verify", str(bundle), "--backend", "onnx"]) == 0  # the user asked for the ONNX models only
