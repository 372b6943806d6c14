"""Design-space sweeps: every point of a parameter grid is one `hwsim run`, executed through the
`concurrent.futures.Executor` interface (a local process pool, or a dask.distributed cluster).

Finished points are complete run folders (written atomically), so a rerun skips them and an
interrupted sweep resumes where it stopped. `sweep.csv` and `sweep.json` collect the points'
parameters and scalar summary metrics.
"""

from __future__ import annotations

import csv
import io
import itertools
import os
import sys
from concurrent.futures import Executor, Future, ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from pathlib import Path

from hwsim.config import parse_yaml
from hwsim.errors import InputError
from hwsim.interrupts import WorkerStop, install_worker_signal_handlers
from hwsim.outputs import dumps_json, remove_stale_temporaries, write_atomic


def parse_grid(items: list[str]) -> list[tuple[str, list]]:
    """`key=v1,v2,...` strings -> [(key, [values parsed as YAML])], in the order given."""
    grid = []
    for item in items or []:
        if "=" not in item:
            raise InputError("--grid", item, "expected key.path=value1,value2,...")
        key, raw = item.split("=", 1)
        key = key.strip()
        values = [parse_yaml(v, "--grid") for v in raw.split(",") if v.strip() != ""]
        if not key or not values:
            raise InputError("--grid", item, "expected key.path=value1,value2,...")
        if key in {k for k, _ in grid}:
            raise InputError("--grid", key, "parameter given twice")
        grid.append((key, values))
    if not grid:
        raise InputError("--grid", "", "give at least one --grid key=values")
    return grid


def grid_points(grid: list[tuple[str, list]]) -> list[dict]:
    keys = [k for k, _ in grid]
    return [dict(zip(keys, combo)) for combo in itertools.product(*(v for _, v in grid))]


def _overrides(point: dict) -> list[str]:
    import json
    return [f"{k}={json.dumps(v)}" for k, v in point.items()]


def _run_point(workload: str, out_dir: str, overrides: list[str]) -> dict:
    """Run one point in a worker (returns the summary)."""
    from hwsim.runner import run_to_folder

    try:
        _, result = run_to_folder(workload, out_dir=out_dir, overrides=overrides, quiet=True)
    except WorkerStop as stop:
        # The point's writes have unwound; end the worker now, or the pool's worker loop (which
        # catches every exception from a call) would start the next point it has already queued.
        os._exit(stop.code)
    return result.summary


def flatten(summary: dict, prefix: str = "") -> dict:
    """Scalar leaves of a nested summary as dotted keys."""
    out = {}
    for k, v in summary.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        elif isinstance(v, (int, float, str, bool)) or v is None:
            out[key] = v
    return out


WORKER_STOP_S = 30.0  # how long an interrupted sweep waits for a stopped worker before killing it


@contextmanager
def make_executor(jobs: int, scheduler: str | None):
    """A process pool of `jobs` workers, or a dask.distributed executor on `scheduler`."""
    if scheduler:
        try:
            from dask.distributed import Client
        except ImportError:
            raise InputError("--scheduler", scheduler, "needs the optional extra: pip install 'hwsim[distributed]'") from None
        client = Client(scheduler)
        try:
            yield client.get_executor()
        finally:
            client.close()
    else:
        pool = ProcessPoolExecutor(max_workers=jobs, initializer=install_worker_signal_handlers)
        try:
            yield pool
        except BaseException:
            # Interrupted (Ctrl-C, SIGTERM) or failed: drop the queued points and stop the workers now
            # rather than waiting for their points; a worker unwinds its atomic writes as it stops.
            workers = list((pool._processes or {}).values())
            pool.shutdown(wait=False, cancel_futures=True)
            for proc in workers:
                if proc.is_alive():
                    proc.terminate()
            for proc in workers:  # let each unwind its writes (a worker inside numba may take a while)
                proc.join(WORKER_STOP_S)
                if proc.is_alive():
                    proc.kill()   # leaves at most hidden temporaries, removed when the sweep resumes
            raise
        else:
            pool.shutdown(wait=True)


def run_sweep(workload: str, grid_items: list[str], out_dir: str, *, base_overrides: list[str] | None = None,
              jobs: int = 1, scheduler: str | None = None, executor: Executor | None = None,
              progress: bool | None = None) -> dict:
    """Run (or resume) a sweep; return {"points": [...], "csv": path}."""
    from hwsim.workload import load_workload

    grid = parse_grid(grid_items)
    points = grid_points(grid)
    out = Path(out_dir)
    base = list(base_overrides or [])
    for point in points:  # validate every point before simulating any
        load_workload(workload, base + _overrides(point))
    remove_stale_temporaries(out)  # left by a sweep that was killed (SIGKILL) mid-write
    todo, rows = [], [None] * len(points)
    for i, point in enumerate(points):
        folder = out / f"p{i:04d}"
        if (folder / "summary.json").exists():
            import json
            rows[i] = json.loads((folder / "summary.json").read_text())
        else:
            todo.append(i)
    if todo:
        ctx = make_executor(jobs, scheduler) if executor is None else _nullcontext(executor)
        with ctx as ex:
            futures: dict[Future, int] = {
                ex.submit(_run_point, workload, str(out / f"p{i:04d}"), base + _overrides(points[i])): i
                for i in todo}
            with _Progress(len(points), len(points) - len(todo), progress) as bar:
                for fut in as_completed(futures):
                    rows[futures[fut]] = fut.result()
                    bar.advance()
    keys = [k for k, _ in grid]
    records = [{"point": f"p{i:04d}", **points[i], **flatten(rows[i])} for i in range(len(points))]
    metric_keys = []
    for r in records:
        for k in r:
            if k not in metric_keys and k not in keys and k != "point":
                metric_keys.append(k)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=["point", *keys, *metric_keys], lineterminator="\n")
    w.writeheader()
    w.writerows(records)
    write_atomic(out / "sweep.csv", buf.getvalue())
    report = {"workload": workload, "grid": {k: v for k, v in grid}, "base_overrides": base,
              "points": records}
    write_atomic(out / "sweep.json", dumps_json(report))
    return report


@contextmanager
def _nullcontext(value):
    yield value


class _Progress:
    """A rich progress bar on stderr when it is a terminal; silent otherwise."""

    def __init__(self, total: int, done: int, enabled: bool | None):
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.total, self.done = total, done

    def __enter__(self):
        if self.enabled:
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                       TimeRemainingColumn)
            from rich.console import Console
            self._p = Progress(TextColumn("sweep"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                               console=Console(stderr=True))
            self._p.__enter__()
            self._task = self._p.add_task("sweep", total=self.total, completed=self.done)
        return self

    def advance(self):
        if self.enabled:
            self._p.advance(self._task)

    def __exit__(self, *exc):
        if self.enabled:
            self._p.__exit__(*exc)
