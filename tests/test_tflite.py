"""TFLite export (litert-torch + ai-edge-quantizer) and the LiteRT backend, on a tiny random BERT.

Goldens: fp32 matches PyTorch to 1e-4; fp16 and int8 keep every argmax of the tiny model (its
head is scaled so argmax is well separated) and shrink the file as their precision says.
"""

from __future__ import annotations

import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from conftest import LABELS, TEXTS, make_bundle

from edge_runtime import Pipeline
from edge_runtime.errors import BackendUnavailableError
from edge_runtime.manifest import ModelFile

pytest.importorskip("litert_torch", reason="the tflite extra: pip install 'edge-sdk[tflite]'")
pytest.importorskip("ai_edge_litert")

NAMES = ("input_ids", "attention_mask", "token_type_ids")
BUCKETS = (16, 32)  # the tiny bundles truncate at 32 (conftest.make_bundle)
# (max abs diff vs PyTorch, file size relative to fp32) per precision on the tiny BERT; int8 saves less
# here than on MiniLM (0.29): the per-row scales of its 30522-row embedding weigh more next to hidden 32
BOUNDS = {"fp32": (1e-4, 1.0), "fp16": (5e-3, 0.55), "dynamic-int8": (0.1, 0.5), "int8": (0.1, 0.5)}


def encode(tokenizer_path, texts, length=32):
    from edge_runtime.tokenize import TextEncoder

    return TextEncoder(tokenizer_path, length).ids(texts)


def feeds(ids):
    width = max(len(r) for r in ids)
    out = {n: np.zeros((len(ids), width), np.int64) for n in NAMES}
    for i, row in enumerate(ids):
        out["input_ids"][i, :len(row)] = row
        out["attention_mask"][i, :len(row)] = 1
    return out


@pytest.fixture(scope="module")
def calibration(tokenizer_path):
    return [feeds(encode(tokenizer_path, TEXTS))]


@pytest.fixture(scope="module")
def exported(tmp_path_factory, tiny_model, calibration):
    """Each precision exported once, lazily: {precision: path}."""
    from edge_sdk.export.tflite import export_tflite

    folder = tmp_path_factory.mktemp("tflite")
    cache = {}

    def get(precision):
        if precision not in cache:
            cache[precision] = export_tflite(tiny_model, folder / f"{precision}.tflite", sequence_length=32,
                                             precision=precision, calibration_batches=calibration, buckets=BUCKETS)
        return cache[precision]

    return get


def backend(path, threads=1, sequence_length=32):
    from edge_runtime.backends.tflite import TFLiteBackend

    return TFLiteBackend(str(path), threads=threads, input_names=NAMES, sequence_length=sequence_length)


@pytest.mark.parametrize("precision", list(BOUNDS))
def test_export_matches_pytorch(exported, precision, reference_logits, tokenizer_path):
    path = exported(precision)
    atol, size_ratio = BOUNDS[precision]
    got = np.stack([backend(path).run(feeds([row]))[0] for row in encode(tokenizer_path, TEXTS)])
    diff = float(np.abs(got - reference_logits).max())
    assert diff <= atol, f"{precision}: max abs diff {diff:.3g} > {atol}"
    assert (got.argmax(-1) == reference_logits.argmax(-1)).all()
    assert path.stat().st_size <= size_ratio * exported("fp32").stat().st_size * 1.0001


