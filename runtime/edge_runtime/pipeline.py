"""`Pipeline`: load a bundle, tokenize, run, softmax, labels, out-of-scope fallback."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .backends import load_backend
from .bundle import Bundle, open_bundle
from .errors import BundleError, InputError
from .manifest import Manifest, ModelFile
from .tokenize import TextEncoder


class Pipeline:
    """Text classification on a bundle, in the style of transformers' pipeline.

    >>> pipe = Pipeline.load("build/arm64")
    >>> pipe("book me a car in Paris")
    [{'label': 'car_rental', 'score': 0.91}]
    """

    def __init__(self, bundle: Bundle, model: ModelFile, backend: Any):
        self.bundle = bundle
        self.model = model
        self.backend = backend
        manifest = bundle.manifest
        self.labels = manifest.labels
        # A static-shape model (TFLite) cannot take more tokens than it was compiled for.
        length = min(manifest.max_length, backend.static_length or manifest.max_length)
        self.encoder = TextEncoder(bundle.path(manifest.tokenizer_file), length)
        if backend.output_width is not None and backend.output_width != len(self.labels):
            raise BundleError(f"{model.file} outputs {backend.output_width} logits but the manifest "
                              f"lists {len(self.labels)} labels")

    @classmethod
    def load(cls, path: str | Path, threads: int | None = None, providers: Sequence[str] | None = None,
             backend: str | None = None, model: str | None = None) -> "Pipeline":
        """Open and verify a bundle, then start its model.

        threads: intra-op threads (default: the manifest's, else the backend's default).
        providers: ONNX Runtime execution providers (default: the manifest's, else CPU).
        backend / model: pick a model file by backend ("onnx", "tflite") or file name;
        default: the first model the manifest lists.
        """
        bundle = open_bundle(path)
        chosen = select_model(bundle.manifest, backend=backend, model=model)
        execution = bundle.manifest.execution
        threads = threads if threads is not None else execution.get("threads")
        providers = tuple(providers) if providers else tuple(execution.get("providers") or ()) or None
        runner = load_backend(bundle.path(chosen.file), chosen, threads=threads, providers=providers)
        return cls(bundle, chosen, runner)

    @property
    def manifest(self) -> Manifest:
        return self.bundle.manifest

    def __call__(self, texts: str | Sequence[str], batch_size: int = 32, top_k: int = 1) -> list:
        single = isinstance(texts, str)
        if not isinstance(top_k, int) or not 1 <= top_k <= len(self.labels):
            raise InputError(f"top_k must be an integer between 1 and {len(self.labels)}, got {top_k!r}")
        probs = softmax(self.logits(texts, batch_size=batch_size))
        results = [self._top(row, top_k) for row in probs]
        if single and top_k > 1:
            return results[0]
        return results

    def logits(self, texts: str | Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Raw logits in input order, float32 [n_texts, n_labels]."""
        texts = check_texts(texts)
        if not isinstance(batch_size, int) or batch_size < 1:
            raise InputError(f"batch_size must be a positive integer, got {batch_size!r}")
        return self.logits_for_ids(self.encoder.ids(texts), batch_size)

    def logits_for_ids(self, ids: list[list[int]], batch_size: int = 32) -> np.ndarray:
        # Sort by length so each batch pads little, then scatter back to input order.
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        out = np.empty((len(ids), len(self.labels)), dtype=np.float32)
        for start in range(0, len(order), batch_size):
            chunk = order[start:start + batch_size]
            feeds = self.encoder.feeds([ids[i] for i in chunk], self.backend.input_names)
            out[chunk] = self.backend.run(feeds)
        return out

    def _top(self, probs: np.ndarray, top_k: int) -> Any:
        best = np.argsort(-probs, kind="stable")[:top_k]
        items = [{"label": self.labels[i], "score": float(probs[i])} for i in best]
        manifest = self.manifest
        if manifest.oos_threshold is not None and items[0]["score"] < manifest.oos_threshold:
            oos = manifest.oos_label
            items = [{"label": oos, "score": items[0]["score"]}] + [it for it in items[1:] if it["label"] != oos]
        return items[0] if top_k == 1 else items


def select_model(manifest: Manifest, backend: str | None = None, model: str | None = None) -> ModelFile:
    candidates = [m for m in manifest.models
                  if (backend is None or m.backend == backend) and (model is None or m.file == model)]
    if not candidates:
        have = ", ".join(f"{m.file} ({m.backend})" for m in manifest.models)
        wanted = " and ".join(x for x in (f"backend {backend!r}" if backend else "",
                                          f"model {model!r}" if model else "") if x)
        raise BundleError(f"bundle has no model with {wanted}; it has {have}")
    return candidates[0]


def check_texts(texts: Any) -> list[str]:
    if isinstance(texts, str):
        return [texts]
    if isinstance(texts, (bytes, dict)) or not isinstance(texts, Sequence):
        raise InputError(f"expected a string or a list of strings, got {type(texts).__name__}")
    if len(texts) == 0:
        raise InputError("expected at least one text, got an empty list")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise InputError(f"item {i} is {type(text).__name__}, not a string")
    return list(texts)


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)
