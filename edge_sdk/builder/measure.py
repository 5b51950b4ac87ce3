"""Measurements a build records: accuracy of each shipped file through edge_runtime (the device
code path), size, batch-1 latency; the PyTorch FP32 reference; batch-1 timing of candidate graphs."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from edge_runtime.bench import batch1_latency
from edge_runtime.pipeline import Pipeline

from ..data import LabelledData
from ..metrics import accuracy_report, label_ids

HOST_PROVIDERS = ("CPUExecutionProvider",)  # build-time checks run here, whatever the target's providers
# Batch 1, as a device sees queries: dynamic int8 scales activations per batch, so accuracy at
# batch 64 differs by up to 0.2 points on CLINC150 (BENCHMARKS.md), as much as the drops we guard.
ACCURACY_BATCH = 1
REFERENCE_BATCH = 64  # FP32 PyTorch: padding is masked, so the batch does not change predictions


def measure_bundle(bundle_dir: Path, model_file: str, data: LabelledData, latency_queries: int,
                   split: str = "test") -> dict:
    """Accuracy on a split (batch 1, all cores; the guard uses test, a search validation) and batch-1
    latency (1 thread) of one model file."""
    texts = list(getattr(data, split).texts)
    # every host core for the accuracy pass, whatever the target's threads (arm64 asks for a Pi's 4)
    pipe = Pipeline.load(bundle_dir, model=model_file, threads=os.cpu_count() or 1, providers=HOST_PROVIDERS)
    predictions = pipe(texts, batch_size=ACCURACY_BATCH)
    predicted = label_ids([p["label"] for p in predictions], data.labels, model_file)
    report = accuracy_report(predicted, np.asarray(getattr(data, split).labels), data.oos_id)
    single = Pipeline.load(bundle_dir, model=model_file, threads=1, providers=HOST_PROVIDERS)
    latency = batch1_latency(lambda batch: single(batch), texts[:latency_queries])
    return {**report, "size_mb": (Path(bundle_dir) / model_file).stat().st_size / 1e6, "latency": latency,
            "latency_threads": 1, "accuracy_batch_size": ACCURACY_BATCH}


def pytorch_reference(model_dir: Path, data: LabelledData, max_length: int, latency_queries: int,
                      split: str = "test") -> dict:
    """A model in PyTorch FP32: accuracy on a split, weights size, batch-1 latency at 1 thread."""
    import torch
    from transformers import AutoTokenizer

    from ..models import load_classifier

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    model = load_classifier(model_dir)
    texts = list(getattr(data, split).texts)
    predicted = []
    with torch.inference_mode():
        for i in range(0, len(texts), REFERENCE_BATCH):
            batch = tokenizer(texts[i:i + REFERENCE_BATCH], padding=True, truncation=True, max_length=max_length,
                              return_tensors="pt")
            predicted.append(model(**batch).logits.argmax(-1).numpy())
        report = accuracy_report(np.concatenate(predicted), np.asarray(getattr(data, split).labels), data.oos_id)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            def predict(batch):
                return model(**tokenizer(batch, truncation=True, max_length=max_length, return_tensors="pt"))

            latency = batch1_latency(predict, texts[:latency_queries])
        finally:
            torch.set_num_threads(threads)
    size = sum(p.stat().st_size for p in Path(model_dir).glob("*.safetensors"))
    return {**report, "size_mb": size / 1e6, "latency": latency, "latency_threads": 1}


def single_rows(batches: list[dict[str, np.ndarray]], n: int) -> list[dict[str, np.ndarray]]:
    """Unpadded batch-1 feeds taken from padded batches."""
    rows = []
    for feeds in batches:
        for i, length in enumerate(feeds["attention_mask"].sum(axis=1)):
            rows.append({k: v[i:i + 1, :length] for k, v in feeds.items()})
            if len(rows) == n:
                return rows
    return rows


def batch1_p50(candidates: dict[str, Path], batches: list[dict[str, np.ndarray]], input_names: tuple[str, ...],
               queries: int = 64, rounds: int = 3, disabled: dict[str, tuple[str, ...]] | None = None
               ) -> dict[str, float]:
    """Median batch-1 latency (ms, 1 thread) of each ONNX file, rounds interleaved against drift;
    `disabled`: per candidate, the onnxruntime optimizers its session is opened without."""
    from edge_runtime.backends.onnx import OnnxBackend

    backends = {name: OnnxBackend(path, threads=1, providers=None, input_names=input_names,
                                  disabled_optimizers=(disabled or {}).get(name, ()))
                for name, path in candidates.items()}
    rows = single_rows(batches, queries)
    samples: dict[str, list[float]] = {name: [] for name in backends}
    for backend in backends.values():  # warm-up
        for feeds in rows[:5]:
            backend.run(feeds)
    for _ in range(rounds):
        for name, backend in backends.items():
            for feeds in rows:
                start = time.perf_counter()
                backend.run(feeds)
                samples[name].append(time.perf_counter() - start)
    return {name: float(np.median(s) * 1000) for name, s in samples.items()}


def tflite_logits(path: Path, batches: list[dict[str, np.ndarray]], sequence_length: int,
                  input_names: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Logits of the rows no longer than the model's static length, and a mask of those rows.

    Longer rows are left out rather than cut: cutting drops [SEP], so they would not be the input
    the reference logits were computed on. (The runtime's tokenizer truncates at that length.)
    """
    from edge_runtime.backends.tflite import TFLiteBackend

    backend = TFLiteBackend(str(path), threads=None, input_names=input_names, sequence_length=sequence_length)
    logits, fits = [], []
    for feeds in batches:
        keep = np.asarray(feeds["attention_mask"]).sum(axis=1) <= sequence_length
        fits.append(keep)
        if keep.any():
            logits.append(backend.run({k: np.asarray(v)[keep, :sequence_length] for k, v in feeds.items()}))
    fits = np.concatenate(fits) if fits else np.zeros(0, bool)
    return (np.concatenate(logits) if logits else np.zeros((0, backend.output_width), np.float32)), fits
