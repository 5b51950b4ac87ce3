"""Which graph ships, and how its session is opened: onnxruntime's offline transformer fusion and
its load-time SkipLayerNormalization fusion each ship only where they measure faster.

The variants of one model file, timed at batch 1 on the build host:
- "plain": the exported graph; onnxruntime fuses what it can when it loads it (the reference);
- "fused": onnxruntime's transformer optimizer applied offline (Attention, EmbedLayerNorm, GELU,
  SkipLayerNorm);
- "... LayerNorm unfused": the same without SkipLayerNormalization, offline and at load time (the
  session disables "SkipLayerNormFusion"). onnxruntime 1.32's CPU SkipLayerNormalization kernel
  takes ~17 us on a 12 x 384 query where Add + LayerNormalization take ~2 (BENCHMARKS.md): on
  MiniLM that is 0.46 ms instead of 0.59 at p50.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

# Keep a variant other than "plain" only when it is at least 3% faster at batch-1 p50: onnxruntime
# also fuses the plain graph at load time, and on an idle AVX-512 VNNI machine plain and fused
# measured within 8% of each other, either way round, from run to run (BENCHMARKS.md).
FUSION_MIN_GAIN = 0.03
UNFUSED_LAYER_NORM = ("SkipLayerNormFusion",)  # onnxruntime's name for its load-time fusion


def choose_graph(candidates: dict[str, tuple[Path, tuple[str, ...]]], batches: list[dict[str, np.ndarray]],
                 input_names: tuple[str, ...]) -> tuple[str, dict | None]:
    """The name of the variant to ship (candidates: name -> (file, optimizers its session disables))
    and the timings behind the choice (None when there was nothing to choose between)."""
    if len(candidates) < 2:
        return "plain", None
    from .measure import batch1_p50

    timings = batch1_p50({n: path for n, (path, _) in candidates.items()}, batches, input_names,
                         disabled={n: disabled for n, (_, disabled) in candidates.items()})
    fastest = min(timings, key=timings.__getitem__)
    kept = fastest if timings[fastest] < (1 - FUSION_MIN_GAIN) * timings["plain"] else "plain"
    return kept, {"kept": kept, "p50_ms": timings}
