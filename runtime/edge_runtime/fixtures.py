"""Parity fixtures: texts, their token ids and each model's logits, recorded on the build host.

The SDK writes them into every bundle (`fixtures.json`); wherever the bundle runs (host, emulated
Raspberry Pi, the mobile demo) they are replayed and compared. One type for the writer and the
readers, so the format is defined here and nowhere else.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import BundleError


@dataclass(frozen=True)
class Fixtures:
    texts: tuple[str, ...]
    input_ids: tuple[tuple[int, ...], ...]  # the ids the build tokenized each text into
    # model file -> one row of logits per text, computed at batch 1 on the build host
    logits: dict[str, tuple[tuple[float, ...], ...]] = field(default_factory=dict)

    def __post_init__(self):
        if len(self.texts) != len(self.input_ids):
            raise BundleError(f"fixtures hold {len(self.texts)} texts but {len(self.input_ids)} token-id rows")
        for name, rows in self.logits.items():
            if len(rows) != len(self.texts):
                raise BundleError(f"fixtures hold {len(rows)} logit rows for {name}, not one per text "
                                  f"({len(self.texts)})")

    def logits_for(self, model_file: str):
        """float32 [texts, labels] for one model file."""
        import numpy as np

        if model_file not in self.logits:
            raise BundleError(f"parity fixtures hold no logits for {model_file}")
        return np.asarray(self.logits[model_file], dtype=np.float32).reshape(len(self.texts), -1)

    def to_json(self) -> str:
        return json.dumps({"texts": list(self.texts), "input_ids": [list(r) for r in self.input_ids],
                           "logits": {k: [list(r) for r in v] for k, v in self.logits.items()}})

    def write(self, path: Path) -> Path:
        Path(path).write_text(self.to_json(), encoding="utf-8")
        return Path(path)

    @classmethod
    def from_dict(cls, data: Any, name: str = "fixtures") -> Fixtures:
        try:
            texts = tuple(_typed(t, str) for t in data["texts"])
            ids = tuple(tuple(_typed(i, int) for i in row) for row in data["input_ids"])
            logits = {_typed(k, str): tuple(tuple(float(_typed(x, (int, float))) for x in row) for row in rows)
                      for k, rows in data["logits"].items()}
        except (KeyError, TypeError, AttributeError) as exc:
            raise BundleError(f"parity fixtures {name} are malformed: {exc}") from None
        return cls(texts, ids, logits)

    @classmethod
    def read(cls, path: Path) -> Fixtures:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise BundleError(f"parity fixtures {Path(path).name} are malformed: {exc}") from None
        return cls.from_dict(data, Path(path).name)


def _typed(value: Any, kind):
    if isinstance(value, bool) or not isinstance(value, kind):
        raise TypeError(f"expected {getattr(kind, '__name__', kind)}, got {type(value).__name__}")
    return value
