"""LiteRT (TFLite) backend: numpy + ai-edge-litert only, no torch, no tensorflow.

Models from edge_sdk.export.tflite have one signature ("serving_default") whose inputs are named
input_ids / attention_mask / token_type_ids, int32, static shape [1, L], and one float32 output
[1, num_labels]. A LiteRT interpreter is not thread-safe and a static model cannot be resized,
so this backend pads each row to L and runs rows one by one on an interpreter borrowed from a pool.
"""

from __future__ import annotations

import os
import threading

import numpy as np

from ..errors import BackendUnavailableError, BundleError

INSTALL = "pip install 'edge-sdk-runtime[tflite]'"


class TFLiteBackend:
    def __init__(self, model_path: str, *, threads: int | None, input_names: tuple[str, ...],
                 sequence_length: int):
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as exc:
            raise BackendUnavailableError(f"this bundle has a TFLite model and ai-edge-litert is not installed "
                                          f"({exc}); {INSTALL}") from None
        self._Interpreter = Interpreter
        self._path = str(model_path)
        # LiteRT's own default is 1 thread; None means "let the runtime choose" as with onnxruntime.
        self._threads = int(threads) if threads else (os.cpu_count() or 1)
        self._lock = threading.Lock()
        self._idle: list = []  # (interpreter, signature runner) pairs not in use
        first = self._new()
        details = first[1].get_input_details()
        missing = [n for n in details if n not in input_names]
        if missing:
            raise BundleError(f"{os.path.basename(self._path)} takes input(s) {missing} that the manifest does not name")
        # Order as the manifest lists them (the signature itself is keyed by name, order-free).
        self.input_names = tuple(n for n in input_names if n in details)
        self._dtypes = {n: details[n]["dtype"] for n in self.input_names}
        shapes = {n: [int(x) for x in details[n]["shape_signature"]] for n in self.input_names}
        self._batch1 = all(s[0] == 1 for s in shapes.values())
        lengths = {s[1] for s in shapes.values()}
        if len(lengths) != 1:
            raise BundleError(f"{os.path.basename(self._path)} inputs disagree on sequence length: {shapes}")
        length = lengths.pop()
        self.static_length = None if length < 0 else length
        if self.static_length is not None and sequence_length and sequence_length > self.static_length:
            # The tokenizer would produce rows the static graph cannot take.
            raise BundleError(f"manifest says sequence length {sequence_length} but {os.path.basename(self._path)} "
                              f"is built for {self.static_length}")
        outputs = list(first[1].get_output_details().values())
        if len(outputs) != 1:
            raise BundleError(f"{os.path.basename(self._path)} has {len(outputs)} outputs; expected logits only")
        self.output_width = int(outputs[0]["shape"][-1])
        self._idle.append(first)

    def _new(self):
        try:
            interpreter = self._Interpreter(model_path=self._path, num_threads=self._threads)
            signatures = interpreter.get_signature_list()
            if len(signatures) != 1:
                raise ValueError(f"expected one signature, found {sorted(signatures)}")
            return interpreter, interpreter.get_signature_runner(next(iter(signatures)))
        except (ValueError, RuntimeError) as exc:
            raise BundleError(f"LiteRT cannot load {os.path.basename(self._path)}: {str(exc).splitlines()[0]}") from None

    def _borrow(self):
        with self._lock:
            if self._idle:
                return self._idle.pop()
        return self._new()  # one more interpreter only when every existing one is busy

    def run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        batch, length = np.asarray(feeds[self.input_names[0]]).shape
        target = self.static_length or length
        if length > target:
            raise ValueError(f"sequence length {length} exceeds the model's static length {target}")
        padded = {}
        for name in self.input_names:
            array = np.zeros((batch, target), dtype=self._dtypes[name])  # pad id, mask and type are all 0
            array[:, :length] = feeds[name]
            padded[name] = array
        pair = self._borrow()
        try:
            runner = pair[1]
            if self._batch1:
                rows = [next(iter(runner(**{n: a[i:i + 1] for n, a in padded.items()}).values()))
                        for i in range(batch)]
                logits = np.concatenate(rows) if rows else np.zeros((0, self.output_width), np.float32)
            else:  # a dynamic-batch model: the runner resizes its inputs to the feed
                logits = next(iter(runner(**padded).values()))
        finally:
            with self._lock:
                self._idle.append(pair)
        return np.asarray(logits, dtype=np.float32).reshape(batch, self.output_width)
