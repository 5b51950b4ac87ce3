"""Fused or plain graph: onnxruntime's offline transformer fusion ships only where it measures faster."""

from __future__ import annotations

from pathlib import Path

import numpy as np

# Keep the offline-fused graph only when it is at least 3% faster at batch-1 p50: onnxruntime also
# fuses the plain graph at load time, and on an idle AVX-512 VNNI machine the two measured within
# 8% of each other, either way round, from run to run (BENCHMARKS.md).
FUSION_MIN_GAIN = 0.03


def choose_graph(candidates: dict[str, Path], batches: list[dict[str, np.ndarray]],
                 input_names: tuple[str, ...]) -> tuple[str, dict | None]:
    """The name of the candidate to ship ("plain" or "fused") and the timings behind the choice
    (None when there was nothing to choose between)."""
    if set(candidates) != {"plain", "fused"}:
        return "plain", None
    from .measure import batch1_p50

    timings = batch1_p50(candidates, batches, input_names)
    kept = "fused" if timings["fused"] < (1 - FUSION_MIN_GAIN) * timings["plain"] else "plain"
    return kept, {"kept": kept, "p50_ms": timings}
