"""Build recipes: named TOML files beside this module saying which compression steps a build runs.

A recipe is read into a typed, frozen `Recipe` when it is loaded: a key that does not exist, a
value of the wrong type or out of range fails then, naming the file and the key. Its parts:

- `[teacher]`: how the teacher is fine-tuned when the model has no head for the labels
  (`train.teacher.TeacherConfig`);
- `[[steps]]`: model steps run after the teacher, in order, each `step = "<name>"` plus that step's
  settings (`builder.steps.MODEL_STEPS` lists the names and their config types); `qat` comes last;
- `[onnx_quantization]` / `[tflite_quantization]`: replace the targets' int8 scheme for ONNX /
  TFLite model files (ONNX Runtime and LiteRT settings differ, so each format reads its own);
- `max_accuracy_drop`: points the model steps may lose against the teacher (FP32, PyTorch);
- `oos_threshold = "fit"`: an out-of-scope threshold fitted on the validation split.

A recipe is recorded in every bundle it makes. Adding a recipe is adding a file.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Literal

from ..config import available, check, from_table, read_named, to_table
from ..errors import ConfigError
from ..profiles import OnnxQuantization, TFLiteQuantization
from ..train.teacher import TeacherConfig


@dataclass(frozen=True)
class Step:
    name: str  # a key of builder.steps.MODEL_STEPS
    config: Any  # that step's frozen config


@dataclass(frozen=True)
class Recipe:
    name: str
    why: str
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    steps: tuple[Step, ...] = ()
    onnx_quantization: OnnxQuantization | None = None
    tflite_quantization: TFLiteQuantization | None = None
    # Points of test accuracy the model steps (distillation, pruning, ...) may lose against the
    # teacher, in FP32 before any quantization; None: not bounded. Quantization and export are held
    # to each target's own budget against the model they start from.
    max_accuracy_drop: float | None = None
    # "fit": an out-of-scope threshold on the top probability, fitted on the validation split for
    # the bundle's first model file and written into its manifest (builder/threshold.py).
    oos_threshold: Literal["none", "fit"] = "none"

    def __post_init__(self):
        check(self.max_accuracy_drop is None or self.max_accuracy_drop >= 0,
              f"max_accuracy_drop must be >= 0, got {self.max_accuracy_drop}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def available_recipes() -> list[str]:
    return available(resources.files(__name__))


def load_recipe(name_or_path: str) -> Recipe:
    return parse_recipe(*read_named(name_or_path, resources.files(__name__), "recipe"))


def parse_recipe(data: dict[str, Any], where: str = "recipe") -> Recipe:
    from ..builder.steps import MODEL_STEPS  # the registry of step names and their config types

    data = dict(data)
    if "distill" in data:  # recipes written before [[steps]] held one [distill] table
        data.setdefault("steps", []).insert(0, {"step": "distill", **data.pop("distill")})
    entries = data.pop("steps", [])
    if not isinstance(entries, list):
        raise ConfigError(f"{where}: steps must be an array of tables ([[steps]])")
    steps = []
    for i, entry in enumerate(entries, start=1):
        at = f"{where} [[steps]] {i}"
        if not isinstance(entry, dict) or "step" not in entry:
            raise ConfigError(f"{at}: needs step = one of {', '.join(MODEL_STEPS)}")
        settings = dict(entry)
        name = settings.pop("step")
        if name not in MODEL_STEPS:
            raise ConfigError(f"{at}: unknown step {name!r}; known steps: {', '.join(MODEL_STEPS)}")
        steps.append(Step(name, from_table(MODEL_STEPS[name].config, settings, f"{at} ({name})")))
    if any(step.name == "qat" for step in steps[:-1]):
        raise ConfigError(f"{where}: qat must be the last of [[steps]]: its int8 scales were trained with "
                          "the weights it leaves, which a later step would change")
    parts = {"teacher": TeacherConfig, "onnx_quantization": OnnxQuantization,
             "tflite_quantization": TFLiteQuantization}
    typed = {key: from_table(kind, data.pop(key), f"{where} [{key}]") for key, kind in parts.items() if key in data}
    return from_table(Recipe, data, where, steps=tuple(steps), **typed)


def dump_recipe(recipe: Recipe) -> str:
    """The TOML text that `load_recipe` reads back as `recipe`."""
    import tomli_w

    data: dict[str, Any] = {"name": recipe.name, "why": recipe.why}
    if recipe.max_accuracy_drop is not None:
        data["max_accuracy_drop"] = recipe.max_accuracy_drop
    data["oos_threshold"] = recipe.oos_threshold
    data["teacher"] = to_table(recipe.teacher)
    for key in ("onnx_quantization", "tflite_quantization"):
        if getattr(recipe, key) is not None:
            data[key] = to_table(getattr(recipe, key))
    if recipe.steps:
        data["steps"] = [{"step": s.name, **to_table(s.config)} for s in recipe.steps]
    return tomli_w.dumps(data)