def test_one_signature_per_bucket_and_weights_stored_once(exported, tiny_model, tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    from edge_sdk.export.tflite import export_tflite, length_buckets

    assert length_buckets(128) == (16, 32, 64, 128) and length_buckets(40) == (16, 32, 40)
    assert length_buckets(8) == (8,)
    path = exported("fp32")
    signatures = Interpreter(model_path=str(path)).get_signature_list()
    assert sorted(signatures) == ["seq_16", "seq_32"]
    single = export_tflite(tiny_model, tmp_path / "one.tflite", sequence_length=32, precision="fp32", buckets=(32,))
    assert path.stat().st_size < 1.1 * single.stat().st_size  # a second bucket adds a graph, not weights
    assert backend(path).buckets == BUCKETS and backend(single).buckets == (32,)


def test_export_refuses_bad_arguments(tiny_model, tmp_path):
    from edge_sdk.export.tflite import export_tflite

    with pytest.raises(ValueError, match="precision must be one of"):
        export_tflite(tiny_model, tmp_path / "m.tflite", sequence_length=32, precision="int4")
    with pytest.raises(ValueError, match="needs calibration_batches"):
        export_tflite(tiny_model, tmp_path / "m.tflite", sequence_length=32, precision="int8")
    with pytest.raises(ValueError, match="end at sequence_length 32"):
        export_tflite(tiny_model, tmp_path / "m.tflite", sequence_length=32, precision="fp32", buckets=(16, 64))


# -- backend -------------------------------------------------------------------------------------

def test_backend_pads_each_row_to_its_bucket(exported, tokenizer_path, reference_logits):
    """A batch padded to its longest row gives each row the logits it gets alone (fp32: PyTorch's)."""
    ids = encode(tokenizer_path, TEXTS)
    assert max(map(len, ids)) == 32 and min(map(len, ids)) <= 16  # both buckets in one batch
    b = backend(exported("fp32"))
    batch = b.run(feeds(ids))
    assert batch.shape == (len(TEXTS), len(LABELS)) and batch.dtype == np.float32
    np.testing.assert_allclose(batch, reference_logits, atol=1e-4)
    int8 = backend(exported("dynamic-int8"))
    alone = np.stack([int8.run(feeds([row]))[0] for row in ids])
    np.testing.assert_array_equal(int8.run(feeds(ids)), alone)  # batch-mates do not change a row's scales
    with pytest.raises(ValueError, match="exceeds the model's static length 32"):
        b.run(feeds([[101] + [2000] * 40 + [102]]))


def test_backend_honours_threads(exported, monkeypatch):
    import ai_edge_litert.interpreter as litert

    seen = []
    real = litert.Interpreter

    class Spy(real):
        def __init__(self, *args, num_threads=None, **kwargs):
            seen.append(num_threads)
            super().__init__(*args, num_threads=num_threads, **kwargs)

    monkeypatch.setattr(litert, "Interpreter", Spy)
    backend(exported("dynamic-int8"), threads=3)
    backend(exported("dynamic-int8"), threads=None)
    import os

    assert seen == [3, os.cpu_count() or 1]


def test_backend_is_safe_to_share_between_threads(exported, tokenizer_path):
    b = backend(exported("dynamic-int8"))
    rows = [feeds([r]) for r in encode(tokenizer_path, TEXTS)] * 8
    want = [b.run(f) for f in rows]
    barrier = threading.Barrier(4)

    def work(i):
        if i < 4:
            barrier.wait()
        return b.run(rows[i])

    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(work, range(len(rows))))
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


# -- pipeline, bundle, missing extra ----------------------------------------------------------------

@pytest.fixture(scope="module")
def tflite_bundle(tmp_path_factory, tokenizer_path, tiny_int8_onnx, exported):
    """An arm64-style bundle: int8 ONNX first, dynamic-int8 TFLite second."""
    out = tmp_path_factory.mktemp("bundles") / "arm64ish"
    make_bundle(out, tokenizer_path, [
        (ModelFile("model.int8.onnx", "onnx", "int8", NAMES, tolerance=0.05), tiny_int8_onnx),
        (ModelFile("model.int8.tflite", "tflite", "int8", NAMES, sequence_length=32, tolerance=0.05),
         exported("dynamic-int8")),
    ])
    return out


def test_pipeline_picks_the_tflite_model(tflite_bundle):
    onnx = Pipeline.load(tflite_bundle)
    tfl = Pipeline.load(tflite_bundle, backend="tflite", threads=2)
    assert tfl.model.file == "model.int8.tflite" and tfl.backend.threads == 2 and tfl.encoder.max_length == 32
    texts = TEXTS + ["book a table " * 9]  # a 29-token text lands in the 32 bucket
    assert [p["label"] for p in tfl(texts, batch_size=3)] == [p["label"] for p in onnx(texts)]
    from edge_runtime.parity import replay

    assert replay(tfl).ok


@pytest.fixture
def no_litert(monkeypatch):
    """As if ai-edge-litert were not installed: importing it fails."""
    for name in [m for m in sys.modules if m == "ai_edge_litert" or m.startswith("ai_edge_litert.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "ai_edge_litert", None)
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)


def test_missing_litert_names_the_extra(tflite_bundle, no_litert):
    with pytest.raises(BackendUnavailableError, match=r"pip install 'edge-sdk-runtime\[tflite\]'") as info:
        Pipeline.load(tflite_bundle, backend="tflite")
    assert "\n" not in str(info.value)
    assert Pipeline.load(tflite_bundle)("wake me up at 6am")[0]["label"] in LABELS  # ONNX still works


def test_verify_without_litert_checks_the_onnx_model_only(tflite_bundle, no_litert, capsys):
    from edge_runtime.cli import main

    assert main(["verify", str(tflite_bundle)]) == 1  # a model it could not check is a failure ...
    capsys.readouterr()
    assert main(["verify", str(tflite_bundle), "--allow-unchecked"]) == 0  # ... unless the user says so
    out = capsys.readouterr().out
    assert "model.int8.onnx: 8 fixtures" in out and ": OK" in out
    line = next(x for x in out.splitlines() if x.startswith("model.int8.tflite"))
    assert "not checked here" in line and "pip install 'edge-sdk-runtime[tflite]'" in line


def test_missing_converter_names_the_extra(tiny_model, tmp_path, monkeypatch):
    from edge_sdk.errors import EdgeSdkError
    from edge_sdk.export.tflite import export_tflite

    monkeypatch.setitem(sys.modules, "litert_torch", None)
    with pytest.raises(EdgeSdkError, match=r"pip install 'edge-sdk\[tflite\]'") as info:
        export_tflite(tiny_model, tmp_path / "m.tflite", sequence_length=32, precision="fp32")
    assert "\n" not in str(info.value) and not (tmp_path / "m.tflite").exists()
