"""One candidate of a search, measured: its recipe's model steps (cached), the target's first model
file made and validated as a build makes it, then accuracy on the validation split (never test)
through edge_runtime at batch 1, batch-1 p50 (measured here or predicted), and the file's size."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from edge_runtime.manifest import TOKENIZER_FILE, ModelFile

from ..builder.formats import Calibration, make_model_file
from ..builder.run import REFERENCE_LENGTH, load_exportable, with_recipe
from ..builder.steps import StepContext, run_steps
from ..profiles import TargetProfile
from ..recipes import Recipe
from .latency import Features, LatencyModel

VALIDATION_TEXTS = 256  # validation texts the exported file is checked against PyTorch on (as a build does)


@dataclass(frozen=True)
class Measured:
    accuracy: float  # validation split, the shipped file through edge_runtime
    p50_ms: float
    measured_p50_ms: float  # on this host, 1 thread (the prediction's input where the host is not the target)
    size_mb: float
    features: Features | None
    model_dir: str  # the cached model folder the file was made from

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def evaluate(recipe: Recipe, profile: TargetProfile, teacher_dir: Path, context: StepContext, work: Path,
             latency: LatencyModel | None, latency_queries: int = 200) -> Measured:
    from ..builder.bundle import write_bundle
    from ..builder.measure import measure_bundle

    source_dir = run_steps(teacher_dir, recipe.steps, context)
    profile = with_recipe(profile, recipe, context.progress)
    source = load_exportable(source_dir, context.data, VALIDATION_TEXTS, context.progress)
    calibration = Calibration(context.data, _encoder(source_dir), source.input_names, context.seed)
    spec = profile.models[0]
    path, info = make_model_file(spec, profile, source, calibration, context.cache, context.progress)
    entry = ModelFile(spec.file, spec.format, spec.precision, source.input_names,
                      sequence_length=(spec.sequence_length or profile.max_length) if spec.format == "tflite" else None,
                      tolerance=spec.tolerance, disabled_optimizers=tuple(info.get("disabled_optimizers", ())))
    bundle = work / "bundle"
    write_bundle(bundle, tokenizer_path=source_dir / TOKENIZER_FILE, models=[(entry, path)],
                 fixture_texts=list(context.data.validation.texts[:4]), max_length=profile.max_length,
                 labels=list(context.data.labels))
    metrics = measure_bundle(bundle, spec.file, context.data, latency_queries, split="validation")
    measured = metrics["latency"]["p50_ms"]
    features = Features(info["gflop"], metrics["size_mb"]) if "gflop" in info else None
    predicted = latency.predict(features) if latency is not None and features is not None else measured
    return Measured(metrics["accuracy"], measured if profile.host_timing else predicted, measured,
                    metrics["size_mb"], features, str(source_dir))


def _encoder(model_dir: Path):
    from edge_runtime.tokenize import TextEncoder

    return TextEncoder(model_dir / TOKENIZER_FILE, REFERENCE_LENGTH)
