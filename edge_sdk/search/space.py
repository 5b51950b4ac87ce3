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
from ..prune.step import LowRankConfig, PruneConfig
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
    trim_config: TrimConfig = TrimConfig(keep_frequent=15000)  # as the trimmed recipe (BENCHMARKS.md)
    embedding_ranks: tuple[int | None, ...] = (None,)  # low-rank embedding tables to try; None: full rank
    precisions: tuple[str, ...] = ("int8",)  # the target's int8 scheme, or "int4" (4-bit weight blocks, ONNX)
    distill: DistillConfig = DistillConfig()  # how a shallower student is distilled (not searched: costly)
    recovery_epochs: int = 3  # distillation after pruning or factorization

    def __post_init__(self):
        for name in ("keep_heads", "keep_neurons"):
            low, high = getattr(self, name)
            check(0 < low <= high <= FULL, f"{name} must be a range within (0, 1], got {low}..{high}")
        check(all(d >= 1 for d in self.depths), f"depths must be at least 1, got {self.depths}")
        check(bool(self.trim) and bool(self.embedding_ranks), "trim and embedding_ranks need a choice each")
        check(set(self.precisions) <= {"int8", "int4"} and bool(self.precisions),
              f"precisions are int8 and/or int4, got {self.precisions}")


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
    trim = _choice(trial, "trim", knobs.trim)
    if trim:
        steps.append(Step("trim", knobs.trim_config))
    rank = _choice(trial, "embedding_rank", knobs.embedding_ranks)
    if rank is not None:
        steps.append(Step("lowrank", LowRankConfig(embedding_rank=rank, epochs=knobs.recovery_epochs)))
    quantization = base.onnx_quantization
    if _choice(trial, "precision", knobs.precisions) == "int4":
        from ..recipes import load_recipe

        quantization = load_recipe("int4").onnx_quantization
    return dataclasses.replace(base, name=f"{base.name}-trial-{trial.number}", steps=tuple(steps),
                               onnx_quantization=quantization, why=f"{base.why}; trial {trial.number} of a search")


def _choice(trial, name: str, choices: tuple):
    """A categorical knob; one choice is no knob (the study shows only what it searched)."""
    return trial.suggest_categorical(name, list(choices)) if len(choices) > 1 else choices[0]


def _fraction(trial, name: str, bounds: tuple[float, float], units: int) -> float:
    """A kept fraction on a grid of 1/units (a head is 1/12 of MiniLM's), searched as an integer."""
    low, high = max(1, round(bounds[0] * units)), round(bounds[1] * units)
    if low >= high:
        return high / units
    return trial.suggest_int(name, low, high) / units
