"""Configuration loading: safe YAML, `--set` overrides, and typed, strict dataclass building.

Every config section is a frozen dataclass whose fields carry metadata (`doc`, `unit`, `min`,
`choices`). `build()` turns a plain dict into such a dataclass, rejecting unknown keys, wrong
types and out-of-range values with an `InputError` naming the file and the dotted field path.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import yaml

from hwsim.errors import InputError


def spec(doc: str, *, unit: str = "", min: float | None = None, default: Any = dataclasses.MISSING,
         choices: tuple | None = None, exclusive_min: bool = False, default_factory: Any = dataclasses.MISSING):
    """A dataclass field with documentation and validation metadata."""
    md = {"doc": doc, "unit": unit, "min": min, "choices": choices, "exclusive_min": exclusive_min}
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=md)
    return dataclasses.field(default=default, metadata=md)


def load_yaml(path: str | Path) -> Any:
    """Read a YAML file with the safe loader; syntax errors become InputError."""
    p = Path(path)
    try:
        text = p.read_text()
    except FileNotFoundError:
        raise InputError(str(path), "", "file not found") from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as exc:
        raise InputError(str(path), "", f"cannot read file ({exc.__class__.__name__})") from None
    return parse_yaml(text, str(path))


# libyaml's parser when PyYAML was built with it (10x faster: a run parses ~18 preset files), with
# the same safe constructors and resolver as `yaml.safe_load`.
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_yaml(text: str, file: str) -> Any:
    try:
        return yaml.load(text, Loader=_SAFE_LOADER)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "?"
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InputError(file, "", f"YAML syntax error at {where}: {problem}") from None


def deep_merge(base: dict, override: dict) -> dict:
    """Recursive dict merge; values of `override` win; neither input is modified."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def apply_overrides(data: dict, assignments: list[str] | None, file: str = "--set") -> dict:
    """Apply `a.b.c=value` strings (value parsed as YAML) to a nested dict copy."""
    out = deep_merge({}, data)
    for item in assignments or []:
        if "=" not in item:
            raise InputError(file, item, "expected key.path=value")
        key, raw = item.split("=", 1)
        parts = [k for k in key.strip().split(".") if k]
        if not parts:
            raise InputError(file, item, "empty key path")
        value = parse_yaml(raw, file)
        node = out
        for i, part in enumerate(parts[:-1]):
            nxt = node.get(part)
            if nxt is None:
                nxt = {}
            elif not isinstance(nxt, dict):
                raise InputError(file, ".".join(parts[: i + 1]), f"is a value ({nxt!r}), not a section")
            else:
                nxt = dict(nxt)
            node[part] = nxt
            node = nxt
        node[parts[-1]] = value
    return out


def _type_name(tp: Any) -> str:
    if get_origin(tp) is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    origin = get_origin(tp)
    if origin in (tuple, list):
        return "a list"
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in get_args(tp))
    if origin is dict or tp is dict:
        return "a mapping"
    return {int: "an integer", float: "a number", str: "a string", bool: "true/false",
            type(None): "null"}.get(tp, str(tp))


def _convert(tp: Any, value: Any, file: str, path: str) -> Any:
    origin = get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(arg, value, file, path)
            except InputError as exc:
                errors.append(exc)
        raise InputError(file, path, f"got {value!r}; expected {_type_name(tp)}")
    if origin is Literal:
        if value in get_args(tp) and type(value) in {type(a) for a in get_args(tp)}:
            return value
        raise InputError(file, path, f"got {value!r}; expected {_type_name(tp)}")
    if dataclasses.is_dataclass(tp):
        return build(tp, value, file=file, path=path)
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise InputError(file, path, f"got {value!r}; expected a list")
        args = get_args(tp)
        item_tp = args[0] if args else Any
        return tuple(_convert(item_tp, v, file, f"{path}[{i}]") for i, v in enumerate(value))
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise InputError(file, path, f"got {value!r}; expected a mapping")
        _, vt = get_args(tp) or (str, Any)
        if vt is Any:
            return dict(value)
        return {str(k): _convert(vt, v, file, f"{path}.{k}") for k, v in value.items()}
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    raise InputError(file, path, f"got {value!r}; expected {_type_name(tp)}")


