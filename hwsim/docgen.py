"""Generate docs/workload-reference.md from the workload dataclasses (fields, types, units,
defaults, descriptions). `python -m hwsim.docgen > docs/workload-reference.md`; a test keeps the
committed file equal to the generated one."""

from __future__ import annotations

import dataclasses
import importlib
import typing

from hwsim.config import _type_name
from hwsim.workload import KINDS


def _rows(cls, prefix: str = ""):
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        path = f"{prefix}{f.name}"
        md = f.metadata
        if f.default is not dataclasses.MISSING:
            default = repr(f.default)
        elif f.default_factory is not dataclasses.MISSING:
            default = "(see fields below)" if dataclasses.is_dataclass(tp) else repr(f.default_factory())
        else:
            default = "required"
        yield (path, _type_name(tp), md.get("unit", ""), default, md.get("doc", ""))
        if dataclasses.is_dataclass(tp):
            yield from _rows(tp, path + ".")
        for arg in typing.get_args(tp):
            if dataclasses.is_dataclass(arg):
                yield from _rows(arg, path + ".")


def reference_markdown() -> str:
    out = ["# Workload file reference", "",
           "Generated from the workload dataclasses by `python -m hwsim.docgen`; do not edit by hand.",
           "Every workload file is a YAML mapping with `kind:` and the fields of that kind. Unknown keys "
           "are errors. `hwsim schema KIND` prints the same as JSON Schema.", ""]
    for kind, (module, cls_name, _) in KINDS.items():
        try:
            cls = getattr(importlib.import_module(module), cls_name)
        except (ModuleNotFoundError, AttributeError):
            continue
        out += [f"## kind: {kind}", "", (cls.__doc__ or "").strip().splitlines()[0], "",
                "| field | type | unit | default | description |", "|---|---|---|---|---|"]
        for path, tname, unit, default, doc in _rows(cls):
            out.append(f"| `{path}` | {tname} | {unit} | {default} | {doc} |".replace("\n", " "))
        out.append("")
    from hwsim.dram_pim.spec import DramSpec
    out += ["## DRAM spec files (`--spec FILE.yaml`, `dram.spec_file`, presets)", "",
            "`timing.nRCD` may stand for both `nRCD_RD` and `nRCD_WR`; `address_mapping` may name a scheme.", "",
            "| field | type | unit | default | description |", "|---|---|---|---|---|"]
    for path, tname, unit, default, doc in _rows(DramSpec):
        out.append(f"| `{path}` | {tname} | {unit} | {default} | {doc} |")
    out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    print(reference_markdown(), end="")
