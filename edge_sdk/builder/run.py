"""`build()`: bundles for hardware targets, as a composition of cached step functions.

    data -> teacher (fine-tuned when it has no head) -> the recipe's model steps (distill, ...)
         -> PyTorch FP32 references -> per target, per model file: export, [fusion], quantization,
            validation against PyTorch -> bundle, published only if every file passes the guard

Each step takes its inputs as arguments and returns its output (a cached folder or a value);
nothing is set on the side halfway through.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from edge_runtime.manifest import TOKENIZER_FILE, ModelFile
from edge_runtime.tokenize import TextEncoder

from ..data import LabelledData, load_data
from ..distill.config import RECORD
from ..errors import AccuracyBudgetError, ConfigError, ExportValidationError
from ..files import cache_home
from ..models import EXPORTABLE, load_classifier, model_input_names
from ..models.lineage import read_lineage
from ..models.resolve import resolve_model
from ..profiles import TargetProfile, load_target
from ..quiet import quiet_libraries
from ..recipes import Recipe, load_recipe
from .cache import StepCache
from .formats import Calibration, Exportable, feeds_in_batches, make_model_file
from .guard import Budget, accuracy_guard, check_model_steps
from .progress import Progress
from .steps import StepContext, make_teacher, run_steps

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
REFERENCE_LENGTH = 128  # truncation for reference logits/accuracy: longer than any intent query
FIXTURE_EDGE_CASES = ("", "Ünïcödé, ÉMOJI 🚀 and CJK 東京 all in one query!", "please " * 200)


@dataclass(frozen=True)
class TargetResult:
    target: str
    bundle: Path | None = None
    error: str | None = None
    rows: tuple[dict, ...] = ()  # benchmark-style rows of what it ships, for the report
    digest: str | None = None  # sha256 of its manifest.json, which lists every file's sha256


def build(targets, *, model: str | None = None, data: str | None = None, out: str | Path = "build",
          recipe: str = "default", max_accuracy_drop: float | None = None, seed: int = 0, use_cache: bool = True,
          cache_dir: str | Path | None = None, text_column: str | None = None, label_column: str | None = None,
          fixture_count: int = 32, validation_count: int = 256, latency_queries: int = 200,
          progress: Progress | None = None) -> list[TargetResult]:
    """Build one verified bundle per target into `out/<target>/`, plus `out/report.md` and `report.png`.

    targets: profile names (`edge-sdk targets`) or .toml paths. model: a folder or hub id (default:
    all-MiniLM-L6-v2). data: see `edge_sdk.data.load_data` (default: the embedded assistant set).
    recipe: a name (`edge_sdk.recipes.available_recipes()`) or a .toml path. max_accuracy_drop:
    points each target's files may lose against the FP32 model they are made from (default: each
    profile's budget). A target that fails validation or its budget is reported in its result;
    bad input raises an `EdgeSdkError` before anything slow runs.
    """
    quiet_libraries()
    progress = progress or Progress()
    out = Path(out)
    if not targets:
        raise ConfigError("no target given: add --target NAME (see `edge-sdk targets`)")
    chosen = load_recipe(recipe)
    profiles = [with_recipe(load_target(t), chosen, progress) for t in targets]  # fail fast on a typo
    if any(m.format == "tflite" for p in profiles for m in p.models):
        from ..export.tflite import require_converter

        require_converter()  # before hours of training, not after
    check_int8_programs(profiles, chosen)
    with progress.step("data"):
        dataset = load_data(data, text_column=text_column, label_column=label_column, seed=seed)
    progress.note(f"{dataset.name}: {len(dataset.labels)} labels, train {len(dataset.train)}, "
                  f"validation {len(dataset.validation)}, test {len(dataset.test)}")
    cache = StepCache(Path(cache_dir) if cache_dir else cache_home(), enabled=use_cache)
    context = StepContext(dataset, cache, progress, seed)

    model_ref = model or DEFAULT_MODEL
    with progress.step(f"model {model_ref}"):
        model_dir = resolve_model(model_ref, cache.root)
    teacher_dir = make_teacher(model_ref, model_dir, chosen.teacher, context)
    # The FP32 model the shipped files are held against: the recipe's last model, or the one a final
    # qat step starts from. QAT's own float weights are a by-product (fitted to live with int8
    # rounding); what it delivers is the int8 program, so that is judged against the model before it.
    steps = chosen.steps
    qat_last = bool(steps) and steps[-1].name == "qat"
    float_dir = run_steps(teacher_dir, steps[:-1] if qat_last else steps, context)
    references = {"teacher": measure_reference(teacher_dir, "FP32 teacher", context, latency_queries)}
    if float_dir != teacher_dir:
        references["source"] = measure_reference(float_dir, "FP32 model before QAT" if qat_last else
                                                 "FP32 model after the recipe's steps", context, latency_queries)
        check_model_steps(references["teacher"]["accuracy"], references["source"]["accuracy"],
                          chosen.max_accuracy_drop, chosen.name)
    source_dir = run_steps(float_dir, steps[-1:], context, first=len(steps)) if qat_last else float_dir
    source = load_exportable(source_dir, dataset, validation_count, progress)
    calibration = Calibration(dataset, TextEncoder(source_dir / TOKENIZER_FILE, REFERENCE_LENGTH),
                              source.input_names, seed)
    shared = {"model_ref": model_ref, "teacher_dir": teacher_dir, "references": references,
              "fixture_texts": fixture_texts(dataset, fixture_count)}
    results = []
    for profile in profiles:
        try:
            results.append(build_target(profile, chosen, dataset, source, calibration, context, out,
                                        max_accuracy_drop, latency_queries, **shared))
        except (AccuracyBudgetError, ExportValidationError) as exc:
            progress.failed(f"{profile.name}: {exc}")
            results.append(TargetResult(profile.name, error=str(exc)))
    from .report import write_build_report

    write_build_report(out, results, references, dataset)
    progress.note(f"cache {cache.root}: {len(cache.reused)} step(s) reused, {len(cache.made)} made")
    return results


def with_recipe(profile: TargetProfile, recipe: Recipe, progress: Progress) -> TargetProfile:
    """The profile with the recipe's quantization replacing its int8 scheme, format by format; says
    so when a recipe section has nothing to act on in this target."""
    for fmt, override in (("onnx", recipe.onnx_quantization), ("tflite", recipe.tflite_quantization)):
        if override is None:
            continue
        if any(m.format == fmt and m.precision == "int8" for m in profile.models):
            profile = profile.with_quantization(fmt, override)
        else:
            progress.note(f"note: recipe {recipe.name!r} sets [{fmt}_quantization], but {profile.name} ships no "
                          f"int8 {fmt} model: it does not apply there")
    return profile


def check_int8_programs(profiles: list[TargetProfile], recipe: Recipe) -> None:
    """Before anything slow: a model file whose int8 scales come from training needs a recipe ending
    in a qat step; full-integer files and QAT need torchao and litert-torch."""
    files = [(profile.name, model) for profile in profiles for model in profile.models]
    trained = bool(recipe.steps) and recipe.steps[-1].name == "qat"
    if trained or any(model.quantization.method in ("qat", "full-int8") for _, model in files):
        from ..qat.program import require_quantization

        require_quantization()
    for target, model in files:
        if model.quantization.method != "qat":
            continue
        if not trained:
            raise ConfigError(f"{target}: {model.file} takes its int8 scales from quantization-aware training, and "
                              f"recipe {recipe.name!r} has no qat step: build it with --recipe qat (or a recipe "
                              "ending in a qat step)")
        scope = recipe.steps[-1].config.scope
        if model.format == "tflite" and scope != "full":
            raise ConfigError(f"{target}: {model.file} is full-integer, which needs every activation trained in "
                              f"int8, but recipe {recipe.name!r} trains its qat step with scope = {scope!r} (GEMM "
                              "inputs only, for QDQ ONNX): use a recipe whose qat step has scope = \"full\" "
                              "(e.g. --recipe qat)")


def measure_reference(model_dir: Path, label: str, context: StepContext, latency_queries: int,
                      split: str = "test") -> dict:
    """The model in PyTorch FP32 on a split (accuracy, size, latency), cached."""
    from .measure import pytorch_reference

    inputs = {"model": model_dir.name, "data": context.data.fingerprint, "length": REFERENCE_LENGTH}
    if split != "test":  # the key of test references stays what it was
        inputs["split"] = split
    with context.progress.step(f"PyTorch reference: {label} on the {split} split"):
        result = context.cache.get_or_make_json(
            "reference", inputs,
            lambda: pytorch_reference(model_dir, context.data, REFERENCE_LENGTH, latency_queries, split))
    context.progress.note(f"{label}: accuracy {result['accuracy']:.4f}")
    return {"name": f"PyTorch {label}", "kind": "reference", **result}


def load_exportable(model_dir: Path, data: LabelledData, count: int, progress: Progress) -> Exportable:
    """Load the model that ships and take its PyTorch logits before any export touches it."""
    from ..export.onnx import torch_logits

    model = load_classifier(model_dir, attn=EXPORTABLE)
    names = model_input_names(model)
    encoder = TextEncoder(model_dir / TOKENIZER_FILE, REFERENCE_LENGTH)
    texts = list(data.validation.texts[:count])
    batches = feeds_in_batches(encoder, texts, 32, names)
    with progress.step(f"PyTorch logits on {len(texts)} validation texts"):
        logits = torch_logits(model, batches, names)  # exporting has been seen to change the model afterwards
    return Exportable(model_dir, model, names, batches, logits)


def build_target(profile: TargetProfile, recipe: Recipe, data: LabelledData, source: Exportable,
                 calibration: Calibration, context: StepContext, out: Path, max_accuracy_drop: float | None,
                 latency_queries: int, *, model_ref: str, teacher_dir: Path, references: dict,
                 fixture_texts: list[str]) -> TargetResult:
    """One target's bundle: its model files, then write_bundle with the accuracy guard."""
    from .bundle import write_bundle

    progress = context.progress
    progress.section(f"target {profile.name}")
    files: list[tuple[ModelFile, Path]] = []
    for spec in profile.models:
        with progress.step(f"{spec.file}: {spec.format} {spec.precision} ({spec.quantization.method})"):
            path, info = make_model_file(spec, profile, source, calibration, context.cache, progress)
        files.append((ModelFile(file=spec.file, backend=spec.format, precision=spec.precision,
                                input_names=source.input_names,
                                sequence_length=(spec.sequence_length or profile.max_length)
                                if spec.format == "tflite" else None,
                                tolerance=spec.tolerance, metrics=info,
                                disabled_optimizers=tuple(info.get("disabled_optimizers", ()))), path))
    threshold = None
    if recipe.oos_threshold == "fit" and data.oos_id is not None:
        from .threshold import fit_threshold

        with progress.step(f"out-of-scope threshold for {files[0][0].file} on the validation split"):
            threshold = fit_threshold(files[0][1], files[0][0], source.model_dir / TOKENIZER_FILE,
                                      profile.max_length, data)
        progress.note(f"oos_threshold {threshold:.4f}")
    budget_points = max_accuracy_drop if max_accuracy_drop is not None else profile.max_accuracy_drop
    origin = references.get("source", references["teacher"])
    budget = Budget(profile.name, budget_points, origin["name"].removeprefix("PyTorch "), origin["accuracy"],
                    references["teacher"]["accuracy"])
    out_dir = out / profile.name
    with progress.step(f"bundle {out_dir}"):
        manifest = write_bundle(
            out_dir, tokenizer_path=source.model_dir / TOKENIZER_FILE, models=files,
            fixture_texts=fixture_texts, max_length=profile.max_length, labels=list(data.labels),
            oos_label=data.oos_label, oos_threshold=threshold,
            measure=accuracy_guard([entry for entry, _ in files], data, budget, latency_queries, progress, out_dir),
            target=profile.to_dict(), recipe=recipe.to_dict(),
            source={"model": model_ref, "teacher": teacher_dir.name, "data": data.name,
                    "data_fingerprint": data.fingerprint, "distillation": _distillation(source.model_dir),
                    "lineage": read_lineage(source.model_dir)},
            execution={"providers": list(profile.providers), "threads": profile.threads},
            metrics={"teacher_accuracy": budget.teacher_accuracy, "source_accuracy": budget.source_accuracy,
                     "max_accuracy_drop": budget_points},
        )
    from edge_runtime import bundle_digest

    digest = bundle_digest(out_dir)  # what a device can pin: Pipeline.load(digest=...), verify --digest
    progress.ok(f"{profile.name}: {out_dir} (digest {digest})")
    rows = tuple({"name": f"{profile.name}/{m.file}", "kind": "bundle", **m.metrics} for m in manifest.models)
    return TargetResult(profile.name, bundle=out_dir, rows=rows, digest=digest)


def fixture_texts(data: LabelledData, n: int) -> list[str]:
    """Validation texts plus the edge cases every device must agree on."""
    return list(data.validation.texts[: max(0, n - len(FIXTURE_EDGE_CASES))]) + list(FIXTURE_EDGE_CASES)


def _distillation(model_dir: Path) -> dict | None:
    """How the student was distilled (parameters, accuracies), when the source model is a student."""
    record = model_dir / RECORD
    return json.loads(record.read_text(encoding="utf-8")) if record.is_file() else None


