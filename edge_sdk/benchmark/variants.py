"""What the benchmark runs: the reference rows built from the teacher, and every model of every bundle.

A `VariantSpec` is plain data (so a fresh subprocess can rebuild it to measure its RSS alone);
`open_runner(spec, threads)` turns it into a `Runner` with one call signature for all of them:
texts in, label names out, tokenization included, batch = len(texts).

Reference rows, as the book builds them:
  (a) torch-fp32   the FP32 teacher through transformers' pipeline("text-classification")
  (b) torch-int8   torch.ao.quantization.quantize_dynamic on its nn.Linear layers, same pipeline
  (c) ort-int8     the teacher exported to ONNX, onnxruntime quantize_dynamic (QInt8 weights), run
                   in a plain InferenceSession with the teacher's fast tokenizer
Bundle rows run through edge_runtime.Pipeline, the device code path.
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from edge_runtime.manifest import TOKENIZER_FILE

MB = 1024 * 1024  # sizes are MiB, as the book's compute_size divides by 1024²


@dataclass(frozen=True)
class VariantSpec:
    name: str
    kind: str  # "reference" or "bundle"
    runner: str  # "torch-fp32", "torch-int8", "ort-int8", "bundle"
    path: str  # teacher folder, ONNX file, or bundle
    model: str | None = None  # bundle: which model file
    tokenizer: str | None = None  # ort-int8: the teacher folder holding tokenizer.json and config.json

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> VariantSpec:
        return cls(**data)


@dataclass
class Runner:
    predict: Callable[[list[str]], list[str]]  # texts -> label names, one call, batch = len(texts): what is timed
    logits: Callable[[list[str]], object]  # texts -> float logits [texts, labels], one call (accuracy)
    token_lengths: Callable[[list[str]], list[int]]  # tokens per text, [CLS] and [SEP] included
    labels: tuple[str, ...]  # what the model can predict, in its id order
    close: Callable[[], None] = lambda: None
    providers: tuple[str, ...] = ()  # execution providers that actually run it (ONNX Runtime)
    fallbacks: tuple[str, ...] = ()  # providers the bundle asked for that are not available here

    def logits_in_batches(self, texts: list[str], batch_size: int):
        import numpy as np

        return np.concatenate([np.asarray(self.logits(texts[i:i + batch_size]), dtype=np.float32)
                               for i in range(0, len(texts), batch_size)])


def quiet_libraries() -> None:
    """The SDK's quiet settings, and no deprecation chatter from the libraries of the reference rows
    (transformers' pipeline, torch's dynamic quantization): the report is for benchmark readers."""
    from ..quiet import quiet_libraries as quiet_sdk

    quiet_sdk()
    for category in (UserWarning, DeprecationWarning, FutureWarning):
        warnings.filterwarnings("ignore", category=category)


def teacher_labels(teacher: Path) -> tuple[str, ...]:
    config = json.loads((Path(teacher) / "config.json").read_text(encoding="utf-8"))
    id2label = config.get("id2label") or {}
    return tuple(str(id2label[k]) for k in sorted(id2label, key=int))


@lru_cache(maxsize=2)
def _teacher_model(path: str, quantized: bool):
    """The teacher as a user gets it by default (sdpa attention); int8 = dynamic quantization of nn.Linear."""
    import torch

    from ..models import load_classifier

    model = load_classifier(path)
    if quantized:
        from torch.ao.quantization import quantize_dynamic

        model = quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    return model.eval()


def _max_length(config: dict) -> int:
    """The longest input the model's positions allow (MPNet/RoBERTa reserve 2 of their 514)."""
    return min(int(config.get("max_position_embeddings") or 512), 512)


def _token_lengths(encoder) -> Callable[[list[str]], list[int]]:
    return lambda texts: [len(row) for row in encoder.ids(texts)]


def open_runner(spec: VariantSpec, threads: int) -> Runner:
    quiet_libraries()
    if spec.runner in ("torch-fp32", "torch-int8"):
        return _torch_runner(spec, threads)
    if spec.runner == "ort-int8":
        return _ort_runner(spec, threads)
    if spec.runner == "bundle":
        return _bundle_runner(spec, threads)
    raise ValueError(f"unknown runner {spec.runner!r}")


