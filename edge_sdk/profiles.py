"""Hardware target profiles: one TOML file per target in `targets/`, read into frozen dataclasses.

A profile says what a target needs (formats, opset, quantization, execution, budgets); the
reason for each value sits beside it in the TOML file. Adding a target is adding a file.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

QUANT_METHODS = ("none", "dynamic", "static", "fp16")
CALIBRATIONS = ("minmax", "entropy", "percentile")
FORMATS = ("onnx", "tflite")


class ProfileError(ValueError):
    """A target name that does not exist or a profile file that does not parse."""


@dataclass(frozen=True)
class Quantization:
    method: str = "none"  # none | dynamic | static | fp16
    weight_type: str = "int8"  # int8 | uint8
    activation_type: str = "uint8"  # static only: uint8 | int8
    per_channel: bool = False
    reduce_range: bool = False
    symmetric_activations: bool = False
    calibration: str = "minmax"  # static only: minmax | entropy | percentile
    calibration_samples: int = 256
    op_types: tuple[str, ...] = ()  # empty: the quantizer's default set
    exclude_nodes: tuple[str, ...] = ()  # regexes on node names kept in float (sensitive layers)
    keep_io_types: bool = True  # fp16: keep float32 inputs/outputs

    def __post_init__(self):
        if self.method not in QUANT_METHODS:
            raise ProfileError(f"quantization method {self.method!r} is not one of {', '.join(QUANT_METHODS)}")
        if self.calibration not in CALIBRATIONS:
            raise ProfileError(f"calibration {self.calibration!r} is not one of {', '.join(CALIBRATIONS)}")
        for name in ("weight_type", "activation_type"):
            if getattr(self, name) not in ("int8", "uint8"):
                raise ProfileError(f"{name} must be int8 or uint8, not {getattr(self, name)!r}")


@dataclass(frozen=True)
class ModelSpec:
    """One model file the target ships."""

    file: str
    format: str  # onnx | tflite
    precision: str  # fp32 | fp16 | int8
    quantization: Quantization = field(default_factory=Quantization)
    tolerance: float = 1e-4  # parity tolerance recorded in the manifest for device replays
    sequence_length: int | None = None  # static length (TFLite); None = dynamic axes

    def __post_init__(self):
        if self.format not in FORMATS:
            raise ProfileError(f"model {self.file}: format {self.format!r} is not one of {', '.join(FORMATS)}")


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
    max_accuracy_drop: float = 1.0  # points
    max_size_mb: float | None = None
    max_latency_ms: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def with_quantization(self, **overrides: Any) -> "TargetProfile":
        """The profile with quantization fields replaced in every int8 model (a recipe's override)."""
        models = tuple(
            dataclasses.replace(m, quantization=dataclasses.replace(m.quantization, **overrides))
            if m.precision == "int8" else m
            for m in self.models
        )
        return dataclasses.replace(self, models=models)


def _targets_dir():
    return resources.files("edge_sdk.targets")


def available_targets() -> list[str]:
    return sorted(p.name[:-5] for p in _targets_dir().iterdir() if p.name.endswith(".toml"))


def load_target(name_or_path: str) -> TargetProfile:
    """A shipped target by name, or a profile file of the user's by path."""
    path = Path(name_or_path)
    if name_or_path.endswith(".toml") and path.is_file():
        text, where = path.read_text(encoding="utf-8"), str(path)
    else:
        entry = _targets_dir() / f"{name_or_path}.toml"
        if not entry.is_file():
            raise ProfileError(f"unknown target {name_or_path!r}; known targets: {', '.join(available_targets())} "
                               "(or give a path to a .toml profile)")
        text, where = entry.read_text(encoding="utf-8"), f"targets/{name_or_path}.toml"
    try:
        return parse_profile(tomllib.loads(text))
    except (tomllib.TOMLDecodeError, TypeError, KeyError) as exc:
        raise ProfileError(f"{where}: {exc}") from None


def parse_profile(data: dict[str, Any]) -> TargetProfile:
    data = dict(data)
    execution = data.pop("execution", {})
    budgets = data.pop("budgets", {})
    models = []
    for entry in data.pop("models"):
        entry = dict(entry)
        quant = dict(entry.pop("quantization", {}))
        for key in ("op_types", "exclude_nodes"):
            if key in quant:
                quant[key] = tuple(quant[key])
        models.append(ModelSpec(quantization=Quantization(**quant), **entry))
    return TargetProfile(
        models=tuple(models),
        providers=tuple(execution.get("providers", ("CPUExecutionProvider",))),
        threads=execution.get("threads"),
        **budgets,
        **data,
    )
