"""The bundle manifest: the one contract between the host SDK and the device runtime.

A bundle is a directory holding `manifest.json`, the tokenizer, the model file(s) and the
parity fixtures (and, when signed, `signature.json`). The manifest is a frozen dataclass read
from and written to JSON, each field checked by schema.py; the SDK imports it from here, never
the other way round.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import BundleError

# Bump when a reader of the old format would misread a new bundle (not for added optional fields).
SCHEMA_VERSION = 1
BACKENDS = ("onnx", "tflite")
TASKS = ("text-classification",)
# File names inside a bundle, and the inputs a classifier may take: spelled here once, for the SDK too.
MANIFEST_FILE = "manifest.json"
TOKENIZER_FILE = "tokenizer.json"
FIXTURES_FILE = "fixtures.json"
# Signatures of manifest.json (signature.py). The one file besides the manifest that the manifest
# cannot list: it is made after the manifest, over its bytes.
SIGNATURE_FILE = "signature.json"
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
    # onnxruntime graph optimizers the session is created without, because the build measured the
    # file faster without them (e.g. "SkipLayerNormFusion": its CPU kernel is slower than the Add and
    # LayerNormalization it replaces on short queries). Names onnxruntime does not know are ignored.
    disabled_optimizers: tuple[str, ...] = ()


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
    def from_dict(cls, data: Any) -> Manifest:
        """A Manifest from parsed JSON, every field checked against the schema (schema.py)."""
        from . import schema

        if not isinstance(data, dict):
            raise BundleError(f"{MANIFEST_FILE} does not hold a JSON object")
        fields = schema.check(data)
        models = tuple(ModelFile(**m) for m in fields.pop("models"))
        return cls(models=models, **fields)

    @classmethod
    def from_json(cls, text: str | bytes) -> Manifest:
        from . import schema

        return cls.from_dict(schema.parse(text))

    @classmethod
    def read(cls, bundle_dir: Path) -> Manifest:
        return cls.from_json(read_manifest_bytes(bundle_dir))


def read_manifest_bytes(bundle_dir: Path) -> bytes:
    """The manifest's bytes as stored: what the bundle digest and signatures are computed over."""
    from .schema import MAX_MANIFEST_BYTES

    path = Path(bundle_dir) / MANIFEST_FILE
    if path.is_symlink() or not path.is_file():
        raise BundleError(f"{bundle_dir} is not a bundle: it has no {MANIFEST_FILE}"
                          + (" (only a link to one)" if path.is_symlink() else ""))
    return read_small(path, MAX_MANIFEST_BYTES, BundleError, MANIFEST_FILE)


def read_small(path: Path, limit: int, error: type[Exception], what: str) -> bytes:
    """A small file's bytes (a manifest, a key, signatures), never reading more than limit + 1
    of them; `error` for an unreadable file or one past the limit."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(limit + 1)
    except OSError as exc:
        raise error(f"cannot read {what}: {exc.strerror}") from None
    if len(data) > limit:
        raise error(f"{what} is larger than {limit >> 10} KiB: not what it should be")
    return data


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()
