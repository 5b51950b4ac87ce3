"""Batch independence: a text's answer must not depend on the texts batched with it.

Dynamic int8 (DynamicQuantizeLinear) scales activations over the whole batch, padding included,
so such models run one text per call by default; fp32 and static (QDQ) int8 models batch."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import TEXTS, make_bundle

from edge_runtime import Pipeline
from edge_runtime.cli import main
from edge_runtime.manifest import ModelFile

NAMES = ("input_ids", "attention_mask", "token_type_ids")
# Texts of many lengths, so batches pad: 7 and 32 group each text with different neighbours.
QUERIES = [f"{t} {i}" for i in range(4) for t in TEXTS] + ["book a table " * k for k in range(1, 12)]


def answers(pipe, batch_size: int):
    return pipe.logits(QUERIES, batch_size=batch_size), [r["label"] for r in pipe(QUERIES, batch_size=batch_size)]


def test_dynamic_int8_answers_do_not_depend_on_the_batch(bundle_dir):
    pipe = Pipeline.load(bundle_dir, model="model.int8.onnx", threads=1)
    assert pipe.rows_alone and pipe.bundle.graphs["model.int8.onnx"].batch_dependent
    tolerance = pipe.model.tolerance
    logits1, labels1 = answers(pipe, 1)
    for batch_size in (7, 32):
        logits, labels = answers(pipe, batch_size)
        assert labels == labels1
        assert np.abs(logits - logits1).max() <= tolerance
        assert np.abs(logits - logits1).max() == 0.0  # one text per call: the very same computation


def test_batching_dynamic_int8_anyway_does_change_answers(bundle_dir):
    """What the default prevents (and why the test above can fail): batched, the same texts get other
    scores depending on their neighbours."""
    pipe = Pipeline.load(bundle_dir, model="model.int8.onnx", threads=1, batch_independent=False)
    assert not pipe.rows_alone
    logits1, _ = answers(pipe, 1)
    moved = max(np.abs(answers(pipe, b)[0] - logits1).max() for b in (7, 32))
    assert moved > 1e-3


def test_fp32_models_still_batch(bundle_dir, monkeypatch):
    pipe = Pipeline.load(bundle_dir, threads=1)
    assert not pipe.rows_alone and not pipe.bundle.graphs["model.onnx"].batch_dependent
    calls = []
    run = pipe.backend.run
    monkeypatch.setattr(pipe.backend, "run", lambda feeds: calls.append(len(feeds["input_ids"])) or run(feeds))
    logits1, labels1 = answers(pipe, 1)
    calls.clear()
    logits32, labels32 = answers(pipe, 32)
    assert max(calls) == 32 and labels32 == labels1
    assert np.abs(logits32 - logits1).max() <= pipe.model.tolerance


@pytest.fixture(scope="module")
def static_int8(tmp_path_factory, tiny_onnx, tokenizer_path):
    """Static QDQ int8 (calibrated scales, as for TensorRT), calibrated as the SDK does on padded
    batches: the additive attention mask's range then includes the masked value. (Calibrated on
    unpadded rows only, that range is [0, 0] and padding leaks into every batched row: 0.027 here.)"""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, quantize_static

    from edge_runtime.tokenize import TextEncoder

    encoder = TextEncoder(tokenizer_path, 32)
    ids = encoder.ids(QUERIES)
    feeds = [encoder.feeds(ids[i:i + 8], NAMES) for i in range(0, len(ids), 8)]

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.items = iter(feeds)

        def get_next(self):
            return next(self.items, None)

    folder = tmp_path_factory.mktemp("qdq")
    quantize_static(str(tiny_onnx), str(folder / "qdq.onnx"), Reader(), quant_format=QuantFormat.QDQ)
    out = folder / "bundle"
    make_bundle(out, tokenizer_path, [(ModelFile("model.qdq.int8.onnx", "onnx", "int8", NAMES, tolerance=0.05),
                                       folder / "qdq.onnx")])
    return out


def test_static_int8_batches_and_stays_independent(static_int8):
    pipe = Pipeline.load(static_int8, threads=1)
    assert not pipe.rows_alone
    logits1, labels1 = answers(pipe, 1)
    for batch_size in (7, 32):
        logits, labels = answers(pipe, batch_size)
        assert labels == labels1 and np.abs(logits - logits1).max() <= 1e-4


def test_cli_says_how_it_batches(bundle_dir, capsys):
    assert main(["bench", str(bundle_dir), "--model", "model.int8.onnx", "--threads", "1", "--json",
                 "--warmup", "1"]) == 0
    assert json.loads(capsys.readouterr().out)["one_text_per_call"] is True
    assert main(["bench", str(bundle_dir), "--model", "model.int8.onnx", "--threads", "1", "--json",
                 "--warmup", "1", "--allow-batch-dependence"]) == 0
    assert json.loads(capsys.readouterr().out)["one_text_per_call"] is False
    assert main(["predict", str(bundle_dir), "--model", "model.int8.onnx", "--allow-batch-dependence", "hi"]) == 0
