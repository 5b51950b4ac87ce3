"""Latency of a candidate on its target: measured on the build host where the host stands for the
target (x86 profiles, `host_timing`), predicted elsewhere (ARM, wasm, GPU) by a latency model.

The model is linear in what drives a transformer's batch-1 time at these sizes,

    p50_ms = a + b * GFLOP + c * MB

GFLOP of one forward pass at REFERENCE_TOKENS tokens (benchmark/flops.py, from the exported graph's
shapes: it sees pruned heads and neurons) and MB of the model file (memory traffic of the weights),
fitted by least squares on measured points. Without device measurements a search fits it on the
host's own timings of its candidates: the ranking carries over, the milliseconds are the host's
and are labelled so. `edge-sdk latency fit` refits it from `edge-runtime bench --json` lines taken
on the real device, and reports its error (leave-one-out mean absolute percentage error).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import ConfigError, DataError

REFERENCE_TOKENS = 16  # a typical intent query with [CLS] and [SEP] (CLINC150's median is 12-14)


@dataclass(frozen=True)
class Features:
    gflop: float
    mb: float

    def row(self) -> list[float]:
        return [1.0, self.gflop, self.mb]


@dataclass(frozen=True)
class LatencyModel:
    target: str
    coefficients: tuple[float, float, float]  # ms at zero, ms per GFLOP, ms per MB
    points: int
    error: float | None  # leave-one-out mean absolute percentage error; None below 4 points
    source: str  # where the measured points came from

    def predict(self, features: Features) -> float:
        return float(sum(c * x for c, x in zip(self.coefficients, features.row(), strict=True)))

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"

    @classmethod
    def read(cls, path: Path) -> LatencyModel:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            return cls(data["target"], tuple(float(c) for c in data["coefficients"]), int(data["points"]),
                       None if data["error"] is None else float(data["error"]), str(data["source"]))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"{path} is not a latency model written by `edge-sdk latency fit`: {exc}") from None


def features_of(onnx_graph: Path, model_file: Path) -> Features:
    """GFLOP from the (fp32) ONNX graph's weight shapes, MB of the file that ships."""
    from ..benchmark.flops import flops_from_onnx

    return Features(flops_from_onnx(onnx_graph, REFERENCE_TOKENS) / 1e9, Path(model_file).stat().st_size / 1e6)


def fit(points: list[tuple[Features, float]], target: str, source: str) -> LatencyModel:
    """Least squares on (features, p50 ms) points; needs 3 or more."""
    import numpy as np

    if len(points) < 3:
        raise DataError(f"a latency model needs 3 or more measured points, got {len(points)}")
    x = np.array([f.row() for f, _ in points], dtype=np.float64)
    y = np.array([p50 for _, p50 in points], dtype=np.float64)
    coefficients = np.linalg.lstsq(x, y, rcond=None)[0]
    error = None
    if len(points) >= 4:
        misses = []
        for i in range(len(points)):
            keep = np.arange(len(points)) != i
            c = np.linalg.lstsq(x[keep], y[keep], rcond=None)[0]
            misses.append(abs(float(x[i] @ c) - y[i]) / y[i])
        error = float(np.mean(misses))
    return LatencyModel(target, tuple(float(c) for c in coefficients), len(points), error, source)


def bench_points(bench_file: Path) -> list[tuple[Features, float]]:
    """(features, p50) for each `edge-runtime bench --json` line of `bench_file`; features are read
    from the bench line's bundle (the ONNX graph shapes the build recorded, and the model file)."""
    points = []
    for number, line in enumerate(Path(bench_file).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            bundle, model, p50 = Path(row["bundle"]), row["model"], float(row["batch1"]["p50_ms"])
        except (ValueError, KeyError, TypeError) as exc:
            raise DataError(f"{bench_file} line {number}: not an `edge-runtime bench --json` result ({exc})") from None
        points.append((bundle_features(bundle, model), p50))
    return points


def bundle_features(bundle: Path, model: str) -> Features:
    """Features of one model file of a bundle: its GFLOP as the build recorded it (any backend), or
    counted from the file when it is ONNX."""
    from edge_runtime import open_bundle

    opened = open_bundle(bundle)
    entry = next((m for m in opened.manifest.models if m.file == model), None)
    if entry is None:
        raise DataError(f"{bundle} has no model {model!r}")
    mb = opened.path(model).stat().st_size / 1e6
    if "gflop" in entry.metrics:
        return Features(float(entry.metrics["gflop"]), mb)
    if entry.backend == "onnx":
        from ..benchmark.flops import flops_from_onnx

        return Features(flops_from_onnx(opened.path(model), REFERENCE_TOKENS) / 1e9, mb)
    raise DataError(f"{bundle}/{model}: no GFLOP recorded (built before edge-sdk recorded them); rebuild it")
