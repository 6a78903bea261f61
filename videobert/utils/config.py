"""Dataclass configurations: loaded from YAML or JSON files, overridden by ``key=value`` pairs.

``load_config(TrainConfig, "run.yaml", ["optimizer.lr=1e-5", "steps=100"])`` reads the file,
applies the overrides (dotted keys reach nested dataclasses; values are parsed as YAML, so
``1e-5``, ``true`` and ``[1, 2]`` get their natural types) and builds the dataclass, with a
clear error naming any unknown key.
"""

from __future__ import annotations

import dataclasses
import json
import os
import typing
from pathlib import Path
from typing import Any, Iterable, TypeVar

import yaml

C = TypeVar("C")


def read_mapping(path: str | os.PathLike) -> dict[str, Any]:
    """A YAML or JSON file (by extension) holding one mapping."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise ValueError(f"{path}: not valid {path.suffix.lstrip('.') or 'YAML'}: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of config keys, got {type(data).__name__}")
    return data


def apply_overrides(data: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Set ``a.b.c=value`` pairs in a nested dict (a copy is returned)."""
    data = json.loads(json.dumps(data))
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ValueError(f"override {item!r} is not of the form key=value")
        node = data
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ValueError(f"override {item!r}: {part!r} is not a section")
        node[leaf] = yaml.safe_load(raw)
    return data


def from_dict(cls: type[C], data: dict[str, Any], where: str = "") -> C:
    """Build dataclass ``cls`` from a nested dict, rejecting unknown keys by name."""
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ValueError(f"unknown config key(s) {unknown} in {where or cls.__name__}; known: {sorted(fields)}")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, value in data.items():
        hint = hints.get(name)
        if dataclasses.is_dataclass(hint) and isinstance(value, dict):
            value = from_dict(hint, value, f"{where}{name}.")
        elif hint is float and isinstance(value, (str, int)) and not isinstance(value, bool):
            value = _to_float(value, f"{where}{name}")
        kwargs[name] = value
    return cls(**kwargs)


def _to_float(value: str | int, key: str) -> float:
    """YAML 1.1 reads ``1e-5`` (no dot) as a string; a float field takes it as the number it means."""
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"config key {key}: expected a number, got {value!r}") from None


def load_config(cls: type[C], path: str | os.PathLike | None = None, overrides: Iterable[str] = ()) -> C:
    data = read_mapping(path) if path is not None else {}
    return from_dict(cls, apply_overrides(data, overrides))


def to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


class JsonConfig:
    """A model config dataclass's file methods (the families' configs share them): ``replace``,
    ``to_dict`` / ``from_dict`` and ``to_json`` / ``from_json``; ``model_type`` names it in errors."""

    model_type: str

    def replace(self: C, **overrides: Any) -> C:
        return dataclasses.replace(self, **overrides)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls: type[C], data: dict[str, Any]) -> C:
        return from_dict(cls, data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls: type[C], text_or_path: str | os.PathLike) -> C:
        """From a JSON string or a path to a JSON file."""
        text = str(text_or_path)
        if text.lstrip().startswith("{"):
            return cls.from_dict(json.loads(text))
        path = Path(text_or_path)
        try:
            return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except (json.JSONDecodeError, ValueError) as exc:
            raise ValueError(f"{path}: not a valid {cls.model_type} config: {exc}") from exc
