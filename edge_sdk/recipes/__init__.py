"""Build recipes: named TOML files beside this module saying which compression steps a build runs.

A recipe is recorded in every bundle it makes. Adding a recipe is adding a file.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from ..profiles import ProfileError


@dataclass(frozen=True)
class Recipe:
    name: str
    why: str
    teacher: dict[str, Any] = field(default_factory=dict)  # TeacherConfig overrides
    distill: dict[str, Any] | None = None  # None: no student; else DistillConfig fields
    quantization: dict[str, Any] = field(default_factory=dict)  # overrides for the target's int8 models

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def available_recipes() -> list[str]:
    return sorted(p.name[:-5] for p in resources.files(__name__).iterdir() if p.name.endswith(".toml"))


def load_recipe(name_or_path: str) -> Recipe:
    path = Path(name_or_path)
    if name_or_path.endswith(".toml") and path.is_file():
        text = path.read_text(encoding="utf-8")
    else:
        entry = resources.files(__name__) / f"{name_or_path}.toml"
        if not entry.is_file():
            raise ProfileError(f"unknown recipe {name_or_path!r}; known recipes: {', '.join(available_recipes())}")
        text = entry.read_text(encoding="utf-8")
    try:
        data = tomllib.loads(text)
        distill = data.pop("distill", None)
        if distill is not None and not distill.pop("enabled", True):
            distill = None
        return Recipe(distill=distill, **data)
    except (tomllib.TOMLDecodeError, TypeError) as exc:
        raise ProfileError(f"recipe {name_or_path}: {exc}") from None


def dump_recipe(recipe: Recipe) -> str:
    """The TOML text that `load_recipe` reads back as `recipe` (TOML has no null: None values are left out)."""
    import tomli_w

    data: dict[str, Any] = {"name": recipe.name, "why": recipe.why}
    for table in ("teacher", "distill", "quantization"):
        values = getattr(recipe, table)
        if values is not None:
            data[table] = {k: v for k, v in values.items() if v is not None}
    return tomli_w.dumps(data)
