"""`Pipeline`: load a bundle, tokenize, run, softmax, labels, out-of-scope fallback."""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from .backends import load_backend
from .bundle import Bundle, open_bundle
from .errors import BundleError, InputError
from .limits import DEFAULT_LIMITS, Limits, ThreadsWarning, check_threads, usable_cores
from .manifest import Manifest, ModelFile
from .onnx_graph import scan
from .texts import check_texts
from .tokenize import TextEncoder

# Texts tokenized at a time: bounds the tokenizer's per-text objects for a very long list.
TOKENIZE_CHUNK = 4096


class Pipeline:
    """Text classification on a bundle, in the style of transformers' pipeline.

    >>> pipe = Pipeline.load("build/arm64")
    >>> pipe("book me a car in Paris")
    [{'label': 'car_rental', 'score': 0.91}]
    """

    def __init__(self, bundle: Bundle, model: ModelFile, backend: Any, *, rows_alone: bool = False,
                 limits: Limits = DEFAULT_LIMITS):
        self.bundle = bundle
        self.model = model
        self.backend = backend
        # True: each text runs as a batch of one, unpadded, so its answer cannot depend on its
        # batch-mates (dynamic int8 scales activations over the whole batch, padding included).
        self.rows_alone = rows_alone
        self.limits = limits
        manifest = bundle.manifest
        self.labels = manifest.labels
        # A static-shape model (TFLite) cannot take more tokens than it was compiled for.
        length = min(manifest.max_length, backend.static_length or manifest.max_length)
        self.encoder = TextEncoder(bundle.path(manifest.tokenizer_file), length)
        if backend.output_width is not None and backend.output_width != len(self.labels):
            raise BundleError(f"{model.file} outputs {backend.output_width} logits but the manifest "
                              f"lists {len(self.labels)} labels")

    @classmethod
    def load(cls, path: str | os.PathLike, threads: int | None = None, providers: Sequence[str] | None = None,
             backend: str | None = None, model: str | None = None, *, digest: str | None = None,
             public_key: str | os.PathLike | bytes | None = None, batch_independent: bool = True,
             limits: Limits = DEFAULT_LIMITS) -> Pipeline:
        """Open and verify a bundle, then start its model.

        threads: intra-op threads (default: the manifest's, at most the usable cores; else the
        backend's default). More than the cores warns; more than Limits.max_threads() is refused.
        providers: ONNX Runtime execution providers (default: the manifest's, else CPU).
        backend / model: pick a model file by backend ("onnx", "tflite") or file name;
        default: the first model the manifest lists.
        digest: the bundle digest to insist on ("sha256:...", as `edge-runtime verify` prints).
        public_key: an Ed25519 public key (PEM bytes or file) whose signature the bundle must carry
        (needs the `signing` extra).
        batch_independent: True (default) runs models whose answers would depend on their
        batch-mates (dynamic int8) one text at a time; False batches them anyway, for throughput.
        """
        bundle = open_bundle(path, digest=digest, public_key=public_key, limits=limits)
        return cls.from_bundle(bundle, threads=threads, providers=providers, backend=backend, model=model,
                               batch_independent=batch_independent, limits=limits)

    @classmethod
    def from_bundle(cls, bundle: Bundle, threads: int | None = None, providers: Sequence[str] | None = None,
                    backend: str | None = None, model: str | None = None, *, batch_independent: bool = True,
                    limits: Limits = DEFAULT_LIMITS) -> Pipeline:
        """Start a model of an already opened bundle (`verify` checks every model of one archive
        unpacked once)."""
        chosen = select_model(bundle.manifest, backend=backend, model=model)
        execution = bundle.manifest.execution
        if threads is not None:
            threads = check_threads(threads, limits)
        elif execution.get("threads"):
            threads = _bundle_threads(execution["threads"])
        providers = tuple(providers) if providers else tuple(execution.get("providers") or ()) or None
        runner = load_backend(bundle.path(chosen.file), chosen, threads=threads, providers=providers,
                              limits=limits)
        rows_alone = False
        if chosen.backend == "onnx" and batch_independent:
            info = bundle.graphs.get(chosen.file) or scan(bundle.path(chosen.file))
            rows_alone = info.batch_dependent
        return cls(bundle, chosen, runner, rows_alone=rows_alone, limits=limits)

    @property
    def manifest(self) -> Manifest:
        return self.bundle.manifest

    def __call__(self, texts: str | Sequence[str], batch_size: int = 32, top_k: int = 1) -> list:
        single = isinstance(texts, str)
        if type(top_k) is not int or not 1 <= top_k <= len(self.labels):
            raise InputError(f"top_k must be an integer between 1 and {len(self.labels)}, got {top_k!r}")
        probs = softmax(self.logits(texts, batch_size=batch_size))
        results = [self._top(row, top_k) for row in probs]
        if single and top_k > 1:
            return results[0]
        return results

    def logits(self, texts: str | Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Raw logits in input order, float32 [n_texts, n_labels]."""
        texts = check_texts(texts, self.limits.max_text_chars)
        if type(batch_size) is not int or batch_size < 1:
            raise InputError(f"batch_size must be a positive integer, got {batch_size!r}")
        parts = [self.logits_for_ids(self.encoder.ids(texts[i:i + TOKENIZE_CHUNK]), batch_size)
                 for i in range(0, len(texts), TOKENIZE_CHUNK)]
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def logits_for_ids(self, ids: list[list[int]], batch_size: int = 32) -> np.ndarray:
        # Sort by length so each batch pads little, then scatter back to input order.
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        out = np.empty((len(ids), len(self.labels)), dtype=np.float32)
        rows = 1 if self.rows_alone else batch_size
        start = 0
        while start < len(order):
            end = min(start + rows, len(order))
            # Sorted by length, the last row is the longest: its length is the batch's width.
            # Memory grows with rows x width; the token budget bounds it whatever batch_size says.
            fit = max(1, self.limits.max_batch_tokens // max(1, len(ids[order[end - 1]])))
            end = min(end, start + fit)
            chunk = order[start:end]
            feeds = self.encoder.feeds([ids[i] for i in chunk], self.backend.input_names)
            logits = self.backend.run(feeds)
            if logits.shape != (len(chunk), len(self.labels)):
                raise BundleError(f"{self.model.file} gave logits of shape {logits.shape} for {len(chunk)} "
                                  f"text(s) and {len(self.labels)} labels")
            out[chunk] = logits
            start = end
        return out

    def _top(self, probs: np.ndarray, top_k: int) -> Any:
        best = np.argsort(-probs, kind="stable")[:top_k]
        items = [{"label": self.labels[i], "score": float(probs[i])} for i in best]
        manifest = self.manifest
        if manifest.oos_threshold is not None and items[0]["score"] < manifest.oos_threshold:
            oos = manifest.oos_label
            items = [{"label": oos, "score": items[0]["score"]}] + [it for it in items[1:] if it["label"] != oos]
        return items[0] if top_k == 1 else items


def _bundle_threads(wanted: int) -> int:
    """The manifest's thread count was chosen on the build host: on a smaller device, use its cores."""
    cores = usable_cores()
    if wanted > cores:
        warnings.warn(f"the bundle asks for {wanted} threads and this machine has {cores} usable cores: "
                      f"using {cores} (--threads overrides)", ThreadsWarning, stacklevel=4)
        return cores
    return wanted


def select_model(manifest: Manifest, backend: str | None = None, model: str | None = None) -> ModelFile:
    candidates = [m for m in manifest.models
                  if (backend is None or m.backend == backend) and (model is None or m.file == model)]
    if not candidates:
        have = ", ".join(f"{m.file} ({m.backend})" for m in manifest.models)
        wanted = " and ".join(x for x in (f"backend {backend!r}" if backend else "",
                                          f"model {model!r}" if model else "") if x)
        raise BundleError(f"bundle has no model with {wanted}; it has {have}")
    return candidates[0]


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)
