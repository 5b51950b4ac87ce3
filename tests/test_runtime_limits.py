"""Resource limits: threads (a warning past the cores, an error past the cap), the batch token
budget, and the bounded TFLite interpreter pool under concurrent callers."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
import warnings

import numpy as np
import pytest
from conftest import LABELS, TEXTS, make_bundle

from edge_runtime import Pipeline
from edge_runtime.errors import LimitError
from edge_runtime.limits import Limits, ThreadsWarning, usable_cores
from edge_runtime.manifest import MANIFEST_FILE, ModelFile

NAMES = ("input_ids", "attention_mask", "token_type_ids")


def test_threads_past_the_cap_are_refused_at_once(bundle_dir):
    cap = Limits().max_threads()
    assert cap == max(16, 4 * usable_cores())
    with pytest.raises(LimitError, match=f"threads={cap + 1} is past the cap of {cap} threads"):
        Pipeline.load(bundle_dir, threads=cap + 1)
    started = time.perf_counter()  # once took 16 GB and a load average of 290 before it was killed
    result = subprocess.run([sys.executable, "-m", "edge_runtime.cli", "predict", str(bundle_dir), "hi",
                             "--threads", "100000"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and result.stderr.count("\n") == 1
    assert "past the cap" in result.stderr and time.perf_counter() - started < 60


def test_threads_past_the_cores_warn(bundle_dir):
    cores = usable_cores()
    with pytest.warns(ThreadsWarning, match=f"more than the {cores} usable cores"):
        pipe = Pipeline.load(bundle_dir, threads=cores + 1)
    assert pipe.backend.session.get_session_options().intra_op_num_threads == cores + 1
    with warnings.catch_warnings():
        warnings.simplefilter("error", ThreadsWarning)
        Pipeline.load(bundle_dir, threads=cores)  # no warning at the core count


def test_a_manifest_asking_for_more_threads_than_the_device_has(bundle_dir, tmp_path):
    bundle = shutil.copytree(bundle_dir, tmp_path / "b")
    manifest = json.loads((bundle / MANIFEST_FILE).read_text())
    manifest["execution"]["threads"] = 512  # built on a big host
    (bundle / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.warns(ThreadsWarning, match=f"asks for 512 threads .* using {usable_cores()}"):
        pipe = Pipeline.load(bundle)
    assert pipe.backend.session.get_session_options().intra_op_num_threads == usable_cores()


def test_bad_limits_are_refused():
    with pytest.raises(LimitError, match="max_batch_tokens must be a positive integer"):
        Limits(max_batch_tokens=0)
    with pytest.raises(LimitError, match="max_interpreters"):
        Limits(max_interpreters=-1)


def test_batch_size_is_bounded_by_the_token_budget(bundle_dir, monkeypatch):
    """batch_size=100000 once meant one call of 100000 rows (8.1 GB). Now every model call holds at
    most max_batch_tokens tokens (rows x padded width), and the answers do not change."""
    texts = [f"{t} {i}" for i in range(40) for t in TEXTS]
    reference = Pipeline.load(bundle_dir, threads=1).logits(texts, batch_size=1)
    pipe = Pipeline.load(bundle_dir, threads=1, limits=Limits(max_batch_tokens=256))
    shapes = []
    run = pipe.backend.run
    monkeypatch.setattr(pipe.backend, "run", lambda feeds: shapes.append(feeds["input_ids"].shape) or run(feeds))
    got = pipe.logits(texts, batch_size=100_000)
    assert all(rows * width <= 256 or rows == 1 for rows, width in shapes)
    assert sum(rows for rows, _ in shapes) == len(texts) and len(shapes) > 1
    assert np.abs(got - reference).max() < 1e-4


# --- TFLite interpreter pool --------------------------------------------------------------------

@pytest.fixture(scope="module")
def tflite_bundle(tmp_path_factory, tokenizer_path, tiny_model, tiny_onnx):
    pytest.importorskip("litert_torch", reason="the tflite extra: pip install 'edge-sdk[tflite]'")
    pytest.importorskip("ai_edge_litert")
    from edge_sdk.export.tflite import export_tflite

    folder = tmp_path_factory.mktemp("pool")
    model = export_tflite(tiny_model, folder / "model.tflite", sequence_length=32, precision="fp32", buckets=(16, 32))
    out = folder / "bundle"
    make_bundle(out, tokenizer_path, [(ModelFile("model.tflite", "tflite", "fp32", NAMES, sequence_length=32), model)])
    return out


def hammer(pipe, threads: int) -> list:
    texts = [f"{t} {i}" for i in range(6) for t in TEXTS]
    expected = pipe(texts)
    start = threading.Barrier(threads)
    results, errors = [], []

    def work():
        try:
            start.wait()
            for _ in range(3):
                results.append(pipe(texts))
        except Exception as exc:  # reported below
            errors.append(exc)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert not errors
    assert all(r == expected for r in results) and len(results) == 3 * threads
    return results


def test_tflite_pool_is_bounded_under_32_callers(tflite_bundle):
    pipe = Pipeline.load(tflite_bundle, threads=1)
    assert pipe.backend.max_interpreters == max(1, usable_cores() // 1)
    hammer(pipe, 32)
    assert pipe.backend.interpreters <= pipe.backend.max_interpreters  # it grew to 24 before
    assert pipe("wake me up")[0]["label"] in LABELS


def test_tflite_pool_limit_is_a_setting(tflite_bundle):
    one = Pipeline.load(tflite_bundle, threads=1, limits=Limits(max_interpreters=1))
    hammer(one, 8)
    assert one.backend.interpreters == 1
    wide = Pipeline.load(tflite_bundle, threads=1, limits=Limits(max_interpreters=8))
    hammer(wide, 8)
    assert 1 < wide.backend.interpreters <= 8  # the cap, not the absence of contention, kept the others at 1
