"""Typed, frozen configs from TOML tables: unknown keys and wrong types are refused at load time.

Recipes and target profiles are data, read into frozen dataclasses by `from_table`. A typo such
as `calibraton = "entropy"` fails when the file is loaded, naming the file, the key and the
closest known key, instead of as a bare TypeError after the teacher has trained. Field types come
from the dataclass annotations (int, float, bool, str, Literal choices, tuples, optional values);
ranges are checked by each dataclass's `__post_init__`, which raises `ConfigError`.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from typing import Any, Literal, Union

from .errors import ConfigError


def from_table(cls, table: Any, where: str, **fixed):
    """`cls(**table)` after checking every key and value against `cls`'s fields.

    where: names the file and table in messages ("recipe x.toml [distill]"). fixed: fields the
    caller sets itself (already typed), which the table may not hold.
    """
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: expected a table of settings, got {_shown(table)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init and f.name not in fixed}
    unknown = [key for key in table if key not in fields]
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}{_suggestion(unknown[0], fields)}; "
                          f"known keys: {', '.join(fields)}")
    missing = [name for name, f in fields.items() if name not in table
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        raise ConfigError(f"{where}: missing key {missing[0]!r}")
    values = {key: typed(value, hints[key], f"{where}: {key}") for key, value in table.items()}
    try:
        return cls(**values, **fixed)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def available(folder) -> list[str]:
    """Names of the .toml files in a package folder (importlib.resources), without the suffix."""
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml"))


def read_named(name_or_path: str, folder, kind: str) -> tuple[dict[str, Any], str]:
    """A TOML file by path (".toml" that exists) or by name in a package folder, parsed, and how to
    name it in messages; an unknown name or bad TOML is a ConfigError listing the known names."""
    import tomllib
    from pathlib import Path

    path = Path(name_or_path)
    if name_or_path.endswith(".toml") and path.is_file():
        text, where = path.read_text(encoding="utf-8"), f"{kind} {path}"
    else:
        entry = folder / f"{name_or_path}.toml"
        if not entry.is_file():
            raise ConfigError(f"unknown {kind} {name_or_path!r}; known {kind}s: {', '.join(available(folder))} "
                              f"(or give a path to a .toml {kind})")
        text, where = entry.read_text(encoding="utf-8"), f"{kind} {name_or_path}"
    try:
        return tomllib.loads(text), where
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def to_table(config) -> dict[str, Any]:
    """The TOML-ready dict of a config: tuples as lists, None left out (TOML has no null)."""
    def plain(value):
        if isinstance(value, (tuple, list)):
            return [plain(v) for v in value]
        if dataclasses.is_dataclass(value):
            return to_table(value)
        return value

    return {f.name: plain(getattr(config, f.name)) for f in dataclasses.fields(config)
            if f.init and getattr(config, f.name) is not None}


def typed(value: Any, hint: Any, where: str) -> Any:
    """`value` checked against the annotation `hint` (lists become tuples; ints are accepted as floats)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        errors = []
        for option in options:
            try:
                return typed(value, option, where)
            except ConfigError as exc:
                errors.append(exc)
        raise errors[0] if len(errors) == 1 else ConfigError(
            f"{where} must be {' or '.join(_name(o) for o in options)}, got {_shown(value)}")
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{where} must be one of {', '.join(map(repr, args))}, got {_shown(value)}")
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where} must be a list, got {_shown(value)}")
        item = args[0] if len(args) == 2 and args[1] is Ellipsis else Any
        return tuple(typed(v, item, f"{where}[{i}]") for i, v in enumerate(value))
    if hint is Any:
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where} must be a number, got {_shown(value)}")
        return float(value)
    if hint in (int, str, bool):
        if isinstance(value, bool) != (hint is bool) or not isinstance(value, hint):
            raise ConfigError(f"{where} must be {_name(hint)}, got {_shown(value)}")
        return value
    raise TypeError(f"{where}: no rule for fields of type {hint!r}")  # a programming error


def check(condition: bool, message: str) -> None:
    """For `__post_init__` range checks: raise ConfigError(message) unless `condition`."""
    if not condition:
        raise ConfigError(message)


def _suggestion(key: str, known) -> str:
    close = difflib.get_close_matches(key, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _name(hint: Any) -> str:
    if typing.get_origin(hint) is Literal:
        return "one of " + ", ".join(map(repr, typing.get_args(hint)))
    if typing.get_origin(hint) is tuple:
        return "a list"
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(hint, str(hint))


def _shown(value: Any) -> str:
    text = repr(value)
    return f"{text[:60]}…" if len(text) > 60 else text
