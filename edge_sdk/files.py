"""File helpers every step shares: content hashes, and folders/files that appear whole or not at all.

A step writes into a hidden temporary path beside its destination and renames it into place, so
a failure or Ctrl-C leaves the previous output (or nothing) there, never half of one.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from edge_runtime.manifest import sha256_file

__all__ = ["atomic_dir", "atomic_write_text", "cache_home", "dir_fingerprint", "locked", "sha256_file"]


def cache_home() -> Path:
    """Where the SDK keeps its step cache and fetched models: $EDGE_SDK_CACHE, else
    $XDG_CACHE_HOME/edge-sdk or ~/.cache/edge-sdk (kept across runs, unlike a temp folder)."""
    env = os.environ.get("EDGE_SDK_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "edge-sdk"


@contextmanager
def atomic_dir(out_dir: Path) -> Iterator[Path]:
    """Yield a fresh temporary folder that replaces `out_dir` only if the block succeeds."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.parent / f".{out_dir.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        yield tmp
        old = None
        if out_dir.exists():
            old = out_dir.parent / f".{out_dir.name}.old-{uuid.uuid4().hex[:8]}"
            os.replace(out_dir, old)
        os.replace(tmp, out_dir)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:  # also on KeyboardInterrupt
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def atomic_write_text(path: Path, text: str) -> Path:
    """Write `text` to `path` through a temporary file in the same folder and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


@contextmanager
def locked(lock_file: Path) -> Iterator[None]:
    """An exclusive lock held on `lock_file` (created if needed) across processes, for workers that
    share a folder (a step cache, a search's output)."""
    import fcntl

    Path(lock_file).parent.mkdir(parents=True, exist_ok=True)
    with open(lock_file, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def dir_fingerprint(path: Path) -> str:
    """Content fingerprint of a model folder (names and bytes of every file)."""
    digest = hashlib.sha256()
    for file in sorted(p for p in Path(path).rglob("*") if p.is_file()):
        digest.update(file.relative_to(path).as_posix().encode())
        digest.update(sha256_file(file).encode())
    return digest.hexdigest()[:20]
