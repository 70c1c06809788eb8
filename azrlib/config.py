"""Frozen dataclass configs read from YAML, strictly.

Every config class declares its fields with `option(default, "help")`; `load_config(cls, path)`
reads a YAML file (optionally a preset name from `configs/`; a file may start from another under
`base:` and list only what it changes), applies `key=value` overrides, and
stops with a message naming the key when a key is unknown or a value has the wrong type. The
resolved config is saved with every run (`config_to_dict`).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any

import yaml

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"


class ConfigError(ValueError):
    """A config file or override that cannot be used; the message names the key."""


def option(default: Any, help: str, **kwargs) -> Any:  # noqa: A002 - mirrors argparse's name
    """A dataclass field with a help string (shown by `describe`)."""
    if isinstance(default, (list, dict, set)):
        raise TypeError("use a tuple (immutable) for sequence defaults")
    return dataclasses.field(default=default, metadata={"help": help}, **kwargs)


def describe(cls) -> str:
    """One line per field: name, type, default, help."""
    hints = typing.get_type_hints(cls)
    lines = []
    for f in dataclasses.fields(cls):
        lines.append(f"{f.name:28s} {_type_name(hints[f.name]):18s} {f.default!r:>14}  {f.metadata.get('help', '')}")
    return "\n".join(lines)


def _type_name(tp) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def resolve_path(name_or_path: str | Path) -> Path:
    """A preset name (`tiny`) or a YAML path; error naming what was tried."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml"):
        if not p.is_file():
            raise ConfigError(f"config file not found: {p}")
        return p
    preset = CONFIG_DIR / f"{name_or_path}.yaml"
    if preset.is_file():
        return preset
    known = sorted(q.stem for q in CONFIG_DIR.glob("*.yaml"))
    raise ConfigError(f"no config file {p} and no preset {name_or_path!r} (presets: {', '.join(known)})")


BASE_KEY = "base"


def load_config(cls, source: str | Path | dict | None = None, overrides: dict | list[str] | None = None):
    """Build `cls` from a YAML file / preset name / dict, then apply overrides (`key=value`
    strings parsed as YAML scalars, or a dict). A file (or dict) may name another preset or YAML
    file under `base:`; its keys are read first and this file's keys override them."""
    data: dict = {}
    if isinstance(source, dict):
        data = dict(source)
        if BASE_KEY in data:
            base = data.pop(BASE_KEY)
            data = {**read_yaml(base), **data}
    elif source is not None:
        data = read_yaml(source)
    if isinstance(overrides, list):
        parsed = {}
        for item in overrides:
            if "=" not in item:
                raise ConfigError(f"override {item!r} is not key=value")
            key, value = item.split("=", 1)
            parsed[key.strip()] = yaml.safe_load(value)
        overrides = parsed
    data.update(overrides or {})
    return from_dict(cls, data)


def read_yaml(source: str | Path, _seen: tuple[Path, ...] = ()) -> dict:
    """The keys of a preset or YAML file, with its `base:` chain resolved (a base path is tried
    relative to the file first, then as a preset name)."""
    path = resolve_path(source)
    if path.resolve() in _seen:
        chain = " -> ".join(str(p) for p in (*_seen, path.resolve()))
        raise ConfigError(f"{path}: its {BASE_KEY}: chain comes back to itself ({chain})")
    try:
        loaded = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({e})") from None
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys to values")
    base = loaded.pop(BASE_KEY, None)
    if base is None:
        return loaded
    if not isinstance(base, str) or not base:
        raise ConfigError(f"{path}: {BASE_KEY} must name a preset or a YAML file, got {base!r}")
    sibling = path.parent / base
    parent = read_yaml(sibling if sibling.suffix in (".yaml", ".yml") and sibling.is_file() else base,
                       (*_seen, path.resolve()))
    return {**parent, **loaded}


def from_dict(cls, data: dict, where: str = ""):
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"unknown config key{'s' if len(unknown) > 1 else ''} "
                          f"{', '.join(where + k for k in unknown)} for {cls.__name__}; "
                          f"known keys: {', '.join(sorted(names))}")
    kwargs = {k: _coerce(hints[k], v, where + k) for k, v in data.items()}
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{cls.__name__}: {e}") from None


def _coerce(tp, value, key: str):
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(arg, value, key)
            except ConfigError:
                continue
        raise ConfigError(f"config key {key}: {value!r} is not {_type_name(tp)}")
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"config key {key}: expected a mapping")
        return from_dict(tp, value, where=key + ".")
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"config key {key}: expected a list, got {value!r}")
        args = typing.get_args(tp)
        inner = args[0] if args else Any
        return tuple(_coerce(inner, v, f"{key}[{i}]") for i, v in enumerate(value))
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"config key {key}: expected true/false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"config key {key}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads 1e-6 as a string
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"config key {key}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"config key {key}: expected a string, got {value!r}")
    return value


def config_to_dict(cfg) -> dict:
    d = dataclasses.asdict(cfg)
    return _plain(d)


def _plain(x):
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    return x
