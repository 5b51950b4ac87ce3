"""Latency and throughput measurement shared by `edge-runtime bench` and `edge-sdk benchmark`."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np


def latency_stats(seconds: Sequence[float]) -> dict[str, float]:
    ms = np.asarray(seconds, dtype=np.float64) * 1000.0
    return {
        "n": int(ms.size),
        "mean_ms": float(ms.mean()),
        "std_ms": float(ms.std()),
        "p50_ms": float(np.percentile(ms, 50)),
        "p95_ms": float(np.percentile(ms, 95)),
        "p99_ms": float(np.percentile(ms, 99)),
    }


def time_each(predict: Callable[[list[str]], object], texts: Sequence[str]) -> list[float]:
    """Seconds for one batch-1 call per text (distinct queries, so no cache flatters the numbers)."""
    samples = []
    for text in texts:
        start = time.perf_counter()
        predict([text])
        samples.append(time.perf_counter() - start)
    return samples


def batch1_latency(predict: Callable[[list[str]], object], texts: Sequence[str], warmup: int = 10) -> dict:
    time_each(predict, list(texts[:warmup]))
    return latency_stats(time_each(predict, texts))


def throughput(predict: Callable[[list[str]], object], texts: Sequence[str], batch_size: int = 32) -> float:
    """Queries per second when calling with batches of `batch_size` texts."""
    texts = list(texts)
    predict(texts[:batch_size])  # warm-up
    start = time.perf_counter()
    for i in range(0, len(texts), batch_size):
        predict(texts[i:i + batch_size])
    return len(texts) / (time.perf_counter() - start)
