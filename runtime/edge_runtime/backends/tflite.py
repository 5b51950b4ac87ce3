"""LiteRT (TFLite) backend: numpy + ai-edge-litert only, no torch, no tensorflow.

Models from edge_sdk.export.tflite have one signature per length bucket ("seq_16", "seq_32", ...)
whose inputs are named input_ids / attention_mask / token_type_ids, int32, static shape [1, L], and
one float32 output [1, num_labels]; the weights are shared by all of them. Each row of a batch is
cut to its real length (from the attention mask), padded with 0 to the smallest bucket that holds
it and run alone, so a text gets the same logits whatever batch it is in. A LiteRT interpreter is
not thread-safe, so concurrent callers each borrow one from a pool. The pool is bounded
(Limits.interpreters: as many as the cores can run at once): past it, callers wait for an idle
interpreter instead of creating another (32 threads once made 24 interpreters, 1.5 GB). A
full-integer model's output is int8 with a scale and zero point (per signature); it is dequantized
to float32 logits here.
"""

from __future__ import annotations

import os
import threading

import numpy as np

from ..errors import BackendUnavailableError, BundleError
from ..limits import DEFAULT_LIMITS, Limits, usable_cores

INSTALL = "pip install 'edge-sdk-runtime[tflite]'"


def _interpreter_class():
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError as exc:
        raise BackendUnavailableError(f"this bundle's model is TFLite and ai-edge-litert is not installed "
                                      f"({exc}): {INSTALL}") from None
    return Interpreter


