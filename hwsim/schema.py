"""JSON Schema of workload files (for editors), generated from the workload dataclasses."""

from __future__ import annotations

import importlib

from hwsim.config import json_schema
from hwsim.errors import InputError
from hwsim.workload import KINDS


def _kind_schema(kind: str) -> dict | None:
    module, cls_name, _ = KINDS[kind]
    try:
        cls = getattr(importlib.import_module(module), cls_name)
    except (ModuleNotFoundError, AttributeError):
        return None
    sch = json_schema(cls)
    sch["properties"] = {"kind": {"const": kind}, **sch["properties"]}
    sch["required"] = ["kind", *sch.get("required", [])]
    return sch


def workload_schema(kind: str | None = None) -> dict:
    if kind is not None and kind not in KINDS:
        raise InputError("schema", "kind", f"got {kind!r}; expected one of {', '.join(KINDS)}")
    kinds = [kind] if kind else list(KINDS)
    schemas = [s for s in (_kind_schema(k) for k in kinds) if s is not None]
    if kind:
        if not schemas:
            raise InputError("schema", "kind", f"workload kind {kind!r} is not available in this build")
        body = schemas[0]
    else:
        body = {"oneOf": schemas}
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": "hwsim workload", **body}
