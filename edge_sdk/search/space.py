"""The knobs a search turns, and how one trial's choices become a recipe.

A trial is a recipe like any other (`[[steps]]` + quantization), so what a search finds builds
through the normal build, guard included, and every step it trains is cached by its settings:
trials that share a student depth share that student.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ..config import check
from ..distill.config import DistillConfig
from ..errors import EdgeSdkError
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
    trim_config: TrimConfig = TrimConfig(shared_rows=256)  # as the trimmed recipe (BENCHMARKS.md)
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


def params_of(recipe: Recipe, knobs: Knobs, base: Recipe, teacher_layers: int, teacher_heads: int) -> dict:
    """The trial parameters with which `suggest` makes `recipe` exactly: how a hand-made recipe becomes
    one of a search's first trials. EdgeSdkError saying why when the knobs cannot make it (a step they
    do not turn, a setting they fix otherwise, a value outside their ranges)."""
    import warnings

    import optuna

    params: dict[str, Any] = {"depth": teacher_layers, "keep_heads": teacher_heads, "keep_neurons": 16,
                              "trim": False, "embedding_rank": None, "precision": "int8"}
    for step in recipe.steps[len(base.steps):]:
        config = step.config
        if step.name == "distill" and config.layers:
            params["depth"] = len(config.layers)
        elif step.name == "prune":
            params["keep_heads"] = round(config.keep_heads * teacher_heads)
            params["keep_neurons"] = round(config.keep_neurons * 16)
        elif step.name == "trim":
            params["trim"] = True
        elif step.name == "lowrank":
            params["embedding_rank"] = config.embedding_rank
        else:
            raise EdgeSdkError(f"a search does not make its {step.name} step")
    if recipe.onnx_quantization is not None and recipe.onnx_quantization.method == "weight-only":
        params["precision"] = "int4"
    trial = optuna.trial.FixedTrial(params)
    try:
        with warnings.catch_warnings():  # a value outside the knobs' ranges: said below
            warnings.simplefilter("ignore")
            made = suggest(trial, knobs, base, teacher_layers, teacher_heads)
    except ValueError as exc:  # a categorical value that is not one of the choices
        raise EdgeSdkError(f"a setting is not among the search's choices ({exc})") from None
    for name, units in (("keep_heads", teacher_heads), ("keep_neurons", 16)):
        searched = trial.distributions.get(name)
        if isinstance(searched, optuna.distributions.IntDistribution) and \
                not searched.low <= params[name] <= searched.high:
            raise EdgeSdkError(f"its {name} ({params[name]} of {units}) lies outside the search's range "
                               f"({searched.low} to {searched.high} of {units})")
    differences = _differences(made, recipe)
    if differences:
        raise EdgeSdkError("; ".join(differences))
    return params


def _differences(made: Recipe, recipe: Recipe) -> list[str]:
    """What `recipe` sets otherwise than the search's recipe `made`, in words."""
    said = [f"its {part} differs from the search's" for part in ("teacher", "onnx_quantization",
                                                                  "tflite_quantization")
            if getattr(made, part) != getattr(recipe, part)]
    theirs, ours = [s.name for s in recipe.steps], [s.name for s in made.steps]
    if theirs != ours:
        return [*said, f"its steps are {theirs}, the search makes {ours}"]
    for step, mine in zip(recipe.steps, made.steps, strict=True):
        for f in dataclasses.fields(step.config):
            value, searched = getattr(step.config, f.name), getattr(mine.config, f.name)
            if value != searched:
                said.append(f"{step.name} {f.name} = {value!r} (the search's: {searched!r})")
    return said


def _choice(trial, name: str, choices: tuple):
    """A categorical knob; one choice is no knob (the study shows only what it searched)."""
    return trial.suggest_categorical(name, list(choices)) if len(choices) > 1 else choices[0]


def _fraction(trial, name: str, bounds: tuple[float, float], units: int) -> float:
    """A kept fraction on a grid of 1/units (a head is 1/12 of MiniLM's), searched as an integer."""
    low, high = max(1, round(bounds[0] * units)), round(bounds[1] * units)
    if low >= high:
        return high / units
    return trial.suggest_int(name, low, high) / units
