"""Figures of T3 runs and suites (drawn by `hwsim plot`, from the run folder's own files).

Run: speedup of the five configurations, DRAM bytes by stream (read and written) per
configuration, and, when the run folder holds `queue_occupancy.csv` (written by `hwsim run ...
--trace`), DRAM-queue occupancy over time by request class (the paper's Fig. 17 view).
Suite: speedup of every configuration per case.
"""

from __future__ import annotations

import csv
from pathlib import Path

CONFIGS = ("sequential", "t3", "t3_mca", "ideal_overlap", "ideal_rs_nmc")
STREAMS = ("gemm", "rs", "ag", "dma", "nmc")


def plot_run(folder: Path, summary: dict, figs) -> None:
    configs = [c for c in CONFIGS if c in summary["configs"]]
    rows = summary["configs"]
    figs.bars("speedup", configs, {"speedup vs sequential": [rows[c]["speedup_vs_sequential"] for c in configs]},
              ylabel="x over sequential", title=f"{folder.name}: sub-layer speedup")
    series = {}
    for direction in ("read", "written"):
        for s in STREAMS:
            values = [rows[c][f"dram_bytes_{direction}"][s] / 2 ** 20 for c in configs]
            if any(values):
                series[f"{s} {direction}"] = values
    figs.bars("dram_traffic_by_stream", configs, series, ylabel="MiB per GPU", stacked=True,
              title=f"{folder.name}: DRAM traffic by stream")
    occupancy = folder / "queue_occupancy.csv"
    if occupancy.exists():
        _occupancy(folder, list(csv.DictReader(occupancy.open())), figs)


def _occupancy(folder: Path, rows: list[dict], figs) -> None:
    """DRAM-queue entries by class over time, one panel per fused run (T3, T3-MCA)."""
    from hwsim.plot import _plt

    plt = _plt()
    runs = sorted({r["run"] for r in rows})
    fig, axes = plt.subplots(len(runs), 1, figsize=(8, 2.6 * len(runs)), sharex=True, squeeze=False)
    for ax, run in zip(axes[:, 0], runs):
        sel = [r for r in rows if r["run"] == run]
        t_us = [int(r["time_ps"]) / 1e6 for r in sel]
        for cls in ("compute", "communication"):
            ax.step(t_us, [int(r[cls]) for r in sel], where="post", label=cls, lw=0.8)
        ax.set_ylabel("queue entries")
        ax.set_title(f"{run}: DRAM queue occupancy ({sel[0]['channel']})", fontsize="medium")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small", loc="upper right")
    axes[-1, 0].set_xlabel("time (us)")
    figs.folder.mkdir(parents=True, exist_ok=True)
    figs._save(fig, "queue_occupancy")


def plot_suite(folder: Path, table: dict, figs) -> None:
    headers, rows = table["headers"], table["rows"]
    cols = [i for i, h in enumerate(headers) if h.endswith("_%") and not h.startswith("dram")]
    figs.bars("suite_speedup", [r[0] for r in rows], {headers[i][:-2]: [r[i] for r in rows] for i in cols},
              ylabel="speedup over sequential (%)", title="T3 sub-layer speedups")
    if "dram_change_t3_%" in headers:
        i = headers.index("dram_change_t3_%")
        figs.bars("suite_dram_change", [r[0] for r in rows], {"T3": [r[i] for r in rows]},
                  ylabel="DRAM bytes vs sequential (%)", title="T3 DRAM data movement change")
