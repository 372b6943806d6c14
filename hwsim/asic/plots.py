"""Figures of PIM-GPT runs and suites (drawn by `hwsim plot`, from the run's own files)."""

from __future__ import annotations

import csv
from pathlib import Path

import yaml


def plot_run(folder: Path, summary: dict, figs) -> None:
    if "baselines" not in summary:  # a `vmm` run: its phases
        phases = summary.get("phase_cycles") or {}
        if phases:
            figs.bars("vmm_phases", list(phases), {"cycles": list(phases.values())}, ylabel="command-clock cycles",
                      title=f"VMM phases ({folder.name})")
        return
    labels, speed, eff = [], [], []
    for dev, modes in summary["baselines"].items():
        for mode, r in modes.items():
            labels.append(f"{dev}\n{mode}")
            speed.append(r["speedup"])
            eff.append(r["energy_efficiency"])
    figs.bars("speedup_energy_efficiency", labels, {"speedup": speed, "energy efficiency": eff},
              ylabel="x over baseline (log)", title=f"{summary['model']}: PIM-GPT vs baselines", log=True)
    b = summary["breakdown_ns"]
    figs.bars("latency_breakdown", ["per token"], {k: [v / 1000] for k, v in b.items()}, ylabel="us / token",
              title=f"{summary['model']}: latency breakdown", stacked=True)
    e = summary["energy_breakdown_pJ"]
    figs.bars("energy_breakdown", list(e), {"uJ / token": [v / 1e6 for v in e.values()]}, ylabel="uJ / token",
              title=f"{summary['model']}: energy breakdown", log=True)
    tokens = folder / "tokens.csv"
    if tokens.exists():
        rows = list(csv.DictReader(tokens.open()))
        figs.lines("latency_vs_context", [int(r["context"]) for r in rows],
                   {"latency": [float(r["latency_ns"]) / 1000 for r in rows]}, xlabel="context (tokens)",
                   ylabel="us / token", title=f"{summary['model']}: per-token latency vs context")
    _roofline(folder, summary, figs)


def _roofline(folder: Path, summary: dict, figs) -> None:
    """Each op of the GPU baseline (roofline mode) placed on its device's roofline."""
    from hwsim.baselines import evaluate, load_device
    from hwsim.graph import build_decode_graph
    from hwsim.models import load_model

    cfg = yaml.safe_load((folder / "config.resolved.yaml").read_text())
    model = load_model(cfg["model"])
    gpus = [d for d in summary["baselines"] if load_device(d).kind == "gpu"]
    if not gpus:
        return
    dev = load_device(gpus[0])
    graph = build_decode_graph(model, summary.get("context_last", model.context))
    res = evaluate(graph, dev, "roofline")
    pts = [(r.op_id, r.kind, r.flops / r.bytes, r.flops / r.time_ns) for r in res.rows
           if r.bytes and r.flops and r.time_ns]
    folder_plots = figs.folder
    folder_plots.mkdir(parents=True, exist_ok=True)
    with (folder_plots / "roofline.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["op_id", "kind", "flops_per_byte", "GFLOP_per_s"])
        w.writerows(pts)
    from hwsim.plot import _plt
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    peak = dev.peak_tflops.get("fp16", max(dev.peak_tflops.values())) * 1e3  # GFLOP/s
    bw = dev.mem_bw_GBps
    xs = [2 ** k / 8 for k in range(0, 16)]
    ax.plot(xs, [min(peak, x * bw) for x in xs], "k-", label=f"{dev.name} roof")
    for kind in sorted({p[1] for p in pts}):
        sel = [p for p in pts if p[1] == kind]
        ax.scatter([p[2] for p in sel], [p[3] for p in sel], label=kind, s=14)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("arithmetic intensity (FLOP / byte)")
    ax.set_ylabel("attained GFLOP/s")
    ax.set_title(f"{model.name} decode ops on {dev.name} (roofline mode)")
    ax.legend(fontsize="x-small")
    ax.grid(alpha=0.3)
    figs._save(fig, "roofline")


def plot_suite(folder: Path, table: dict, figs) -> None:
    headers, rows = table["headers"], table["rows"]
    if "model" not in headers:
        return
    models = [r[headers.index("model")] for r in rows]
    for prefix, label in (("x ", "speedup"), ("EE ", "energy efficiency")):
        cols = [i for i, h in enumerate(headers) if h.startswith(prefix)]
        series = {headers[i][len(prefix):]: [r[i] if r[i] != "" else 0 for r in rows] for i in cols}
        figs.bars(f"suite_{label.replace(' ', '_')}", models, series, ylabel=f"{label} (x, log)",
                  title=f"PIM-GPT {label} per model", log=True)
