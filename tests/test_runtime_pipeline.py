"""edge_runtime.Pipeline on bundles made from a tiny random BERT."""

from __future__ import annotations

import subprocess
import sys
import threading
import warnings

import numpy as np
import pytest
from conftest import LABELS, TEXTS, make_bundle

from edge_runtime import InputError, Pipeline
from edge_runtime.manifest import ModelFile

NAMES = ("input_ids", "attention_mask", "token_type_ids")


@pytest.fixture(scope="module")
def pipe(bundle_dir):
    return Pipeline.load(bundle_dir, threads=1)


def test_matches_pytorch_in_input_order(pipe, reference_logits):
    # Batched, sorted by length internally, padded per batch: still PyTorch's numbers, in input order.
    logits = pipe.logits(TEXTS, batch_size=3)
    assert np.max(np.abs(logits - reference_logits)) < 1e-4
    assert (logits.argmax(-1) == reference_logits.argmax(-1)).all()


def test_single_text_and_list_shapes(pipe):
    one = pipe(TEXTS[0])
    assert isinstance(one, list) and len(one) == 1 and set(one[0]) == {"label", "score"}
    many = pipe(TEXTS)
    assert len(many) == len(TEXTS) and all(r["label"] in LABELS for r in many)
    assert all(0.0 < r["score"] <= 1.0 for r in many)


def test_top_k_sorted_probabilities(pipe):
    top = pipe(TEXTS[:2], top_k=3)
    assert [len(t) for t in top] == [3, 3]
    for ranked in top:
        scores = [r["score"] for r in ranked]
        assert scores == sorted(scores, reverse=True)
    full = pipe(TEXTS[1], top_k=len(LABELS))
    assert abs(sum(r["score"] for r in full) - 1.0) < 1e-5
    with pytest.raises(InputError, match="top_k"):
        pipe("x", top_k=len(LABELS) + 1)


def test_each_batch_padded_to_its_longest_not_max_length(pipe, monkeypatch):
    widths = []
    run = pipe.backend.run
    monkeypatch.setattr(pipe.backend, "run", lambda feeds: widths.append(feeds["input_ids"].shape) or run(feeds))
    texts = ["a much longer sentence with quite a few more tokens in it", "hi", "hello there"]
    lengths = [len(ids) for ids in pipe.encoder.ids(texts)]
    pipe(texts, batch_size=2)
    # sorted by length: ("hi", "hello there") together, the long one alone
    assert widths == [(2, lengths[2]), (1, lengths[0])]
    assert lengths[0] < pipe.manifest.max_length


def test_empty_and_overlong_texts(pipe):
    assert pipe("")[0]["label"] in LABELS
    ids = pipe.encoder.ids([TEXTS[6]])[0]
    assert len(ids) == pipe.manifest.max_length == 32


def test_bad_inputs_raise_typed_errors(pipe):
    for bad, match in [([], "empty list"), ([1, "x"], "item 0 is int"), (None, "NoneType"),
                       (b"bytes", "bytes"), ({"text": "x"}, "dict")]:
        with pytest.raises(InputError, match=match):
            pipe(bad)
    with pytest.raises(InputError, match="batch_size"):
        pipe("x", batch_size=0)


def test_oos_threshold_falls_back_to_oos_label(tmp_path, tokenizer_path, tiny_onnx):
    model = [(ModelFile("model.onnx", "onnx", "fp32", NAMES), tiny_onnx)]
    strict = make_bundle(tmp_path / "strict", tokenizer_path, model, oos_threshold=0.999)
    assert strict.oos_threshold == 0.999
    results = Pipeline.load(tmp_path / "strict")(TEXTS, top_k=2)
    for ranked in results:
        assert ranked[0]["label"] == "oos"
        assert [r["label"] for r in ranked].count("oos") == 1
    make_bundle(tmp_path / "lenient", tokenizer_path, model, oos_threshold=0.0)
    lenient = Pipeline.load(tmp_path / "lenient")(TEXTS)
    plain = Pipeline.load(tmp_path / "strict").logits(TEXTS).argmax(-1)
    assert [r["label"] for r in lenient] == [LABELS[i] for i in plain]


def test_pick_model_by_backend_or_file(bundle_dir):
    assert Pipeline.load(bundle_dir).model.file == "model.onnx"
    assert Pipeline.load(bundle_dir, model="model.int8.onnx").model.precision == "int8"
    from edge_runtime import BundleError

    with pytest.raises(BundleError, match="no model with backend 'tflite'"):
        Pipeline.load(bundle_dir, backend="tflite")


def test_int8_model_close_to_fp32(bundle_dir):
    fp32 = Pipeline.load(bundle_dir).logits(TEXTS)
    int8 = Pipeline.load(bundle_dir, model="model.int8.onnx").logits(TEXTS)
    assert (fp32.argmax(-1) == int8.argmax(-1)).mean() >= 0.75


def test_missing_provider_warns_with_install_advice_and_falls_back(bundle_dir):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pipe = Pipeline.load(bundle_dir, providers=["CUDAExecutionProvider"])
    messages = [str(w.message) for w in caught]
    assert any("pip install onnxruntime-gpu" in m for m in messages), messages
    assert pipe.backend.providers == ("CPUExecutionProvider",)
    assert pipe("hello")[0]["label"] in LABELS


def test_one_pipeline_from_eight_threads_equals_sequential(pipe):
    texts = [f"{t} {i}" for i in range(6) for t in TEXTS]
    expected = pipe(texts, batch_size=4)
    results: dict[int, list] = {}
    errors = []

    def work(i):
        try:
            results[i] = pipe(texts, batch_size=4)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert all(results[i] == expected for i in range(8))


def test_import_is_light():
    code = ("import sys, time; t=time.perf_counter(); import edge_runtime; dt=time.perf_counter()-t; "
            "heavy=[m for m in ('numpy','onnxruntime','tokenizers','torch','transformers') if m in sys.modules]; "
            "print(heavy, dt)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    heavy, seconds = out.rsplit(" ", 1)
    assert heavy == "[]"
    assert float(seconds) < 0.5
