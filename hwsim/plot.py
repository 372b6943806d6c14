"""`hwsim plot DIR`: figures (PNG and SVG) drawn from a run, suite or sweep folder.

Every figure is written into `DIR/plots/` beside the CSV it is drawn from, so the numbers behind
a picture are always at hand. matplotlib is an optional extra (`pip install 'hwsim[plot]'`).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Callable

import yaml

from hwsim.errors import InputError
from hwsim.outputs import write_atomic

FORMATS = ("png", "svg")


def _plt():
    try:
        import matplotlib
    except ImportError:
        raise InputError("hwsim plot", "matplotlib", "needs the optional extra: pip install 'hwsim[plot]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _write_csv(path: Path, headers: list[str], rows: list[list]) -> None:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows([headers, *rows])
    write_atomic(path, buf.getvalue())


class Figures:
    """Writes figures and their CSVs into one plots folder."""

    def __init__(self, folder: Path):
        self.folder = folder / "plots"
        self.written: list[Path] = []

    def _save(self, fig, stem: str) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        for fmt in FORMATS:
            path = self.folder / f"{stem}.{fmt}"
            fig.savefig(path, dpi=120, bbox_inches="tight")
            self.written.append(path)
        _plt().close(fig)

    def bars(self, stem: str, labels: list[str], series: dict[str, list[float]], *, ylabel: str, title: str,
             log: bool = False, stacked: bool = False) -> None:
        """Grouped (or stacked) bars: one group per label, one bar per series."""
        _write_csv(self.folder / f"{stem}.csv", ["label", *series], [[lab, *(s[i] for s in series.values())]
                                                                     for i, lab in enumerate(labels)])
        plt = _plt()
        fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(labels) + 2), 4))
        n = max(len(series), 1)
        width = 0.8 if stacked else 0.8 / n
        bottom = [0.0] * len(labels)
        for k, (name, values) in enumerate(series.items()):
            xs = [i if stacked else i - 0.4 + width * (k + 0.5) for i in range(len(labels))]
            ax.bar(xs, values, width, label=name, bottom=bottom if stacked else None)
            if stacked:
                bottom = [b + v for b, v in zip(bottom, values)]
        ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        if log:
            ax.set_yscale("log")
        if len(series) > 1:
            ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))
        ax.grid(axis="y", alpha=0.3)
        self._save(fig, stem)

    def lines(self, stem: str, x: list[float], series: dict[str, list[float]], *, xlabel: str, ylabel: str,
              title: str, logx: bool = False, logy: bool = False) -> None:
        _write_csv(self.folder / f"{stem}.csv", [xlabel, *series], [[xv, *(s[i] for s in series.values())]
                                                                    for i, xv in enumerate(x)])
        plt = _plt()
        fig, ax = plt.subplots(figsize=(6, 4))
        for name, values in series.items():
            ax.plot(x, values, marker="o", label=name)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        if logx:
            ax.set_xscale("log", base=2)
        if logy:
            ax.set_yscale("log")
        if len(series) > 1:
            ax.legend(fontsize="small")
        ax.grid(alpha=0.3)
        self._save(fig, stem)


def _numeric(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def plot_sweep(folder: Path, figs: Figures, metrics: list[str] | None) -> None:
    report = json.loads((folder / "sweep.json").read_text())
    keys = list(report["grid"])
    points = report["points"]
    candidates = [k for k in points[0] if k not in keys and k != "point" and _numeric(points[0][k])]
    chosen = metrics or candidates[:8]
    for m in chosen:
        if m not in points[0]:
            raise InputError(str(folder), m, f"no such metric; choices: {', '.join(candidates)}")
    x_key = keys[0]
    groups: dict[str, list[dict]] = {}
    for p in points:
        label = ", ".join(f"{k}={p[k]}" for k in keys[1:]) or "all points"
        groups.setdefault(label, []).append(p)
    for m in chosen:
        xs = sorted({p[x_key] for p in points}, key=lambda v: (str(type(v)), v))
        series = {}
        for label, ps in groups.items():
            by_x = {p[x_key]: p[m] for p in ps}
            series[label] = [by_x.get(x, float("nan")) for x in xs]
        numeric_x = all(_numeric(x) for x in xs)
        stem = f"sweep_{m}_vs_{x_key}".replace("/", "_")
        if numeric_x:
            figs.lines(stem, xs, series, xlabel=x_key, ylabel=m, title=f"{m} vs {x_key}",
                       logx=len(xs) > 2 and min(xs) > 0 and max(xs) / min(xs) >= 8)
        else:
            figs.bars(stem, [str(x) for x in xs], series, ylabel=m, title=f"{m} vs {x_key}")


def plot_dram(folder: Path, summary: dict, figs: Figures) -> None:
    figs.bars("row_buffer", ["hits", "misses", "conflicts"],
              {"requests": [summary["row_hits"], summary["row_misses"], summary["row_conflicts"]]},
              ylabel="requests", title=f"row-buffer outcomes ({folder.name})")


# kind -> plotter(folder, summary, figures); PIM-GPT and T3 register theirs in their modules.
RUN_PLOTTERS: dict[str, Callable] = {"dram": plot_dram}


def _plots_module(kind: str):
    """The module that draws a workload kind: `plots` beside the kind's runner, else the runner."""
    import importlib

    from hwsim.workload import KINDS
    if kind not in KINDS:
        return None
    runner = KINDS[kind][0]
    try:
        return importlib.import_module(runner.rsplit(".", 1)[0] + ".plots")
    except ModuleNotFoundError:
        return importlib.import_module(runner)


def _kind_plotter(kind: str):
    if kind in RUN_PLOTTERS:
        return RUN_PLOTTERS[kind]
    return getattr(_plots_module(kind), "plot_run", None)


def plot_folder(folder: str, metrics: list[str] | None = None) -> list[Path]:
    """Draw every figure that fits the folder; return the files written."""
    root = Path(folder)
    if not root.is_dir():
        raise InputError(str(folder), "", "expected a run, suite or sweep folder")
    figs = Figures(root)
    if (root / "sweep.json").exists():
        plot_sweep(root, figs, metrics)
    elif (root / "suite.json").exists():
        suite = json.loads((root / "suite.json").read_text())
        for kind in suite["tables"]:
            plotter = getattr(_plots_module(kind), "plot_suite", None)
            if plotter is not None:
                plotter(root, suite["tables"][kind], figs)
            else:
                tab = suite["tables"][kind]
                num = [i for i, v in enumerate(tab["rows"][0]) if _numeric(v)][:4]
                for i in num:
                    figs.bars(f"suite_{tab['headers'][i]}", [str(r[0]) for r in tab["rows"]],
                              {tab["headers"][i]: [r[i] for r in tab["rows"]]}, ylabel=tab["headers"][i],
                              title=f"{kind} suite: {tab['headers'][i]}")
    elif (root / "summary.json").exists():
        summary = json.loads((root / "summary.json").read_text())
        kind = yaml.safe_load((root / "config.resolved.yaml").read_text()).get("kind")
        plotter = _kind_plotter(kind)
        if plotter is None:
            raise InputError(str(folder), "kind", f"no plots defined for workload kind {kind!r}")
        plotter(root, summary, figs)
    else:
        raise InputError(str(folder), "", "expected a run folder (summary.json), a suite (suite.json) "
                         "or a sweep (sweep.json)")
    return figs.written