def build(cls: type, data: Any, *, file: str | None = None, path: str = "") -> Any:
    """Build dataclass `cls` from `data`, strictly. Missing required fields, unknown keys, wrong
    types, values under `min` and values outside `choices` raise InputError."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise InputError(file, path, f"got {data!r}; expected a mapping")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = [k for k in data if k not in fields]
    if unknown:
        raise InputError(file, field_path(path, str(unknown[0])),
                         f"unknown key; valid keys: {', '.join(sorted(fields))}")
    kwargs = {}
    for name, f in fields.items():
        fpath = field_path(path, name)
        if name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise InputError(file, fpath, f"missing required field ({f.metadata.get('doc', '')})")
            continue
        value = _convert(hints[name], data[name], file, fpath)
        _check_range(f, value, file, fpath)
        kwargs[name] = value
    obj = cls(**kwargs)
    validate = getattr(obj, "validate", None)
    if validate is not None:
        validate(file, path)
    return obj


def _check_range(f: dataclasses.Field, value: Any, file: str | None, path: str) -> None:
    lo = f.metadata.get("min")
    if lo is not None and isinstance(value, (int, float)) and not isinstance(value, bool):
        if value < lo or (f.metadata.get("exclusive_min") and value <= lo):
            op = ">" if f.metadata.get("exclusive_min") else ">="
            raise InputError(file, path, f"got {value!r}; expected a value {op} {lo}")
    choices = f.metadata.get("choices")
    if choices is not None and value not in choices:
        raise InputError(file, path, f"got {value!r}; expected one of {', '.join(map(str, choices))}")


def field_path(path: str, name: str) -> str:
    """The dotted path of field `name` under `path` (error messages)."""
    return f"{path}.{name}" if path else name


def to_dict(obj: Any) -> Any:
    """Dataclass (nested) to plain dict/list values for YAML/JSON output."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


def json_schema(cls: type) -> dict:
    """JSON Schema (draft 2020-12 subset) of a config dataclass, from its field metadata."""
    hints = typing.get_type_hints(cls)
    props = {}
    required = []
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        sch = _schema_of(hints[f.name])
        doc = f.metadata.get("doc")
        unit = f.metadata.get("unit")
        if doc:
            sch["description"] = doc + (f" [{unit}]" if unit else "")
        if f.metadata.get("min") is not None:
            key = "exclusiveMinimum" if f.metadata.get("exclusive_min") else "minimum"
            sch[key] = f.metadata["min"]
        if f.metadata.get("choices"):
            sch["enum"] = list(f.metadata["choices"])
        if f.default is not dataclasses.MISSING and isinstance(f.default, (int, float, str, bool)):
            sch["default"] = f.default
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            required.append(f.name)
        props[f.name] = sch
    out = {"type": "object", "properties": props, "additionalProperties": False}
    if cls.__doc__:
        out["description"] = cls.__doc__.strip().splitlines()[0]
    if required:
        out["required"] = required
    return out


def _schema_of(tp: Any) -> dict:
    origin = get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return {"anyOf": [_schema_of(a) for a in get_args(tp)]}
    if origin is Literal:
        return {"enum": list(get_args(tp))}
    if dataclasses.is_dataclass(tp):
        return json_schema(tp)
    if origin in (tuple, list):
        args = get_args(tp)
        return {"type": "array", "items": _schema_of(args[0]) if args else {}}
    if origin is dict or tp is dict:
        return {"type": "object"}
    return {int: {"type": "integer"}, float: {"type": "number"}, str: {"type": "string"},
            bool: {"type": "boolean"}, type(None): {"type": "null"}}.get(tp, {})
