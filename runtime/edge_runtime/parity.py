"""Replaying a bundle's parity fixtures: texts with the token ids and logits recorded at build time.

The same fixtures are replayed wherever the bundle runs (host, emulated Raspberry Pi, the mobile
demo), so "same predictions everywhere" is a measured statement.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from .errors import BundleError
from .pipeline import Pipeline


@dataclass(frozen=True)
class ParityReport:
    model_file: str
    n: int
    token_ids_equal: int  # fixtures whose token ids match the recorded ones
    max_abs_diff: float
    argmax_agree: int
    tolerance: float

    @property
    def ok(self) -> bool:
        return (self.token_ids_equal == self.n and self.argmax_agree == self.n
                and self.max_abs_diff <= self.tolerance)

    def line(self) -> str:
        status = "OK" if self.ok else "FAIL"
        return (f"{self.model_file}: {self.n} fixtures, token ids equal {self.token_ids_equal}/{self.n}, "
                f"max abs diff {self.max_abs_diff:.3g} (tolerance {self.tolerance:.3g}), "
                f"argmax agree {self.argmax_agree}/{self.n}: {status}")


def load_fixtures(pipe: Pipeline) -> dict:
    name = pipe.manifest.fixtures_file
    if name is None:
        raise BundleError("bundle has no parity fixtures")
    try:
        data = json.loads(pipe.bundle.path(name).read_text(encoding="utf-8"))
        texts, ids, logits = data["texts"], data["input_ids"], data["logits"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BundleError(f"parity fixtures {name} are malformed: {exc}") from None
    if pipe.model.file not in logits:
        raise BundleError(f"parity fixtures hold no logits for {pipe.model.file}")
    return {"texts": texts, "input_ids": ids, "logits": np.asarray(logits[pipe.model.file], dtype=np.float32)}


def replay(pipe: Pipeline) -> ParityReport:
    fixtures = load_fixtures(pipe)
    ids = pipe.encoder.ids(fixtures["texts"])
    same_ids = sum(a == b for a, b in zip(ids, fixtures["input_ids"]))
    # Recorded ids, so a tokenizer difference cannot hide a model difference; batch 1 as at build
    # time, since dynamic int8 scales depend on the whole batch (padding included).
    got = pipe.logits_for_ids(fixtures["input_ids"], batch_size=1)
    want = fixtures["logits"]
    if got.shape != want.shape:
        raise BundleError(f"fixtures hold logits of shape {want.shape}, the model gives {got.shape}")
    return ParityReport(
        model_file=pipe.model.file,
        n=len(ids),
        token_ids_equal=int(same_ids),
        max_abs_diff=float(np.max(np.abs(got - want))) if len(ids) else 0.0,
        argmax_agree=int(np.sum(got.argmax(-1) == want.argmax(-1))),
        tolerance=float(pipe.model.tolerance),
    )
