"""Shipped presets (package data): `hwsim/presets/<kind>/<name>.yaml`.

Each preset file is a mapping with `description:` (one line), `source:` (where its numbers come
from: a string, or a mapping from section or dotted field to citation) and its payload keys.
"""

from __future__ import annotations

from importlib import resources

from hwsim.config import parse_yaml
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
