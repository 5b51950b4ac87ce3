"""ONNX Runtime backend."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from ..errors import BackendUnavailableError, BundleError

# What to install when an execution provider is missing, so a user reads advice, not a stack trace.
PROVIDER_PACKAGES = {
    "CUDAExecutionProvider": "pip install onnxruntime-gpu (with CUDA 12 and cuDNN 9 on the machine)",
    "TensorrtExecutionProvider": "pip install onnxruntime-gpu and the TensorRT 10 libraries (pip install tensorrt)",
    "OpenVINOExecutionProvider": "pip install onnxruntime-openvino",
    "DmlExecutionProvider": "pip install onnxruntime-directml (Windows)",
    "CoreMLExecutionProvider": "the onnxruntime wheel for macOS (pip install onnxruntime on a Mac)",
    "QNNExecutionProvider": "pip install onnxruntime-qnn",
    "ROCMExecutionProvider": "pip install onnxruntime-rocm",
    "MIGraphXExecutionProvider": "pip install onnxruntime-migraphx",
}
CPU = "CPUExecutionProvider"


class ProviderFallbackWarning(RuntimeWarning):
    """A requested execution provider is not available; the session runs on CPU instead."""


def choose_providers(requested: tuple[str, ...] | None, available: list[str]) -> list[str]:
    """Keep the requested providers that are installed, warn with advice for the others, end on CPU."""
    chosen = []
    for name in dict.fromkeys(requested or (CPU,)):  # each once, in the order asked
        if name in available:
            chosen.append(name)
        else:
            advice = PROVIDER_PACKAGES.get(name, "an onnxruntime build that includes it")
            warnings.warn(f"{name} is not available in this onnxruntime; to use it: {advice}. "
                          "Falling back to CPUExecutionProvider.", ProviderFallbackWarning, stacklevel=3)
    if CPU not in chosen:
        chosen.append(CPU)
    return chosen


class OnnxBackend:
    def __init__(self, path: Path, *, threads: int | None, providers: tuple[str, ...] | None,
                 input_names: tuple[str, ...], disabled_optimizers: tuple[str, ...] = ()):
        path = Path(path)
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise BackendUnavailableError(f"onnxruntime is not installed ({exc}); pip install onnxruntime") from None
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = int(threads)
        options.inter_op_num_threads = 1  # one request's graph is sequential; threads go to its ops
        # Parse the file as ONNX protobuf, the format the bundle checks read (onnx_graph.py), never
        # as an ORT-format flatbuffer, whatever its name or first bytes.
        options.add_session_config_entry("session.load_model_format", "ONNX")
        chosen = choose_providers(providers, ort.get_available_providers())
        try:
            self.session = ort.InferenceSession(str(path), options, providers=chosen,
                                                disabled_optimizers=list(disabled_optimizers) or None)
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
            raise BundleError(f"onnxruntime cannot load {path.name}: {_first_line(exc)}") from None
        active = self.session.get_providers()
        for name in chosen:
            if name not in active:  # installed but failed to start (missing CUDA libraries, ...)
                warnings.warn(f"{name} could not start ({PROVIDER_PACKAGES.get(name, 'see onnxruntime docs')}); "
                              "running on CPUExecutionProvider.", ProviderFallbackWarning, stacklevel=3)
        model_inputs = [i.name for i in self.session.get_inputs()]
        missing = [n for n in model_inputs if n not in input_names]
        if missing:
            raise BundleError(f"{path.name} takes input(s) {missing} that the manifest does not name")
        self.input_names = tuple(model_inputs)
        outputs = self.session.get_outputs()
        if not outputs or len(outputs[0].shape or ()) != 2:
            raise BundleError(f"{path.name} does not output logits of shape [batch, labels]")
        width = outputs[0].shape[-1]
        self.output_width = width if isinstance(width, int) else None
        self.static_length = None
        self.providers = tuple(active)
        self._name = path.name

    def run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        try:
            logits = self.session.run(None, {name: feeds[name] for name in self.input_names})[0]
        except Exception as exc:  # a model inconsistent with its tokenizer or max_length (ids past the vocabulary, ...)
            shape = tuple(next(iter(feeds.values())).shape)
            raise BundleError(f"{self._name} failed on a batch of shape {shape}: {_first_line(exc)}") from None
        return np.asarray(logits, dtype=np.float32)


def _first_line(exc: Exception) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:300]
