"""Lineage: beside every model a step makes, how it was made, from the teacher on (`lineage.json`).

A bundle copies its model's lineage into the manifest (`source.lineage`), so a bundle built from
a base teacher -> 6-layer student -> 3-layer student says so, with each step's settings and
accuracies.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..files import atomic_write_text

LINEAGE = "lineage.json"


def read_lineage(model_dir: str | Path) -> list[dict]:
    path = Path(model_dir) / LINEAGE
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else []


def write_lineage(model_dir: str | Path, lineage: list[dict]) -> None:
    atomic_write_text(Path(model_dir) / LINEAGE, json.dumps(lineage, indent=2, default=str) + "\n")
