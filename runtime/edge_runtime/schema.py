"""The manifest's schema, checked field by field before a `Manifest` is built.

A manifest is data from outside (a download, a phone's storage): every field is checked for type,
range and consistency here, and every failure is a `BundleError` naming the field
(`models[1].tolerance`), so a wrong or hostile manifest ends in one line at load time, never in a
TypeError at predict time after `verify` said OK.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from .errors import BundleError, SchemaVersionError
from .manifest import (
    BACKENDS,
    FIXTURES_FILE,
    INPUT_NAMES,
    MANIFEST_FILE,
    SCHEMA_VERSION,
    SIGNATURE_FILE,
    TASKS,
    TOKENIZER_FILE,
)

# A listed file name: portable path parts (no spaces, no leading dot, no '..', no backslash, no
# characters a filesystem or an archive tool could read differently), at most 8 deep.
NAME_PART = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
MAX_NAME_PARTS = 8
SHA256_HEX = re.compile(r"[0-9a-f]{64}")

MAX_MANIFEST_BYTES = 16 << 20
MAX_DEPTH = 32  # of nested JSON in the free-form fields (target, recipe, source, metrics)
MAX_LABELS = 100_000
MAX_LABEL_CHARS = 1000
MAX_FILES = 1000
MAX_MODELS = 32
MAX_LENGTH_RANGE = (3, 65536)  # [CLS] + one token + [SEP] .. past any Transformer's positions
MAX_THREADS = 1024  # what a manifest may ask; the device's own cap applies at load (limits.py)
MAX_STRING_CHARS = 256  # precision, sdk_version, created, provider names


def parse(text: bytes | str) -> dict[str, Any]:
    """JSON text -> dict, refusing what json.loads would take but a reader elsewhere might not:
    duplicate keys (Python keeps the last, another parser the first), NaN and Infinity, numbers that
    overflow a float, nesting deep enough to exhaust the stack, and text past MAX_MANIFEST_BYTES."""
    if len(text) > MAX_MANIFEST_BYTES:
        raise BundleError(f"{MANIFEST_FILE} is {len(text)} bytes, past the {MAX_MANIFEST_BYTES >> 20} MiB limit")
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BundleError(f"{MANIFEST_FILE} is not UTF-8: {exc.reason} at byte {exc.start}") from None
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant,
                          parse_float=_finite_float)
    except RecursionError:
        raise BundleError(f"{MANIFEST_FILE} is nested too deeply to be a manifest") from None
    except _Refused as exc:
        raise BundleError(f"{MANIFEST_FILE}: {exc}") from None
    except ValueError as exc:  # JSONDecodeError, and ints past Python's digit limit
        raise BundleError(f"{MANIFEST_FILE} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise BundleError(f"{MANIFEST_FILE} does not hold a JSON object")
    return data


class _Refused(Exception):
    pass


def _no_duplicates(pairs):
    keys = set()
    for key, _ in pairs:
        if key in keys:
            raise _Refused(f"key {key!r} appears twice in one object")
        keys.add(key)
    return dict(pairs)


def _no_constant(name):
    raise _Refused(f"{name} is not a JSON number")


def _finite_float(text):
    value = float(text)
    if not math.isfinite(value):
        raise _Refused(f"number {text[:40]} overflows a float")
    return value


def check(data: dict[str, Any]) -> dict[str, Any]:
    """Check a parsed manifest; return the keyword arguments of `Manifest` (tuples for lists).

    Fields added by newer SDKs within one schema version are ignored, not fatal.
    """
    version = data.get("schema_version")
    if type(version) is not int or version != SCHEMA_VERSION:
        raise SchemaVersionError(
            f"bundle schema version {version!r} is not supported by this runtime (it reads version "
            f"{SCHEMA_VERSION}); rebuild the bundle or upgrade edge-sdk-runtime")
    missing = [k for k in ("labels", "models", "files", "max_length") if k not in data]
    if missing:
        raise BundleError(f"{MANIFEST_FILE} lacks required field(s): {', '.join(missing)}")
    _check_strings_and_depth(data, "", 0)

    files = _files(data["files"])
    labels = _labels(data["labels"])
    out: dict[str, Any] = {"schema_version": version, "labels": labels, "files": files,
                           "max_length": _int(data["max_length"], "max_length", *MAX_LENGTH_RANGE)}
    models = _list(data["models"], "models", 1, MAX_MODELS)
    out["models"] = tuple(_model(m, f"models[{i}]", files) for i, m in enumerate(models))
    seen: dict[str, int] = {}
    for i, model in enumerate(out["models"]):
        if model["file"] in seen:
            raise BundleError(f"models[{i}].file: {model['file']!r} is already models[{seen[model['file']]}]")
        seen[model["file"]] = i

    out["task"] = data.get("task", TASKS[0])
    if out["task"] not in TASKS:
        raise BundleError(f"task: {_show(out['task'])} is not one this runtime runs ({', '.join(TASKS)})")
    out["tokenizer_file"] = _listed(data.get("tokenizer_file", TOKENIZER_FILE), "tokenizer_file", files)
    fixtures = data.get("fixtures_file", FIXTURES_FILE)
    out["fixtures_file"] = None if fixtures is None else _listed(fixtures, "fixtures_file", files)

    oos_label, threshold = data.get("oos_label"), data.get("oos_threshold")
    if oos_label is not None and (not isinstance(oos_label, str) or oos_label not in labels):
        raise BundleError(f"oos_label: {_show(oos_label)} is not one of the labels")
    if threshold is not None:
        threshold = _number(threshold, "oos_threshold", 0.0, 1.0)
        if oos_label is None:
            raise BundleError("oos_threshold is set but oos_label is not: below the threshold there is no "
                              "label to give")
    out["oos_label"], out["oos_threshold"] = oos_label, threshold

    for name in ("target", "recipe", "source", "execution", "metrics"):
        out[name] = _object(data.get(name, {}), name)
    if "name" in out["target"] and not isinstance(out["target"]["name"], str):
        raise BundleError(f"target.name: expected a string, got {_kind(out['target']['name'])}")
    _execution(out["execution"])
    for name in ("sdk_version", "created"):
        out[name] = _string(data.get(name, ""), name, 0, MAX_STRING_CHARS)
    return out


def check_file_name(name: Any, field: str) -> str:
    if not isinstance(name, str):
        raise BundleError(f"{field}: expected a file name, got {_kind(name)}")
    parts = name.split("/")
    if len(parts) > MAX_NAME_PARTS or not all(NAME_PART.fullmatch(p) for p in parts):
        raise BundleError(f"{field}: {_show(name)} is not an allowed bundle file name (relative, '/'-separated "
                          f"parts of letters, digits, '.', '_', '-', not starting with '.')")
    if name in (MANIFEST_FILE, SIGNATURE_FILE):
        raise BundleError(f"{field}: {name} cannot be listed in the manifest")
    return name


def _files(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise BundleError(f"files: expected an object of file name -> sha256, got {_kind(value)}")
    if not 1 <= len(value) <= MAX_FILES:
        raise BundleError(f"files: {len(value)} entries; a bundle lists 1 to {MAX_FILES} files")
    out = {}
    folded: dict[str, str] = {}
    for name, digest in value.items():
        check_file_name(name, "files")
        # Two names one case-insensitive filesystem (macOS, Windows) would store as one file.
        if name.lower() in folded:
            raise BundleError(f"files: {name!r} and {folded[name.lower()]!r} differ only in case")
        folded[name.lower()] = name
        if not isinstance(digest, str) or not SHA256_HEX.fullmatch(digest):
            raise BundleError(f"files[{name!r}]: expected 64 lowercase hex digits (sha256), got {_show(digest)}")
        out[name] = digest
    for name in out:  # a file cannot also be a folder of other files
        parts = name.split("/")
        for i in range(1, len(parts)):
            if "/".join(parts[:i]) in out:
                raise BundleError(f"files: {'/'.join(parts[:i])!r} is listed as a file and as the folder of {name!r}")
    return out


def _labels(value: Any) -> tuple[str, ...]:
    labels = _list(value, "labels", 0, MAX_LABELS)
    if len(labels) < 2:
        raise BundleError(f"labels: {MANIFEST_FILE} lists {len(labels)} label(s); a classifier needs two or more")
    first: dict[str, int] = {}
    for i, label in enumerate(labels):
        _string(label, f"labels[{i}]", 1, MAX_LABEL_CHARS)
        if label in first:
            raise BundleError(f"labels[{i}]: {label!r} is already labels[{first[label]}]; labels must be unique")
        first[label] = i
    return tuple(labels)


def _model(value: Any, field: str, files: dict[str, str]) -> dict[str, Any]:
    data = _object(value, field)
    for key in ("file", "backend", "precision", "input_names"):
        if key not in data:
            raise BundleError(f"{field} lacks required field {key!r}")
    backend = data["backend"]
    if backend not in BACKENDS:
        raise BundleError(f"{field}.backend: {_show(backend)} is not a known backend ({', '.join(BACKENDS)})")
    names = _list(data["input_names"], f"{field}.input_names", 1, len(INPUT_NAMES))
    for i, name in enumerate(names):
        if name not in INPUT_NAMES:
            raise BundleError(f"{field}.input_names[{i}]: {_show(name)} is not one of {', '.join(INPUT_NAMES)}")
    if len(set(names)) != len(names):
        raise BundleError(f"{field}.input_names: {names} names an input twice")
    if "input_ids" not in names:
        raise BundleError(f"{field}.input_names: {names} lacks input_ids")
    length = data.get("sequence_length")
    return {
        "file": _listed(data["file"], f"{field}.file", files),
        "backend": backend,
        "precision": _string(data["precision"], f"{field}.precision", 1, MAX_STRING_CHARS),
        "input_names": tuple(names),
        "sequence_length": None if length is None else _int(length, f"{field}.sequence_length", 1, MAX_LENGTH_RANGE[1]),
        "tolerance": _number(data.get("tolerance", 1e-4), f"{field}.tolerance", 0.0, math.inf),
        "metrics": _object(data.get("metrics", {}), f"{field}.metrics"),
        "disabled_optimizers": _strings(data.get("disabled_optimizers", []), f"{field}.disabled_optimizers", 16),
    }


def _strings(value: Any, field: str, most: int) -> tuple[str, ...]:
    items = _list(value, field, 0, most)
    return tuple(_string(item, f"{field}[{i}]", 1, MAX_STRING_CHARS) for i, item in enumerate(items))


def _execution(execution: dict[str, Any]) -> None:
    providers = execution.get("providers")
    if providers is not None:
        for i, name in enumerate(_list(providers, "execution.providers", 0, 16)):
            _string(name, f"execution.providers[{i}]", 1, MAX_STRING_CHARS)
    threads = execution.get("threads")
    if threads is not None:
        _int(threads, "execution.threads", 1, MAX_THREADS)


def _listed(name: Any, field: str, files: dict[str, str]) -> str:
    check_file_name(name, field)
    if name not in files:
        raise BundleError(f"{field}: {name} has no checksum in {MANIFEST_FILE} 'files'")
    return name


def _check_strings_and_depth(value: Any, field: str, depth: int) -> None:
    """Every string (keys too) must be valid Unicode, so it can be printed and written as UTF-8
    ('\\ud800' is valid JSON but no UTF-8); nesting stays shallow."""
    if depth > MAX_DEPTH:
        raise BundleError(f"{field or 'manifest'}: nested more than {MAX_DEPTH} levels deep")
    if isinstance(value, str):
        _utf8(value, field)
    elif isinstance(value, dict):
        for key, item in value.items():
            name = _child(field, key)
            _utf8(key, name)
            _check_strings_and_depth(item, name, depth + 1)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _check_strings_and_depth(item, f"{field}[{i}]", depth + 1)


def _child(field: str, key: str) -> str:
    """`execution.threads` for plain keys, `metrics['a b\\n']` for others: a one-line message."""
    if key.isascii() and key.isidentifier() and len(key) <= 40:
        return f"{field}.{key}" if field else key
    return f"{field}[{key[:40]!r}]"


def _utf8(text: str, field: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise BundleError(f"{field}: holds a lone surrogate, which is not a Unicode character") from None


def _int(value: Any, field: str, low: int, high: int) -> int:
    if type(value) is not int:
        raise BundleError(f"{field}: expected an integer, got {_kind(value)}")
    if not low <= value <= high:
        raise BundleError(f"{field}: {_show(value)} is outside {low}..{high}")
    return value


def _number(value: Any, field: str, low: float, high: float) -> float:
    if type(value) not in (int, float) or not math.isfinite(value):
        raise BundleError(f"{field}: expected a finite number, got {_kind(value)}")
    if not low <= value <= high:
        raise BundleError(f"{field}: {_show(value)} is outside [{low}, {high}]")
    return float(value)


def _string(value: Any, field: str, low: int, high: int) -> str:
    if not isinstance(value, str):
        raise BundleError(f"{field}: expected a string, got {_kind(value)}")
    if not low <= len(value) <= high:
        raise BundleError(f"{field}: a string of {len(value)} characters; expected {low} to {high}")
    return value


def _list(value: Any, field: str, low: int, high: int) -> list:
    if not isinstance(value, list):
        raise BundleError(f"{field}: expected a list, got {_kind(value)}")
    if not low <= len(value) <= high:
        raise BundleError(f"{field}: {len(value)} items; expected {low} to {high}")
    return value


def _object(value: Any, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BundleError(f"{field}: expected an object, got {_kind(value)}")
    return value


def _kind(value: Any) -> str:
    return f"{type(value).__name__} {_show(value)}"


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
