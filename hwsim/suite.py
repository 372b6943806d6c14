"""`hwsim suite DIR`: run every workload file of a folder and print one side-by-side table.

Each workload kind's module may define `suite_table(results) -> (headers, rows, aggregates)`
where `results` is a list of (workload name, summary dict); otherwise a generic table of the
summaries' scalar fields is printed.
"""

from __future__ import annotations

import csv
import importlib
import io
import sys
import time
from pathlib import Path

from hwsim.errors import InputError
from hwsim.outputs import check_out_dir, dumps_json, write_atomic
from hwsim.runner import run_to_folder
from hwsim.workload import KINDS, load_workload


def _generic_table(results):
    keys = []
    for _, summary in results:
        for k, v in summary.items():
            if isinstance(v, (int, float, str)) and k not in keys:
                keys.append(k)
    return ["workload", *keys], [[name, *(s.get(k, "") for k in keys)] for name, s in results], {}


def run_suite(folder: str, *, out_dir: str | None = None, overrides: list[str] | None = None,
              overwrite: bool = False, json_stdout: bool = False) -> dict:
    src = Path(folder)
    files = sorted(p for p in src.glob("*.yaml")) if src.is_dir() else []
    if not files:
        raise InputError(folder, "", "expected a folder holding workload .yaml files")
    loaded = [load_workload(f, overrides) for f in files]  # validate all before simulating any
    kinds = {wl.kind for wl in loaded}
    out = Path(out_dir) if out_dir else Path("runs") / f"suite-{src.resolve().name}"
    check_out_dir(out, overwrite)
    t0 = time.perf_counter()
    results = []
    for f, wl in zip(files, loaded):
        _, res = run_to_folder(str(f), out_dir=str(out / wl.name), overrides=overrides, overwrite=True,
                               quiet=True)
        results.append((wl.name, wl.kind, res.summary))
        print(f"  {wl.name}: done", file=sys.stderr)
    wall_s = time.perf_counter() - t0
    tables = {}
    for kind in sorted(kinds):
        subset = [(n, s) for n, k, s in results if k == kind]
        mod = importlib.import_module(KINDS[kind][0])
        maker = getattr(mod, "suite_table", None) or _generic_table
        headers, rows, aggregates = maker(subset)
        tables[kind] = {"headers": list(headers), "rows": [list(r) for r in rows], "aggregates": aggregates}
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows([headers, *rows])
        write_atomic(out / f"suite_{kind}.csv", buf.getvalue())
    report = {"folder": str(folder), "wall_s": wall_s, "tables": tables}
    write_atomic(out / "suite.json", dumps_json(report))
    if json_stdout:
        sys.stdout.write(dumps_json(report))
    else:
        from hwsim.report import print_rows
        for kind, tab in tables.items():
            print_rows(tab["headers"], tab["rows"], title=f"{kind} suite ({folder}), {wall_s:.1f} s")
            for k, v in tab["aggregates"].items():
                print(f"  {k}: {v}")
    return report
