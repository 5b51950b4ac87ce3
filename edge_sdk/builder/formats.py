"""The model files a target ships, each made from the exported model by cached steps and validated
against PyTorch: ONNX export -> [fusion] -> ONNX Runtime quantization, or TFLite conversion with
LiteRT quantization."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge_runtime.tokenize import TextEncoder, padded_feeds

from ..data import LabelledData
from ..errors import ConfigError
from ..export.onnx import compare_logits, export_onnx, onnx_logits
from ..files import atomic_write_text
from ..profiles import ModelSpec, OnnxQuantization, TargetProfile, TFLiteQuantization
from .cache import StepCache
from .graph_choice import UNFUSED_LAYER_NORM, choose_graph
from .progress import Progress

# How close each precision must stay to PyTorch on the validation texts: (max abs diff, argmax agreement).
# int8 has no abs bound: its budget is the accuracy guard on the full test split.
VALIDATION_BOUNDS = {"fp32": (1e-3, 1.0), "fp16": (0.1, 0.98), "int8": (float("inf"), 0.9)}


@dataclass(frozen=True)
class Exportable:
    """The model every target's files are made from, and its PyTorch logits on validation texts."""

    model_dir: Path  # a cached model folder; its name keys the export steps
    model: Any  # loaded with exportable attention, eval mode
    input_names: tuple[str, ...]  # the inputs its forward takes
    batches: list[dict[str, np.ndarray]]  # validation feeds
    logits: np.ndarray  # PyTorch logits on those feeds, computed before any export touched the model


@dataclass(frozen=True)
class Calibration:
    """Seeded training texts for static quantization, tokenized only when a step is not cached."""

    data: LabelledData
    encoder: TextEncoder
    input_names: tuple[str, ...]
    seed: int

    def key(self, n: int) -> str:
        return f"{self.data.fingerprint}:{self.seed}:{n}"

    def batches(self, n: int) -> list[dict[str, np.ndarray]]:
        """Batches of 8 of `n` seeded training texts, all padded to one width (the longest text):
        onnxruntime's histogram calibrators stack activations across batches."""
        rng = np.random.default_rng(self.seed)
        picks = rng.choice(len(self.data.train), size=min(n, len(self.data.train)), replace=False)
        ids = self.encoder.ids([self.data.train.texts[i] for i in sorted(picks)])
        width = max(len(row) for row in ids)
        return [padded_feeds(ids[i:i + 8], self.input_names, self.encoder.pad_id, width)
                for i in range(0, len(ids), 8)]


def feeds_in_batches(encoder: TextEncoder, texts: list[str], size: int,
                     input_names: tuple[str, ...]) -> list[dict[str, np.ndarray]]:
    ids = encoder.ids(texts)
    return [encoder.feeds(ids[i:i + size], input_names) for i in range(0, len(ids), size)]


def make_model_file(spec: ModelSpec, profile: TargetProfile, source: Exportable, calibration: Calibration,
                    cache: StepCache, progress: Progress) -> tuple[Path, dict]:
    """The file `spec` describes, validated against PyTorch, and what the build learnt making it."""
    atol, agreement = VALIDATION_BOUNDS.get(spec.precision, VALIDATION_BOUNDS["int8"])
    fp32 = export_graph(source, profile.opset, cache)
    flops = gflop(fp32)
    counted = {"gflop": flops} if flops is not None else {}
    if spec.format == "tflite":
        length = spec.sequence_length or profile.max_length
        if length < profile.max_length:
            # The bundle's fixtures hold one token-id list, cut at max_length, for every model.
            raise ConfigError(f"{profile.name}: {spec.file} has sequence_length {length} < max_length "
                              f"{profile.max_length}; shorter texts use shorter buckets anyway, so set "
                              f"sequence_length = max_length (or lower max_length)")
        path = convert_tflite(source, spec.quantization, length, calibration, cache)
        from .measure import tflite_logits

        got, fits = tflite_logits(path, source.batches, length, source.input_names)
        check = compare_logits(f"{spec.file} (TFLite {spec.precision})", got, source.logits[fits], atol=atol,
                               min_argmax_agreement=agreement)
        info = {"validation": check.as_dict(), **counted}
        if spec.quantization.integer_program:
            from ..export.tflite import integer_summary

            info["integer"] = integer_summary(path)
        return path, info
    if spec.quantization.method == "qat":  # QDQ from the trained program: nothing to fuse or choose
        from ..export.qdq_onnx import integer_summary

        path = qdq_graph(source, profile.opset, cache)
        check = compare_logits(f"{spec.file} (QDQ from QAT)", onnx_logits(path, source.batches), source.logits,
                               atol=atol, min_argmax_agreement=agreement)
        return path, {"validation": check.as_dict(), "integer": integer_summary(path), **counted}
    info: dict[str, Any] = dict(counted)
    candidates = graph_variants(spec, profile, source, fp32, calibration, cache, info)
    files = {path: name for name, (path, _) in reversed(candidates.items())}  # each file once, by its first name
    checks = {path: compare_logits(f"{spec.file} ({name} graph)", onnx_logits(path, source.batches), source.logits,
                                   atol=atol, min_argmax_agreement=agreement)
              for path, name in files.items()}
    kept, choice = choose_graph(candidates, source.batches, source.input_names)
    if choice:
        info["graph_choice"] = choice
        progress.note("graph variants, batch-1 p50: "
                      + ", ".join(f"{n} {t:.2f} ms" for n, t in choice["p50_ms"].items()) + f" -> {kept}")
    path, disabled = candidates[kept]
    info["validation"] = checks[path].as_dict()
    if disabled:
        info["disabled_optimizers"] = list(disabled)
    return path, info