def _torch_runner(spec: VariantSpec, threads: int) -> Runner:
    import torch
    from transformers import AutoTokenizer, pipeline

    from edge_runtime.tokenize import TextEncoder

    torch.set_num_threads(threads)
    model = _teacher_model(spec.path, spec.runner == "torch-int8")
    tokenizer = AutoTokenizer.from_pretrained(spec.path)
    pipe = pipeline("text-classification", model=model, tokenizer=tokenizer, device="cpu")
    max_length = _max_length(model.config.to_dict())

    def predict(texts: list[str]) -> list[str]:
        with torch.inference_mode():
            out = pipe(texts, batch_size=len(texts), truncation=True, max_length=max_length)
        return [o["label"] for o in out]

    def logits(texts: list[str]):
        with torch.inference_mode():
            batch = tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
            return model(**batch).logits.float().numpy()

    encoder = TextEncoder(Path(spec.path) / TOKENIZER_FILE, max_length)
    return Runner(predict=predict, logits=logits, token_lengths=_token_lengths(encoder),
                  labels=teacher_labels(Path(spec.path)))


def _ort_runner(spec: VariantSpec, threads: int) -> Runner:
    import numpy as np
    import onnxruntime as ort

    from edge_runtime.tokenize import TextEncoder

    folder = Path(spec.tokenizer or Path(spec.path).parent)
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    labels = teacher_labels(folder)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL  # as the book's OnnxPipeline
    options.log_severity_level = 3
    session = ort.InferenceSession(spec.path, options, providers=["CPUExecutionProvider"])
    names = tuple(i.name for i in session.get_inputs())
    encoder = TextEncoder(folder / TOKENIZER_FILE, _max_length(config))

    def logits(texts: list[str]):
        return session.run(None, encoder.feeds(encoder.ids(texts), names))[0]

    def predict(texts: list[str]) -> list[str]:
        return [labels[i] for i in np.argmax(logits(texts), axis=-1)]

    return Runner(predict=predict, logits=logits, token_lengths=_token_lengths(encoder), labels=labels,
                  providers=tuple(session.get_providers()))


def _bundle_runner(spec: VariantSpec, threads: int) -> Runner:
    from edge_runtime import Pipeline
    from edge_runtime.backends.onnx import ProviderFallbackWarning

    # A bundle built for TensorRT/CUDA falls back to CPU here: one note in the report, not a warning
    # per session.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ProviderFallbackWarning)
        pipe = Pipeline.load(spec.path, threads=threads, model=spec.model)
    fallbacks = tuple(str(w.message).split(" ", 1)[0] for w in caught
                      if issubclass(w.category, ProviderFallbackWarning))
    for w in caught:
        if not issubclass(w.category, ProviderFallbackWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)

    def predict(texts: list[str]) -> list[str]:
        return [p["label"] for p in pipe(texts, batch_size=len(texts))]

    return Runner(predict=predict, logits=lambda texts: pipe.logits(texts, batch_size=len(texts)),
                  token_lengths=_token_lengths(pipe.encoder), labels=tuple(pipe.labels),
                  providers=tuple(getattr(pipe.backend, "providers", ()) or ()),
                  fallbacks=fallbacks)


# --- building the specs -------------------------------------------------------------------------

