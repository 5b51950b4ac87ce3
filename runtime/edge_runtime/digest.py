"""The bundle digest: one value that stands for every byte of a bundle.

manifest.json records the sha256 of every other file, and opening a bundle refuses any file it does
not list, so the sha256 of manifest.json's bytes covers the whole bundle. A user pins it when
loading (`Pipeline.load(path, digest=...)`, `edge-runtime verify --digest`), as pip's
hash-checking mode pins a package: a bundle edited anywhere, manifest included, no longer loads.
The pin is compared before the manifest is even parsed.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from pathlib import Path

from .errors import DigestMismatchError, InputError

PREFIX = "sha256:"
_HEX = re.compile(r"[0-9a-f]{64}")


def digest_of(manifest_bytes: bytes) -> str:
    return PREFIX + hashlib.sha256(manifest_bytes).hexdigest()


def bundle_digest(bundle_dir: str | Path) -> str:
    """The digest of a bundle folder as written (its manifest's bytes), without verifying the files:
    for the SDK to print and record once it has published a bundle."""
    from .manifest import read_manifest_bytes

    return digest_of(read_manifest_bytes(Path(bundle_dir)))


def parse_digest(pinned: str) -> str:
    """'sha256:<64 hex>' (or the 64 hex alone, any case) -> 'sha256:<64 lowercase hex>'."""
    if not isinstance(pinned, str):
        raise InputError(f"a bundle digest is a string like 'sha256:<64 hex digits>', got {type(pinned).__name__}")
    value = pinned.strip().lower()
    value = value[len(PREFIX):] if value.startswith(PREFIX) else value
    if not _HEX.fullmatch(value):
        raise InputError(f"{pinned[:80]!r} is not a bundle digest: expected 'sha256:' and 64 hex digits "
                         "(as `edge-runtime verify` prints)")
    return PREFIX + value


def check_pinned(actual: str, pinned: str) -> None:
    expected = parse_digest(pinned)
    if not hmac.compare_digest(actual, expected):
        raise DigestMismatchError(f"bundle digest is {actual}, not the pinned {expected}: the bundle is not the "
                                  "one you pinned (edited, rebuilt or replaced)")
