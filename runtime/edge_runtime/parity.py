"""Replaying a bundle's parity fixtures: texts with the token ids and logits recorded at build time.

The same fixtures are replayed wherever the bundle runs (host, emulated Raspberry Pi, the mobile
demo), so "same predictions everywhere" is a measured statement.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import BundleError
from .fixtures import Fixtures
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


def load_fixtures(pipe: Pipeline) -> Fixtures:
    name = pipe.manifest.fixtures_file
    if name is None:
        raise BundleError("bundle has no parity fixtures")
    return Fixtures.read(pipe.bundle.path(name))


def replay(pipe: Pipeline) -> ParityReport:
    fixtures = load_fixtures(pipe)
    want = fixtures.logits_for(pipe.model.file)
    ids = pipe.encoder.ids(list(fixtures.texts))
    recorded = [list(row) for row in fixtures.input_ids]
    same_ids = sum(a == b for a, b in zip(ids, recorded))
    # Recorded ids, so a tokenizer difference cannot hide a model difference; batch 1 as at build
    # time, since dynamic int8 scales depend on the whole batch (padding included).
    got = pipe.logits_for_ids(recorded, batch_size=1)
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