def graph_variants(spec: ModelSpec, profile: TargetProfile, source: Exportable, fp32: Path, calibration: Calibration,
                   cache: StepCache, info: dict) -> dict[str, tuple[Path, tuple[str, ...]]]:
    """The quantized files a build may ship for `spec`, each with the onnxruntime optimizers its
    session disables (graph_choice.py says which ship); notes the fusion in `info`."""
    plain = quantize_graph(fp32, spec.quantization, calibration, cache)
    candidates: dict[str, tuple[Path, tuple[str, ...]]] = {"plain": (plain, ())}
    # Weight-only quantization finds its weights in MatMul and Gather nodes; fused Attention and
    # EmbedLayerNormalization hold them inside, and the "int4" file stayed FP32 (54 MB, 3 layers).
    if spec.quantization.method == "weight-only":
        return candidates
    # LayerNorm apart only where this host times the target: onnxruntime's kernels differ by CPU.
    apart = profile.host_timing
    if apart:
        candidates["plain, LayerNorm unfused"] = (plain, UNFUSED_LAYER_NORM)
    if not profile.graph_optimization:
        return candidates
    shape = attention_shape(source.model)
    if not shape:
        info["fused_operators"] = "skipped: layers with different head counts (pruned)"
        return candidates
    fused, info["fused_operators"] = fuse_graph(fp32, shape, cache)
    candidates["fused"] = (quantize_graph(fused, spec.quantization, calibration, cache), ())
    if apart:
        unfused, _ = fuse_graph(fp32, shape, cache, skip_layer_norm=False)
        candidates["fused, LayerNorm unfused"] = (quantize_graph(unfused, spec.quantization, calibration, cache),
                                                  UNFUSED_LAYER_NORM)
    return candidates


def gflop(graph: Path) -> float | None:
    """GFLOP of one forward pass at the latency model's reference length (None: shapes not recognised,
    e.g. factorized FFNs); a latency model refit on a device reads it from the manifest."""
    from ..benchmark.flops import flops_from_onnx
    from ..search.latency import REFERENCE_TOKENS

    try:
        return flops_from_onnx(graph, REFERENCE_TOKENS) / 1e9
    except ValueError:
        return None


def export_graph(source: Exportable, opset: int, cache: StepCache) -> Path:
    entry = cache.get_or_make("onnx", {"model": source.model_dir.name, "opset": opset},
                              lambda out: export_onnx(source.model, out / "model.onnx", opset=opset,
                                                      input_names=source.input_names))
    path = entry / "model.onnx"
    compare_logits(f"ONNX export (opset {opset})", onnx_logits(path, source.batches), source.logits,
                   atol=VALIDATION_BOUNDS["fp32"][0], min_argmax_agreement=VALIDATION_BOUNDS["fp32"][1])
    return path


