"""Hardware target profiles: one TOML file per target in `targets/`, read into frozen dataclasses.

A profile says what a target needs (formats, opset, quantization, execution, budgets); the
reason for each value sits beside it in the TOML file. Adding a target is adding a file.
Each model file's quantization is typed by its format: ONNX Runtime's settings for ONNX models,
LiteRT's for TFLite models, so a setting a format cannot honour is refused when the file loads.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal

from .config import available, check, from_table, read_named
from .errors import ConfigError

INT8 = Literal["int8", "uint8"]


@dataclass(frozen=True)
class OnnxQuantization:
    """onnxruntime.quantization settings for an ONNX model file."""

    # none | dynamic | static (onnxruntime QDQ, calibrated) | fp16 |
    # qat: QDQ int8 with the scales a recipe's qat step trained, every MatMul/Gemm quantized (no float
    #      islands; export/qdq_onnx.py) |
    # weight-only: block-quantized MatMul weights (MatMulNBits) and embedding table
    #      (GatherBlockQuantized), activations float: the smallest file, not the fastest.
    method: Literal["none", "dynamic", "static", "fp16", "qat", "weight-only"] = "none"
    weight_type: INT8 = "int8"
    activation_type: INT8 = "uint8"  # static only
    per_channel: bool = False
    reduce_range: bool = False
    symmetric_activations: bool = False
    calibration: Literal["minmax", "entropy", "percentile"] = "minmax"  # static only
    calibration_samples: int = 256
    op_types: tuple[str, ...] = ()  # empty: the quantizer's default set
    exclude_nodes: tuple[str, ...] = ()  # regexes on node names kept in float (sensitive layers)
    keep_io_types: bool = True  # fp16: keep float32 inputs/outputs
    bits: Literal[4, 8] = 4  # weight-only: bits per weight
    # weight-only: weights sharing one scale and zero point (along the input axis). CLINC150 MiniLM,
    # 4 bits + embeddings, 600 test texts: 32 -> 15.5 MB, 64 -> 13.9 MB (no accuracy change), 128 ->
    # 13.1 MB (-1.0 point); the int8 dynamic file is 23.2 MB.
    block_size: int = 64
    # weight-only: MatMulNBits' accuracy_level; 4 quantizes activations to int8 inside the kernel and
    # uses int8 dot products (the fast x86/ARM path), 0 leaves the choice to onnxruntime (fp32 math).
    accuracy_level: Literal[0, 1, 2, 3, 4] = 4
    embeddings: bool = True  # weight-only: also the embedding tables (GatherBlockQuantized)

    def __post_init__(self):
        check(self.calibration_samples >= 1, f"calibration_samples must be at least 1, got {self.calibration_samples}")
        check(self.block_size >= 16 and self.block_size & (self.block_size - 1) == 0,
              f"block_size must be a power of 2 and at least 16 (MatMulNBits), got {self.block_size}")
        check(not (self.method == "weight-only" and self.bits == 8 and self.embeddings),
              "weight-only bits = 8 needs embeddings = false: onnxruntime block-quantizes Gather to 4 bits only")

    @property
    def precision(self) -> str:
        """What a model file quantized this way holds (ModelSpec.precision)."""
        return {"none": "fp32", "fp16": "fp16"}.get(
            self.method, f"int{self.bits}" if self.method == "weight-only" else "int8")


@dataclass(frozen=True)
class TFLiteQuantization:
    """LiteRT settings for a .tflite model file."""

    # none: fp32; fp16: fp16 weights; dynamic: int8 weights, activations quantized at run time;
    # static: int8 weights and calibrated int8 activations where they keep accuracy (export/tflite.py);
    # full-int8: full integer (int8 weights and activations, int8 output) with post-training
    #   calibrated scales (qat/program.py); qat: the same with the scales a recipe's qat step trained.
    method: Literal["none", "fp16", "dynamic", "static", "full-int8", "qat"] = "none"
    calibration_samples: int = 256  # static, full-int8: training texts whose activation ranges are recorded

    def __post_init__(self):
        check(self.calibration_samples >= 1, f"calibration_samples must be at least 1, got {self.calibration_samples}")

    @property
    def precision(self) -> str:
        """What a model file quantized this way holds (ModelSpec.precision)."""
        return {"none": "fp32", "fp16": "fp16"}.get(self.method, "int8")

    @property
    def converter_precision(self) -> str:
        """The name export_tflite takes (methods converted by ai-edge-quantizer)."""
        return {"none": "fp32", "fp16": "fp16", "dynamic": "dynamic-int8", "static": "int8"}[self.method]

    @property
    def integer_program(self) -> bool:
        """Converted from the int8 program (qat/program.py) rather than quantized after conversion."""
        return self.method in ("full-int8", "qat")


QUANTIZATION_TYPES = {"onnx": OnnxQuantization, "tflite": TFLiteQuantization}


@dataclass(frozen=True)
class ModelSpec:
    """One model file the target ships."""

    file: str
    format: Literal["onnx", "tflite"]
    precision: Literal["fp32", "fp16", "int8", "int4"]
    quantization: OnnxQuantization | TFLiteQuantization
    tolerance: float = 1e-4  # parity tolerance recorded in the manifest for device replays
    sequence_length: int | None = None  # static length (TFLite); None = dynamic axes

    def __post_init__(self):
        check(isinstance(self.quantization, QUANTIZATION_TYPES[self.format]),
              f"{self.file}: a {self.format} model takes {QUANTIZATION_TYPES[self.format].__name__}")
        check(self.tolerance > 0, f"{self.file}: tolerance must be positive, got {self.tolerance}")
        holds = self.quantization.precision
        check(holds == self.precision or (holds == "fp32" and self.precision == "int8"),  # int8 left unquantized
              f"{self.file}: precision {self.precision!r}, but quantization method "
              f"{self.quantization.method!r} makes {holds}")


@dataclass(frozen=True)
class TargetProfile:
    name: str
    why: str
    models: tuple[ModelSpec, ...]
    opset: int = 17
    graph_optimization: bool = True
    max_length: int = 128
    providers: tuple[str, ...] = ("CPUExecutionProvider",)
    threads: int | None = None
    # True where the build host's CPU stands for the target's (x86 servers): searches time candidates
    # here; elsewhere (ARM, wasm, GPU) they predict latency with the target's model (search/latency.py).
    host_timing: bool = False
    max_accuracy_drop: float = 1.0  # points
    max_size_mb: float | None = None
    max_latency_ms: float | None = None

    def __post_init__(self):
        check(bool(self.models), "a target ships at least one model ([[models]])")
        check(self.max_length >= 2, f"max_length must be at least 2, got {self.max_length}")
        check(self.max_accuracy_drop >= 0, f"max_accuracy_drop must be >= 0, got {self.max_accuracy_drop}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def with_quantization(self, fmt: str, quantization) -> TargetProfile:
        """The profile with `quantization` replacing the scheme of every int8 model of format `fmt`
        (a recipe's override). A scheme of another precision (int4 weights) retags the file too:
        model.int8.onnx becomes model.int4.onnx, so a bundle's file names say what they hold."""
        models = tuple(_requantized(m, quantization) if m.precision == "int8" and m.format == fmt else m
                       for m in self.models)
        return dataclasses.replace(self, models=models)


def _requantized(spec: ModelSpec, quantization) -> ModelSpec:
    precision = quantization.precision if quantization.precision != "fp32" else spec.precision
    file = spec.file.replace(f".{spec.precision}.", f".{precision}.")
    return dataclasses.replace(spec, quantization=quantization, precision=precision, file=file)


def _targets_dir():
    return resources.files("edge_sdk.targets")


def available_targets() -> list[str]:
    return available(_targets_dir())


def load_target(name_or_path: str) -> TargetProfile:
    """A shipped target by name, or a profile file of the user's by path."""
    return parse_profile(*read_named(name_or_path, _targets_dir(), "target"))


def parse_profile(data: dict[str, Any], where: str = "profile") -> TargetProfile:
    data = dict(data)
    execution = data.pop("execution", {})
    budgets = data.pop("budgets", {})
    entries = data.pop("models", None)
    if not isinstance(entries, list):
        raise ConfigError(f"{where}: needs one or more [[models]] tables")
    models = tuple(_model_spec(entry, f"{where} [[models]] {i + 1}") for i, entry in enumerate(entries))
    for table, name in ((execution, "execution"), (budgets, "budgets")):
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: [{name}] must be a table")
    return from_table(TargetProfile, {**data, **execution, **budgets}, where, models=models)


def _model_spec(entry: Any, where: str) -> ModelSpec:
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: expected a table")
    entry = dict(entry)
    fmt = entry.get("format")
    if fmt not in QUANTIZATION_TYPES:
        raise ConfigError(f"{where}: format {fmt!r} is not one of {', '.join(QUANTIZATION_TYPES)}")
    kind = QUANTIZATION_TYPES[fmt]
    name = entry.get("file", "?")
    quantization = from_table(kind, entry.pop("quantization", {}),
                              f"{where} ({name}) [quantization], {fmt} models take {kind.__name__}")
    return from_table(ModelSpec, entry, f"{where} ({name})", quantization=quantization)
