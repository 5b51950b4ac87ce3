"""Step cache: each step's output lives under a key made from a fingerprint of its inputs, so a
second target reuses the teacher and the exported graph, and a repeated build is fast."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any, Callable

# Bump a step's version when its code changes what it produces: old entries stop matching.
STEP_VERSIONS = {"teacher": 2, "student": 1, "reference": 1, "onnx": 1, "fused": 1, "quantized": 1, "tflite": 1}
COMPLETE = ".complete"


def default_cache_dir() -> Path:
    """~/.cache/edge-sdk (or $EDGE_SDK_CACHE): kept across runs, unlike a temp folder."""
    env = os.environ.get("EDGE_SDK_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "edge-sdk"


def fingerprint(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:20]


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def dir_fingerprint(path: Path) -> str:
    """Content fingerprint of a model folder (names and bytes of every file)."""
    digest = hashlib.sha256()
    for file in sorted(p for p in Path(path).rglob("*") if p.is_file()):
        digest.update(file.relative_to(path).as_posix().encode())
        digest.update(file_digest(file).encode())
    return digest.hexdigest()[:20]


class StepCache:
    def __init__(self, root: Path, enabled: bool = True):
        self.root = Path(root)
        self.enabled = enabled  # False: recompute every step (and refresh the cache)
        self.reused: list[str] = []  # step names served from the cache in this run
        self.made: list[str] = []

    def entry(self, step: str, inputs: dict[str, Any]) -> Path:
        return self.root / step / fingerprint({"step": step, "version": STEP_VERSIONS[step], **inputs})

    def get_or_make(self, step: str, inputs: dict[str, Any], make: Callable[[Path], None]) -> Path:
        """Folder holding the step's output; `make(folder)` fills a fresh one when there is none.

        A step writes into `<key>.partial`, which is renamed once complete: an interrupted step is
        never mistaken for a finished one. Steps that can resume (training) keep their own work
        folder beside it.
        """
        final = self.entry(step, inputs)
        if self.enabled and (final / COMPLETE).exists():
            self.reused.append(step)
            return final
        partial = final.with_name(final.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        make(partial)
        (partial / "inputs.json").write_text(json.dumps({"step": step, **inputs}, indent=2, default=str))
        (partial / COMPLETE).touch()
        shutil.rmtree(final, ignore_errors=True)
        os.replace(partial, final)
        self.made.append(step)
        return final

    def work_dir(self, step: str, inputs: dict[str, Any]) -> Path:
        """A stable folder for a step's resumable state (Trainer checkpoints)."""
        entry = self.entry(step, inputs)
        return entry.with_name(entry.name + ".work")