class TFLiteBackend:
    def __init__(self, model_path: str, *, threads: int | None, input_names: tuple[str, ...],
                 sequence_length: int | None, limits: Limits | None = None):
        self._Interpreter = _interpreter_class()
        self._path = str(model_path)
        self._name = os.path.basename(self._path)
        # LiteRT's own default is 1 thread; None means "let the runtime choose", as with onnxruntime.
        self.threads = int(threads) if threads else usable_cores()
        self.max_interpreters = (limits or DEFAULT_LIMITS).interpreters(self.threads)
        self._available = threading.Condition()
        self._idle: list = []  # interpreters not in use, each as {signature: runner}
        self.interpreters = 1  # created so far, never more than max_interpreters
        first = self._new()
        self._buckets: dict[int, str] = {}  # static length -> signature; -1: a dynamic-length signature
        self._dequantize: dict[str, tuple[float, int]] = {}  # signature -> (scale, zero point) of an integer output
        names: set[str] = set()
        for key, runner in first.items():
            details = runner.get_input_details()
            missing = [n for n in details if n not in input_names]
            if missing:
                raise BundleError(f"{self._name} takes input(s) {missing} that the manifest does not name")
            shapes = {n: [int(x) for x in d["shape_signature"]] for n, d in details.items()}
            if any(len(s) != 2 or s[0] != 1 for s in shapes.values()):
                raise BundleError(f"{self._name} signature {key!r} has input shapes {shapes}; expected [1, length]")
            lengths = {s[1] for s in shapes.values()}
            if len(lengths) != 1:
                raise BundleError(f"{self._name} signature {key!r} inputs disagree on sequence length: {shapes}")
            length = lengths.pop()
            if length in self._buckets:
                raise BundleError(f"{self._name} has two signatures of length {length}")
            self._buckets[length] = key
            if names and set(details) != names:
                raise BundleError(f"{self._name} signatures take different inputs")
            names = set(details)
            outputs = list(runner.get_output_details().values())
            if len(outputs) != 1:
                raise BundleError(f"{self._name} signature {key!r} has {len(outputs)} outputs; expected logits only")
            self.output_width = int(outputs[0]["shape"][-1])
            if np.issubdtype(outputs[0]["dtype"], np.integer):
                scale, zero_point = outputs[0]["quantization"]
                if not scale:
                    raise BundleError(f"{self._name} signature {key!r} has an integer output without a scale")
                self._dequantize[key] = (float(scale), int(zero_point))
        # Order as the manifest lists them (a signature is keyed by name, order-free).
        self.input_names = tuple(n for n in input_names if n in names)
        details = first[self._buckets[max(self._buckets)]].get_input_details()
        self._dtypes = {n: details[n]["dtype"] for n in self.input_names}
        self._lengths = sorted(b for b in self._buckets if b > 0)
        dynamic = -1 in self._buckets
        self.static_length = None if dynamic or not self._lengths else self._lengths[-1]
        if self.static_length is not None and sequence_length and sequence_length > self.static_length:
            # The tokenizer would produce rows the static graph cannot take, or the manifest is stale.
            raise BundleError(f"manifest says sequence length {sequence_length} but {self._name} "
                              f"is built for at most {self.static_length}")
        self._idle.append(first)

    @property
    def buckets(self) -> tuple[int, ...]:
        """The static lengths this model was compiled for, shortest first."""
        return tuple(self._lengths)

    def _new(self) -> dict:
        try:
            interpreter = self._Interpreter(model_path=self._path, num_threads=self.threads)
            signatures = sorted(interpreter.get_signature_list())
            if not signatures:
                raise ValueError("it has no signature")
            return {key: interpreter.get_signature_runner(key) for key in signatures}
        except (ValueError, RuntimeError) as exc:
            raise BundleError(f"LiteRT cannot load {self._name}: {str(exc).splitlines()[0]}") from None

    def _borrow(self) -> dict:
        with self._available:
            while not self._idle and self.interpreters >= self.max_interpreters:
                self._available.wait()
            if self._idle:
                return self._idle.pop()
            self.interpreters += 1  # one more only when every existing one is busy and the cap allows
        try:
            return self._new()
        except BaseException:
            with self._available:
                self.interpreters -= 1
                self._available.notify()
            raise

    def _give_back(self, runners: dict) -> None:
        with self._available:
            self._idle.append(runners)
            self._available.notify()

    def _signature_for(self, length: int) -> tuple[str, int]:
        for bucket in self._lengths:
            if bucket >= length:
                return self._buckets[bucket], bucket
        if -1 in self._buckets:
            return self._buckets[-1], length
        # Pipeline never gets here (it truncates at the static length); a direct caller of run() can.
        raise ValueError(f"sequence length {length} exceeds the model's static length {self.static_length}")

    def run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        arrays = {name: np.asarray(feeds[name]) for name in self.input_names}
        batch, width = arrays[self.input_names[0]].shape
        mask = arrays.get("attention_mask")
        if mask is not None:  # real length: up to the last unmasked token (padding is on the right)
            lengths = [int(np.flatnonzero(row)[-1]) + 1 if row.any() else 1 for row in mask]
        else:
            lengths = [width] * batch
        rows = []
        runners = self._borrow()
        try:
            for i, length in enumerate(lengths):
                key, bucket = self._signature_for(length)
                row = {}
                for name, array in arrays.items():
                    padded = np.zeros((1, bucket), dtype=self._dtypes[name])  # pad id, mask and type are all 0
                    padded[0, :length] = array[i, :length]
                    row[name] = padded
                try:
                    out = np.asarray(next(iter(runners[key](**row).values()))).reshape(-1)
                except (ValueError, RuntimeError) as exc:  # e.g. ids past the vocabulary
                    raise BundleError(f"{self._name} failed on a row of {length} tokens: "
                                      f"{(str(exc).splitlines() or [type(exc).__name__])[0][:300]}") from None
                if key in self._dequantize:
                    scale, zero_point = self._dequantize[key]
                    out = (out.astype(np.float32) - zero_point) * scale
                rows.append(out.astype(np.float32))
        finally:
            self._give_back(runners)
        if not rows:
            return np.zeros((0, self.output_width), np.float32)
        return np.stack(rows)
