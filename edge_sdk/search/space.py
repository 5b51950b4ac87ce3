"""The knobs a search turns, and how one trial's choices become a recipe.

A trial is a recipe like any other (`[[steps]]` + quantization), so what a search finds builds
through the normal build, guard included, and every step it trains is cached by its settings:
trials that share a student depth share that student.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..config import check
from ..distill.config import DistillConfig
from ..prune.step import PruneConfig
from ..recipes import Recipe, Step
from ..trim.step import TrimConfig

FULL = 1.0


@dataclass(frozen=True)
class Knobs:
    """What a search may change. A knob with one choice is fixed (`edge-sdk prune` fixes all but
    the pruning fractions)."""

    depths: tuple[int, ...] = ()  # student depths (teacher layers spread evenly, distilled); () = the teacher's
    keep_heads: tuple[float, float] = (0.25, FULL)  # fraction of heads kept per layer, searched in steps of 1/heads
    keep_neurons: tuple[float, float] = (0.25, FULL)  # fraction of FFN neurons kept, in steps of 1/16
    trim: tuple[bool, ...] = (False, True)  # vocabulary trimming on or off
    distill: DistillConfig = DistillConfig()  # how a shallower student is distilled (not searched: costly)
    recovery_epochs: int = 3  # distillation after pruning

    def __post_init__(self):
        for name in ("keep_heads", "keep_neurons"):
            low, high = getattr(self, name)
            check(0 < low <= high <= FULL, f"{name} must be a range within (0, 1], got {low}..{high}")
        check(all(d >= 1 for d in self.depths), f"depths must be at least 1, got {self.depths}")
        check(bool(self.trim), "trim needs at least one choice")


def suggest(trial, knobs: Knobs, base: Recipe, teacher_layers: int, teacher_heads: int) -> Recipe:
    """The recipe trial `trial` tries: `base`'s teacher and quantization, then the chosen steps."""
    from ..distill.student import spread_layers

    steps: list[Step] = list(base.steps)
    depth = trial.suggest_categorical("depth", list(knobs.depths)) if len(knobs.depths) > 1 else \
        (knobs.depths[0] if knobs.depths else teacher_layers)
    if depth < teacher_layers:
        steps.append(Step("distill", dataclasses.replace(knobs.distill, layers=spread_layers(teacher_layers, depth))))
    heads = _fraction(trial, "keep_heads", knobs.keep_heads, teacher_heads)
    neurons = _fraction(trial, "keep_neurons", knobs.keep_neurons, 16)
    if heads < FULL or neurons < FULL:
        steps.append(Step("prune", PruneConfig(keep_heads=heads, keep_neurons=neurons,
                                               epochs=knobs.recovery_epochs)))
    trim = trial.suggest_categorical("trim", list(knobs.trim)) if len(knobs.trim) > 1 else knobs.trim[0]
    if trim:
        steps.append(Step("trim", TrimConfig()))
    return dataclasses.replace(base, name=f"{base.name}-trial-{trial.number}", steps=tuple(steps),
                               why=f"{base.why}; trial {trial.number} of a search")


def _fraction(trial, name: str, bounds: tuple[float, float], units: int) -> float:
    """A kept fraction on a grid of 1/units (a head is 1/12 of MiniLM's), searched as an integer."""
    low, high = max(1, round(bounds[0] * units)), round(bounds[1] * units)
    if low >= high:
        return high / units
    return trial.suggest_int(name, low, high) / units