def attention_shape(model) -> tuple[int, int] | None:
    """(heads, width of the heads) that every attention layer of `model` has, or None when the layers
    differ (heads pruned per layer): onnxruntime's fusion reads one head count for the whole graph
    where the export reshapes with -1, and a fused layer with the wrong count fails or miscomputes."""
    from ..errors import PruneError
    from ..prune.arch import encoder_layers, head_size, names_for, num_heads

    config = model.config
    try:
        names = names_for(model)
        shapes = {(num_heads(layer, names), num_heads(layer, names) * head_size(layer, names))
                  for layer in encoder_layers(model, names)}
    except PruneError:  # a family without a row in prune.arch, or factorized projections: as configured
        return config.num_attention_heads, config.hidden_size
    return shapes.pop() if len(shapes) == 1 else None


def fuse_graph(fp32: Path, shape: tuple[int, int], cache: StepCache, skip_layer_norm: bool = True
               ) -> tuple[Path, dict]:
    from ..optimize.fuse import fuse_transformer

    heads, width = shape

    def make(out: Path) -> None:
        operators = fuse_transformer(fp32, out / "model.onnx", num_heads=heads, hidden_size=width,
                                     skip_layer_norm=skip_layer_norm)
        atomic_write_text(out / "fusion.json", json.dumps(operators))

    key = {"graph": fp32.parent.name, "heads": heads, "width": width}
    entry = cache.get_or_make("fused", key if skip_layer_norm else {**key, "skip_layer_norm": False}, make)
    return entry / "model.onnx", json.loads((entry / "fusion.json").read_text())


def quantize_graph(graph: Path, spec: OnnxQuantization, calibration: Calibration, cache: StepCache) -> Path:
    from ..optimize.quantize_onnx import quantize

    static = spec.method == "static"
    if spec.method == "qat":  # a programming error: make_model_file sends qat elsewhere
        raise ValueError("qat ONNX models come from the trained program (qdq_graph), not from a float graph")
    inputs = {"graph": graph.parent.name, "quantization": dataclasses.asdict(spec),
              "calibration": calibration.key(spec.calibration_samples) if static else None}
    return cache.get_or_make(
        "quantized", inputs,
        lambda out: quantize(graph, out / "model.onnx", spec,
                             calibration.batches(spec.calibration_samples) if static else None),
    ) / "model.onnx"


def qdq_graph(source: Exportable, opset: int, cache: StepCache) -> Path:
    """The QAT step's int8 program as a QDQ ONNX model."""
    from ..export.qdq_onnx import export_qdq_onnx
    from ..qat.program import load_program

    program = trained_program(source)
    return cache.get_or_make(
        "qdq", {"program": source.model_dir.name, "opset": opset},
        lambda out: export_qdq_onnx(load_program(program), out / "model.onnx", opset=opset,
                                    input_names=source.input_names,
                                    max_length=int(getattr(source.model.config, "max_position_embeddings", 512))),
    ) / "model.onnx"


def trained_program(source: Exportable) -> Path:
    from ..qat.program import PROGRAM

    path = source.model_dir / PROGRAM
    if not path.is_file():  # build() checks the recipe first; this is a model folder made elsewhere
        raise ConfigError(f"{source.model_dir} has no {PROGRAM}: int8 scales from training need a recipe whose "
                          "last step is qat (e.g. --recipe qat)")
    return path


def int8_program(source: Exportable, spec: TFLiteQuantization, calibration: Calibration):
    """The int8 program a full-integer file is converted from: trained (qat) or calibrated (full-int8)."""
    from ..qat.program import calibrate, load_program

    if spec.method == "qat":
        return load_program(trained_program(source)).module()
    return calibrate(source.model, calibration.batches(spec.calibration_samples), source.input_names)


def convert_tflite(source: Exportable, spec: TFLiteQuantization, length: int, calibration: Calibration,
                cache: StepCache) -> Path:
    from ..export.tflite import export_int8_tflite, export_tflite, length_buckets

    calibrated = spec.method in ("static", "full-int8")
    inputs = {"model": source.model_dir.name, "length": length, "buckets": list(length_buckets(length)),
              "quantization": dataclasses.asdict(spec),
              "calibration": calibration.key(spec.calibration_samples) if calibrated else None}

    def make(out: Path) -> None:
        if spec.integer_program:
            export_int8_tflite(int8_program(source, spec, calibration), out / "model.tflite",
                               sequence_length=length, input_names=source.input_names,
                               num_labels=source.model.config.num_labels)
            return
        export_tflite(source.model, out / "model.tflite", sequence_length=length, precision=spec.converter_precision,
                      calibration_batches=calibration.batches(spec.calibration_samples) if calibrated else None,
                      input_names=source.input_names)

    return cache.get_or_make("tflite", inputs, make) / "model.tflite"
