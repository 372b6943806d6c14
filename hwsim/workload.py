"""Workload files: a YAML mapping whose `kind` selects a workload type and its runner.

Each kind registers a frozen dataclass (built strictly with `hwsim.config.build`) and a function
`run(workload, context) -> RunResult`. Modules are imported only when their kind is used.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hwsim.config import apply_overrides, build, load_yaml, to_dict
from hwsim.errors import InputError

# kind -> (module, dataclass name, runner name)
KINDS: dict[str, tuple[str, str, str]] = {
    "dram": ("hwsim.dram_pim.traffic", "DramWorkload", "run"),
    "pim_gpt": ("hwsim.asic.workload", "PimGptWorkload", "run"),
    "vmm": ("hwsim.asic.workload", "VmmWorkload", "run_vmm"),
    "t3": ("hwsim.t3.workload", "T3Workload", "run"),
}


@dataclass
class RunResult:
    """What a runner returns: stats.json, summary.json content, extra files and a printable table."""

    stats: dict
    summary: dict
    files: dict[str, str] = field(default_factory=dict)
    table: list[tuple[str, Any]] = field(default_factory=list)
    perf: dict = field(default_factory=dict)  # wall-clock figures: run.json only, never stats.json


@dataclass(frozen=True)
class LoadedWorkload:
    kind: str
    name: str
    config: Any          # the kind's frozen dataclass
    raw: dict            # the mapping after overrides (before defaults)
    file: str
    base_dir: Path


def _kind_module(kind: str, file: str):
    if not isinstance(kind, str) or kind not in KINDS:
        raise InputError(file, "kind", f"got {kind!r}; expected one of {', '.join(KINDS)}")
    module, cls_name, run_name = KINDS[kind]
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name == module:
            raise InputError(file, "kind", f"workload kind {kind!r} is not available in this build") from None
        raise
    return mod, getattr(mod, cls_name), getattr(mod, run_name)


def load_workload(path: str | Path, overrides: list[str] | None = None) -> LoadedWorkload:
    """Read, override (`--set a.b=c`), validate and freeze a workload file."""
    file = str(path)
    raw = load_yaml(path)
    if not isinstance(raw, dict):
        raise InputError(file, "", f"got {type(raw).__name__}; expected a mapping with a 'kind' key")
    raw = apply_overrides(raw, overrides)
    kind = raw.get("kind")
    if kind is None:
        raise InputError(file, "kind", f"missing; expected one of {', '.join(KINDS)}")
    _, cls, _ = _kind_module(kind, file)
    body = {k: v for k, v in raw.items() if k != "kind"}
    config = build(cls, body, file=file)
    name = getattr(config, "name", None) or Path(file).stem
    return LoadedWorkload(kind, name, config, raw, file, Path(file).resolve().parent)


def run_workload(wl: LoadedWorkload, **options) -> RunResult:
    _, _, runner = _kind_module(wl.kind, wl.file)
    return runner(wl, **options)


def resolved_config(wl: LoadedWorkload) -> dict:
    return {"kind": wl.kind, **to_dict(wl.config)}