def prepare_references(teacher: Path, work_dir: Path) -> tuple[list[VariantSpec], dict[str, dict]]:
    """Specs for rows (a), (b), (c) and, per name, what ships and how big it is on disk.

    Writes the teacher's ONNX export and its ORT int8 quantization into `work_dir`; the state dicts
    are saved there too, only to measure their size the way the book does (torch.save).
    """
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from ..export.onnx import export_onnx
    from ..models import EXPORTABLE, load_classifier, model_input_names
    from ..quiet import quiet_root_logger
    from .flops import config_layers

    quiet_libraries()
    teacher, work_dir = Path(teacher), Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    tokenizer_bytes = (teacher / TOKENIZER_FILE).stat().st_size
    info: dict[str, dict] = {}

    def state_dict_mb(model, name: str) -> float:
        path = work_dir / f"{name}.pt"
        torch.save(model.state_dict(), path)
        return (path.stat().st_size + tokenizer_bytes) / MB

    fp32 = _teacher_model(str(teacher), False)
    shapes = config_layers(fp32.config)
    int8 = _teacher_model(str(teacher), True)
    info["teacher fp32 (torch)"] = {"size_mb": state_dict_mb(fp32, "teacher-fp32"), "backend": "torch",
                                    "precision": "fp32", "shapes": shapes}
    info["teacher int8 (torch dynamic)"] = {"size_mb": state_dict_mb(int8, "teacher-int8"), "backend": "torch",
                                            "precision": "int8", "shapes": shapes}
    exportable = load_classifier(teacher, attn=EXPORTABLE)
    onnx_path = export_onnx(exportable, work_dir / "teacher.onnx", input_names=model_input_names(exportable))
    int8_path = work_dir / "teacher.int8.onnx"
    with warnings.catch_warnings(), quiet_root_logger():
        warnings.simplefilter("ignore")
        quantize_dynamic(str(onnx_path), str(int8_path), weight_type=QuantType.QInt8)
    info["teacher int8 (ORT dynamic)"] = {"size_mb": (int8_path.stat().st_size + tokenizer_bytes) / MB,
                                          "backend": "onnxruntime", "precision": "int8",
                                          "shapes": shapes, "model_path": str(int8_path)}
    specs = [
        VariantSpec("teacher fp32 (torch)", "reference", "torch-fp32", str(teacher)),
        VariantSpec("teacher int8 (torch dynamic)", "reference", "torch-int8", str(teacher)),
        VariantSpec("teacher int8 (ORT dynamic)", "reference", "ort-int8", str(int8_path), tokenizer=str(teacher)),
    ]
    return specs, info


def baseline_specs(models: list[Path], work_dir: Path) -> tuple[list[VariantSpec], dict[str, dict]]:
    """One FP32 PyTorch row per extra model (the book's "DistilBERT fine-tuned" row: the small model
    fine-tuned without a teacher), measured like the teacher's row."""
    import torch

    from .flops import config_layers

    specs, info = [], {}
    for model in models:
        name = f"{Path(model).name} fp32 (torch)"
        fp32 = _teacher_model(str(model), False)
        path = Path(work_dir) / f"{Path(model).name}-fp32.pt"
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(fp32.state_dict(), path)
        info[name] = {"size_mb": (path.stat().st_size + (Path(model) / TOKENIZER_FILE).stat().st_size) / MB,
                      "backend": "torch", "precision": "fp32", "shapes": config_layers(fp32.config)}
        specs.append(VariantSpec(name, "baseline", "torch-fp32", str(model)))
    return specs, info


def bundle_labels(bundles: list[Path]) -> list[str]:
    """Row labels: each bundle's folder name, with its parent where two folders share a name
    (build/clinc/x86-avx512-vnni and build/clinc-student/x86-avx512-vnni)."""
    names = [Path(b).name for b in bundles]
    return [f"{Path(b).parent.name}/{n}" if names.count(n) > 1 else n for b, n in zip(bundles, names)]


def bundle_specs(bundle: Path, label: str | None = None) -> tuple[list[VariantSpec], dict[str, dict]]:
    """One spec per model file of the bundle; size = that model file + tokenizer + manifest."""
    from edge_runtime import open_bundle

    opened = open_bundle(bundle)
    manifest = opened.manifest
    label = label or Path(bundle).name
    target = (manifest.target or {}).get("name")
    if target and target != Path(bundle).name:
        label = f"{label} [{target}]"
    common = opened.path(manifest.tokenizer_file).stat().st_size + opened.path("manifest.json").stat().st_size
    specs, info = [], {}
    for model in manifest.models:
        name = f"{label}/{model.file}"
        specs.append(VariantSpec(name, "bundle", "bundle", str(bundle), model=model.file))
        info[name] = {"size_mb": (opened.path(model.file).stat().st_size + common) / MB,
                      "backend": model.backend, "precision": model.precision,
                      "bundle_path": str(bundle), "shapes": _onnx_shapes(opened.path(model.file), model.backend)}
    return specs, info


def _onnx_shapes(path: Path, backend: str) -> dict | None:
    """Weight shapes for the FLOPs column; None when the graph is not a BERT-style ONNX classifier."""
    if backend != "onnx":
        return None
    from .flops import onnx_layers

    try:
        return onnx_layers(path)
    except ValueError as exc:
        warnings.warn(f"no FLOPs for {path.name}: {exc}", stacklevel=2)
        return None
