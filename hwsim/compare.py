"""`hwsim compare`: scalar summary metrics of several run folders side by side."""

from __future__ import annotations

import json
from pathlib import Path

from hwsim.errors import InputError
from hwsim.sweep import flatten


def load_summary(run_dir: str) -> dict:
    p = Path(run_dir) / "summary.json"
    if not p.is_file():
        raise InputError(str(run_dir), "summary.json", "not a run folder (no summary.json)")
    try:
        return json.loads(p.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(str(p), "", f"not valid JSON ({exc.msg})") from None


def compare_runs(run_dirs: list[str]) -> tuple[list[str], list[list]]:
    """Headers and rows: metric, value per run, then the ratio of each later run to the first."""
    flats = [flatten(load_summary(d)) for d in run_dirs]
    keys = []
    for f in flats:
        keys += [k for k in f if k not in keys]
    names = [Path(d).name or str(d) for d in run_dirs]
    headers = ["metric", *names, *[f"{n}/{names[0]}" for n in names[1:]]]
    rows = []
    for k in keys:
        values = [f.get(k, "") for f in flats]
        ratios = []
        for v in values[1:]:
            base = values[0]
            num = isinstance(v, (int, float)) and isinstance(base, (int, float)) and not isinstance(v, bool)
            ratios.append(round(v / base, 6) if num and base else "")
        rows.append([k, *values, *ratios])
    return headers, rows
