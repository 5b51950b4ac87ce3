"""Inference backends. Each takes int64 feeds padded per batch and returns float32 logits.

Interface shared by every backend:
    input_names: tuple[str, ...]   inputs the model takes
    output_width: int | None       logits width (number of labels), None if the model hides it
    static_length: int | None      sequence length a static-shape model needs, else None
    run(feeds: dict[str, np.ndarray]) -> np.ndarray   float32 [batch, width]
"""

from __future__ import annotations

from pathlib import Path

from ..limits import Limits
from ..manifest import ModelFile


def load_backend(path: Path, model: ModelFile, *, threads: int | None, providers: tuple[str, ...] | None,
                 limits: Limits | None = None):
    if model.backend == "onnx":
        from .onnx import OnnxBackend

        return OnnxBackend(path, threads=threads, providers=providers, input_names=model.input_names,
                           disabled_optimizers=model.disabled_optimizers)
    from .tflite import TFLiteBackend

    return TFLiteBackend(str(path), threads=threads, input_names=model.input_names,
                         sequence_length=model.sequence_length, limits=limits)
