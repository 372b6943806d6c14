"""`hwsim run`: load a workload, simulate it, write its run folder atomically."""

from __future__ import annotations

import platform
import sys
import time
from pathlib import Path

from hwsim import __version__, invariants, progress
from hwsim.errors import InputError
from hwsim.outputs import check_out_dir, dumps_json, dumps_yaml, write_run_folder
from hwsim.workload import load_workload, resolved_config, run_workload


def run_to_folder(workload: str, *, out_dir: str | None = None, overrides: list[str] | None = None,
                  overwrite: bool = False, argv: list[str] | None = None, json_stdout: bool = False,
                  options: dict | None = None, quiet: bool = False, progress_s: float | None = None,
                  debug: bool | None = None):
    """Run one workload file; return (folder, RunResult). `progress_s`: a progress line every so
    many seconds on stderr (see `hwsim.progress`); `debug`: conservation checks (`hwsim.invariants`;
    None leaves it to HWSIM_DEBUG)."""
    wl = load_workload(workload, overrides)
    if progress_s is not None and not progress_s > 0:
        raise InputError("--progress", "--progress", f"got {progress_s}; expected a positive number of seconds")
    out = Path(out_dir) if out_dir else Path("runs") / wl.name
    check_out_dir(out, overwrite)  # fail before simulating, not after
    t0 = time.perf_counter()
    with progress.reporting(wl.name, progress_s), invariants.debug_mode(debug):
        result = run_workload(wl, **(options or {}))
    wall_s = time.perf_counter() - t0
    run_info = {
        "hwsim_version": __version__,
        "command": list(argv) if argv else None,
        "workload": str(workload),
        "overrides": list(overrides or []),
        "wall_s": wall_s,
        "python": platform.python_version(),
        "platform": platform.platform(),
        **result.perf,
    }
    files = {
        "config.resolved.yaml": dumps_yaml(resolved_config(wl)),
        "stats.json": dumps_json(result.stats),
        "summary.json": dumps_json(result.summary),
        "run.json": dumps_json(run_info),
        **result.files,
    }
    folder = write_run_folder(out, files, overwrite=overwrite)
    if not quiet:
        if json_stdout:
            sys.stdout.write(files["summary.json"])
        else:
            from hwsim.report import print_table
            print_table(f"{wl.name} ({wl.kind}) -> {folder}", result.table)
    return folder, result
