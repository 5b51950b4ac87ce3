"""Step cache: each step's output lives under a key made from a fingerprint of its inputs, so a
second target reuses the teacher and the exported graph, and a repeated build is fast."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..files import atomic_write_text, locked

# Bump a step's version when its code changes what it produces: old entries stop matching.
# Model steps of recipes (distill, ...) carry their version in builder.steps.MODEL_STEPS.
# quantized 2: weight-only quantization also quantizes the pooler's Gemm (as MatMul + Add).
STEP_VERSIONS = {"teacher": 2, "reference": 2, "onnx": 1, "fused": 1, "quantized": 2, "tflite": 1, "qdq": 1}
COMPLETE = ".complete"
INPUTS = "inputs.json"


def fingerprint(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:20]


class StepCache:
    def __init__(self, root: Path, enabled: bool = True):
        self.root = Path(root)
        self.enabled = enabled  # False: recompute every step (and refresh the cache)
        self.reused: list[str] = []  # step names served from the cache in this run
        self.made: list[str] = []

    def entry(self, step: str, inputs: dict[str, Any], version: int | None = None) -> Path:
        version = STEP_VERSIONS[step] if version is None else version
        return self.root / step / fingerprint({"step": step, "version": version, **inputs})

    def get_or_make(self, step: str, inputs: dict[str, Any], make: Callable[[Path], None],
                    version: int | None = None) -> Path:
        """Folder holding the step's output; `make(folder)` fills a fresh one when there is none.

        A step writes into `<key>.partial`, which is renamed once complete: an interrupted step is
        never mistaken for a finished one. Steps that can resume (training) keep their own work
        folder beside it.
        """
        final = self.entry(step, inputs, version)
        if self.enabled and (final / COMPLETE).exists():
            self.reused.append(step)
            return final
        # Another worker making the same entry (search workers share a cache): wait for it, then reuse it.
        with locked(final.with_name(final.name + ".lock")):
            if self.enabled and (final / COMPLETE).exists():
                self.reused.append(step)
                return final
            partial = final.with_name(final.name + ".partial")
            shutil.rmtree(partial, ignore_errors=True)
            partial.mkdir(parents=True)
            make(partial)
            atomic_write_text(partial / INPUTS, json.dumps({"step": step, **inputs}, indent=2, default=str))
            (partial / COMPLETE).touch()
            shutil.rmtree(final, ignore_errors=True)
            os.replace(partial, final)
        self.made.append(step)
        return final

    def get_or_make_json(self, step: str, inputs: dict[str, Any], compute: Callable[[], Any],
                         name: str = "result.json") -> Any:
        """A cached JSON value: `compute()` runs only when the step has no entry yet."""
        entry = self.get_or_make(step, inputs,
                                 lambda out: atomic_write_text(out / name, json.dumps(compute())))
        return json.loads((entry / name).read_text(encoding="utf-8"))

    def work_dir(self, step: str, inputs: dict[str, Any], version: int | None = None) -> Path:
        """A stable folder for a step's resumable state (Trainer checkpoints)."""
        entry = self.entry(step, inputs, version)
        return entry.with_name(entry.name + ".work")
