"""Shipped presets (package data): `hwsim/presets/<kind>/<name>.yaml`.

Each preset file is a mapping with `description:` (one line), `source:` (where its numbers come
from: a string, or a mapping from section or dotted field to citation) and its payload keys.
"""

from __future__ import annotations

from importlib import resources

from hwsim.config import deep_merge, field_path, parse_yaml
from hwsim.errors import InputError

KINDS = ("dram", "pim", "asic", "gpu", "cpu", "energy", "models")


def _folder(kind: str):
    if kind not in KINDS:
        raise InputError(None, "preset", f"unknown preset kind {kind!r}; valid kinds: {', '.join(KINDS)}")
    return resources.files("hwsim.presets").joinpath(kind)


def list_presets(kind: str) -> list[str]:
    """Names of the shipped presets of one kind, sorted."""
    return sorted(p.name[:-5] for p in _folder(kind).iterdir() if p.name.endswith(".yaml"))


def load_preset(kind: str, name: str, *, file: str | None = None, path: str = "preset") -> dict:
    """The raw mapping of preset `name` of `kind`; unknown names raise InputError listing choices."""
    if not isinstance(name, str) or name not in list_presets(kind):
        raise InputError(file, path, f"unknown {kind} preset {name!r}; valid: {', '.join(list_presets(kind))}")
    ref = _folder(kind).joinpath(name + ".yaml")
    data = parse_yaml(ref.read_text(), f"<preset {kind}/{name}>")
    if not isinstance(data, dict):
        raise InputError(f"<preset {kind}/{name}>", "", "preset is not a mapping")
    return data


def preset_payload(data: dict) -> dict:
    """A preset mapping without its documentation keys (`description`, `source`)."""
    return {k: v for k, v in data.items() if k not in ("description", "source")}


def preset_or_mapping(kind: str, value, *, file: str | None, path: str, default: str | None = None) -> dict:
    """The field mapping of a spec written as a preset name, as `{preset: NAME, <field>: override,
    ...}` (overrides merge, nested ones too, into the preset) or as a full mapping; with `default`,
    None and a mapping without `preset` start from that preset. Errors name `file` and `path`."""
    if value is None and default is not None:
        value = default
    if isinstance(value, str):
        value = {"preset": value}
    if not isinstance(value, dict):
        raise InputError(file, path, f"got {value!r}; expected a preset name or a mapping")
    if default is not None and "preset" not in value:
        value = {"preset": default, **value}
    if "preset" not in value:
        return value
    name = value["preset"]
    data = preset_payload(load_preset(kind, name, file=file, path=field_path(path, "preset")))
    return deep_merge({"name": name, **data}, {k: v for k, v in value.items() if k != "preset"})
