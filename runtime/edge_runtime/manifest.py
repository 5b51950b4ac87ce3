"""The bundle manifest: the one contract between the host SDK and the device runtime.

A bundle is a directory holding `manifest.json`, the tokenizer, the model file(s) and the
parity fixtures. The manifest is a frozen dataclass read from and written to JSON; the SDK
imports it from here, never the other way round.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import BundleError, SchemaVersionError

# Bump when a reader of the old format would misread a new bundle (not for added optional fields).
SCHEMA_VERSION = 1
BACKENDS = ("onnx", "tflite")
# File names inside a bundle, and the inputs a classifier may take: spelled here once, for the SDK too.
MANIFEST_FILE = "manifest.json"
TOKENIZER_FILE = "tokenizer.json"
FIXTURES_FILE = "fixtures.json"
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")  # BERT's; MPNet/RoBERTa take the first two


@dataclass(frozen=True)
class ModelFile:
    """One model file shipped in a bundle; a bundle may ship several (e.g. ONNX int8 + TFLite)."""

    file: str
    backend: str  # "onnx" or "tflite"
    precision: str  # "fp32", "fp16", "int8", ...
    input_names: tuple[str, ...]
    # Static sequence length the model was compiled for (TFLite); None means dynamic axes.
    sequence_length: int | None = None
    # Max abs diff of logits allowed when the parity fixtures are replayed on a device.
    tolerance: float = 1e-4
    # What the build measured for this file: accuracy, size, latency.
    metrics: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Manifest:
    labels: tuple[str, ...]
    models: tuple[ModelFile, ...]
    files: dict[str, str]  # every file of the bundle but the manifest -> sha256 hex
    max_length: int
    schema_version: int = SCHEMA_VERSION
    task: str = "text-classification"
    tokenizer_file: str = TOKENIZER_FILE
    fixtures_file: str | None = FIXTURES_FILE
    # Below this top softmax score the prediction becomes `oos_label` (CLINC150's "oos").
    oos_label: str | None = None
    oos_threshold: float | None = None
    target: dict[str, Any] = field(default_factory=dict)  # the profile it was built for
    recipe: dict[str, Any] = field(default_factory=dict)  # the recipe that made it
    source: dict[str, Any] = field(default_factory=dict)  # model id, model/data fingerprints
    execution: dict[str, Any] = field(default_factory=dict)  # providers, threads
    metrics: dict[str, Any] = field(default_factory=dict)  # measured at build time
    sdk_version: str = ""
    created: str = ""

    # DESIGN.md names one backend and one model file: those of the default (first) model.
    @property
    def backend(self) -> str:
        return self.models[0].backend

    @property
    def model_file(self) -> str:
        return self.models[0].file

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n"

    def write(self, bundle_dir: Path) -> Path:
        path = Path(bundle_dir) / MANIFEST_FILE
        path.write_text(self.to_json(), encoding="utf-8")
        return path

    @classmethod
    def from_dict(cls, data: Any) -> "Manifest":
        if not isinstance(data, dict):
            raise BundleError("manifest.json does not hold a JSON object")
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise SchemaVersionError(
                f"bundle schema version {version!r} is not supported by this runtime "
                f"(it reads version {SCHEMA_VERSION}); rebuild the bundle or upgrade edge-sdk-runtime"
            )
        known = {f.name for f in dataclasses.fields(cls)}
        missing = [f.name for f in dataclasses.fields(cls) if f.name not in data
                   and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
        if missing:
            raise BundleError(f"manifest.json lacks required field(s): {', '.join(missing)}")
        # Fields added by newer SDKs within one schema version are ignored, not fatal.
        kwargs = {k: v for k, v in data.items() if k in known}
        try:
            kwargs["labels"] = tuple(str(x) for x in kwargs["labels"])
            kwargs["models"] = tuple(_model_from_dict(m) for m in kwargs["models"])
            kwargs["files"] = {str(k): str(v) for k, v in dict(kwargs["files"]).items()}
            kwargs["max_length"] = int(kwargs["max_length"])
        except (TypeError, ValueError, KeyError) as exc:
            raise BundleError(f"manifest.json is malformed: {exc}") from None
        manifest = cls(**kwargs)
        _check_consistency(manifest)
        return manifest

    @classmethod
    def from_json(cls, text: str) -> "Manifest":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise BundleError(f"manifest.json is not valid JSON: {exc}") from None
        return cls.from_dict(data)

    @classmethod
    def read(cls, bundle_dir: Path) -> "Manifest":
        path = Path(bundle_dir) / MANIFEST_FILE
        if not path.is_file():
            raise BundleError(f"{bundle_dir} is not a bundle: it has no {MANIFEST_FILE}")
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise BundleError(f"cannot read {path}: {exc}") from None
        return cls.from_json(text)


def _model_from_dict(data: Any) -> ModelFile:
    if not isinstance(data, dict):
        raise TypeError("each entry of 'models' must be an object")
    known = {f.name for f in dataclasses.fields(ModelFile)}
    kwargs = {k: v for k, v in data.items() if k in known}
    kwargs["input_names"] = tuple(kwargs.get("input_names", ()))
    return ModelFile(**kwargs)


def _check_consistency(m: Manifest) -> None:
    if not m.models:
        raise BundleError("manifest.json lists no model")
    if len(m.labels) < 2:
        raise BundleError(f"manifest.json lists {len(m.labels)} label(s); a classifier needs two or more")
    for model in m.models:
        if model.backend not in BACKENDS:
            raise BundleError(f"model {model.file}: unknown backend {model.backend!r} (known: {', '.join(BACKENDS)})")
        if model.file not in m.files:
            raise BundleError(f"model {model.file} has no checksum in manifest.json 'files'")
    for name in (m.tokenizer_file, m.fixtures_file):
        if name is not None and name not in m.files:
            raise BundleError(f"{name} has no checksum in manifest.json 'files'")
    if m.oos_threshold is not None and not 0.0 <= float(m.oos_threshold) <= 1.0:
        raise BundleError(f"oos_threshold {m.oos_threshold} is not a probability in [0, 1]")
    for name in m.files:
        parts = Path(name).parts
        if Path(name).is_absolute() or ".." in parts or not parts:
            raise BundleError(f"manifest.json lists a file outside the bundle: {name!r}")


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()
