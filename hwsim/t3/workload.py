"""`kind: t3` workloads: one tensor-parallel Transformer sub-layer (GEMM + all-reduce) under the
five configurations of the T3 paper (Pati et al., ASPLOS 2024, section 5.3):

* `sequential`: GEMM, then ring reduce-scatter (CU kernel), then ring all-gather (CU kernel);
* `t3`: GEMM fused with RS through track & trigger + near-memory updates (FR-FCFS memory
  controller), then AG;
* `t3_mca`: the same with the communication-aware memory-controller arbitration;
* `ideal_overlap` (Ideal-GEMM-RS-Overlap): max(GEMM alone, RS alone) + AG;
* `ideal_rs_nmc` (Ideal-RS+NMC): max(GEMM alone, RS with near-memory updates alone) + AG.

Six simulations per workload (GEMM alone, RS, RS with NMC, AG, T3 fused, T3-MCA fused) give the
five configurations; speedup_vs_sequential = t_sequential / t_config.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from hwsim import invariants, progress
from hwsim.config import field_path, spec
from hwsim.errors import InputError
from hwsim.t3.params import SystemParams

SUBLAYERS = {
    # name: (pass, K multiple of H/TP, description)
    "op": ("forward", 1, "attention output projection: T x (H/N) x H"),
    "fc2": ("forward", 4, "MLP second linear: T x (4H/N) x H"),
    "fc1": ("backward", 4, "MLP first linear, input gradient: T x (4H/N) x H"),
    "ip": ("backward", 3, "attention input (QKV) projection, input gradient: T x (3H/N) x H"),
}
CONFIGS = ("sequential", "t3", "t3_mca", "ideal_overlap", "ideal_rs_nmc")


@dataclass(frozen=True, kw_only=True)
class ModelSpec:
    """The model's hidden size (the only dimension the sliced sub-layers need)."""

    name: str = spec("model name")
    hidden: int = spec("hidden size H", min=16)


@dataclass(frozen=True, kw_only=True)
class T3Workload:
    """`kind: t3`: one tensor-parallel sub-layer GEMM and its all-reduce."""

    name: str | None = spec("workload name", default=None)
    description: str = spec("what the workload reproduces", default="")
    model: ModelSpec = spec("model")
    sublayer: Literal["op", "fc2", "fc1", "ip"] = spec(
        "op / fc2 (forward) or fc1 / ip (backward, input-gradient GEMM)")
    tp: int = spec("tensor-parallel degree N (ring of N GPUs)", min=2)
    tokens: int = spec("tokens T = batch x sequence length (GEMM M)", min=1, default=8192)
    dtype: Literal["fp16"] = spec("element type", default="fp16")
    system: SystemParams = spec("system parameters (defaults: the paper's configuration)",
                                default_factory=SystemParams)
    energy: str = spec("energy table preset", default="t3_hbm2")

    def validate(self, file, path):
        h, n = self.model.hidden, self.tp
        if h % n:
            raise InputError(file, field_path(path, "tp"),
                             f"got {n}; the TP degree must divide the hidden size model.hidden = {h}")
        if h % 16:
            raise InputError(file, field_path(path, "model.hidden"),
                             f"got {h}; expected a multiple of 16 (32-byte bursts)")
        if self.tokens % n:
            raise InputError(file, field_path(path, "tokens"),
                             f"got {self.tokens}; expected a multiple of tp = {n} "
                             "(one output chunk of T/N rows per GPU)")

    @property
    def gemm_shape(self) -> tuple[int, int, int]:
        """(M, N, K) of each GPU's GEMM."""
        kf = SUBLAYERS[self.sublayer][1]
        return self.tokens, self.model.hidden, kf * self.model.hidden // self.tp


def build_setup(cfg: T3Workload, file: str | None = None):
    from hwsim.t3.producer import make_plan
    from hwsim.t3.sim import make_setup

    M, N, K = cfg.gemm_shape
    g = cfg.system.gemm
    plan = make_plan(M, N, K, BM=g.tile_m, BN=g.tile_n, BK=g.tile_k, tp=cfg.tp)
    return make_setup(plan, cfg.system, file=file)


def _geomean(xs):
    xs = [x for x in xs if x > 0]
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else 0.0


def simulate_all(cfg: T3Workload, *, file: str | None = None, timeline: bool = False):
    """The six component simulations; returns (setup, dict of SimResult)."""
    from hwsim.t3 import system as S
    from hwsim.t3.memctrl import POL_FRFCFS, POL_MCA
    from hwsim.t3.sim import simulate

    setup = build_setup(cfg, file)
    plan = {
        "gemm": dict(gemm=S.GEMM_BASE, coll=S.COLL_NONE),
        "rs": dict(gemm=S.GEMM_NONE, coll=S.COLL_RS),
        "rs_nmc": dict(gemm=S.GEMM_NONE, coll=S.COLL_RS_NMC),
        "ag": dict(gemm=S.GEMM_NONE, coll=S.COLL_AG),
        "t3": dict(gemm=S.GEMM_T3, coll=S.COLL_NONE, policy=POL_FRFCFS, timeline=timeline),
        "t3_mca": dict(gemm=S.GEMM_T3, coll=S.COLL_NONE, policy=POL_MCA, timeline=timeline),
    }
    debug = invariants.enabled()
    runs = {}
    for name, kwargs in plan.items():
        fused = kwargs["gemm"] == S.GEMM_T3
        runs[name] = simulate(setup, **kwargs, record=debug and fused)
        if debug and fused:
            invariants.check_t3_reduction_once(setup, runs[name])
            runs[name].requests = runs[name].log = None   # checked; do not keep millions of rows
        progress.step(f"simulation {name}", len(runs), len(plan))
    return setup, runs


def _per_gpu(setup, res):
    """Per-GPU (one whole GPU, all channels) quantities of a run."""
    from hwsim.t3.producer import BURST
    from hwsim.t3.system import STREAM_NAMES

    scale = setup.scale
    b = res.bursts.sum(axis=0)  # [stream, dir]
    read = {name: int(round(b[i, 0] * BURST * scale)) for i, name in enumerate(STREAM_NAMES)}
    write = {name: int(round(b[i, 1] * BURST * scale)) for i, name in enumerate(STREAM_NAMES)}
    cmds = {k: float(v) * scale for k, v in _cmd_counts(res).items()}
    return read, write, cmds


def _cmd_counts(res):
    from hwsim.dram_pim.commands import Cmd
    c = res.cmd_counts
    return {"ACT": int(c[Cmd.ACT]), "PRE": int(c[Cmd.PRE] + c[Cmd.PREA]), "RD": int(c[Cmd.RD] + c[Cmd.RDA]),
            "WR": int(c[Cmd.WR] + c[Cmd.WRA]), "UPD": int(c[Cmd.UPD]), "REFab": int(c[Cmd.REFab])}


def _sum_dicts(*ds):
    out = {}
    for d in ds:
        for k, v in d.items():
            out[k] = out.get(k, 0) + v
    return out


def _energy(table, cmds: dict, link_bytes: int) -> dict:
    counts = {f"dram.{k}": v for k, v in cmds.items()}
    counts["nmc.add"] = cmds.get("UPD", 0)
    counts["link.bit"] = link_bytes * 8
    br = table.breakdown_pJ(counts)
    dram = sum(v for k, v in br.items() if k.startswith("dram."))
    return {
        "total": dram + br.get("nmc.add", 0.0) + br.get("link.bit", 0.0),
        "dram_commands": dram,
        "near_memory_adds": br.get("nmc.add", 0.0),
        "link_transfers": br.get("link.bit", 0.0),
        "by_action": br,
    }


def summarise(cfg: T3Workload, setup, runs, energy_table) -> tuple[dict, dict]:
    """(summary, stats) from the six simulations."""
    p = cfg.system
    launch = int(round(p.collective.kernel_launch_ns * 1000))
    t = {k: r.time_ps for k, r in runs.items()}
    per = {k: _per_gpu(setup, r) for k, r in runs.items()}
    link = {k: r.link_bytes for k, r in runs.items()}

    def combo(parts):
        read = _sum_dicts(*(per[x][0] for x in parts))
        write = _sum_dicts(*(per[x][1] for x in parts))
        cmds = _sum_dicts(*(per[x][2] for x in parts))
        lb = sum(link[x] for x in parts)
        return read, write, cmds, lb

    times = {
        "sequential": t["gemm"] + t["rs"] + t["ag"] + 2 * launch,
        "t3": t["t3"] + launch + t["ag"],
        "t3_mca": t["t3_mca"] + launch + t["ag"],
        "ideal_overlap": max(t["gemm"], t["rs"]) + launch + t["ag"],
        "ideal_rs_nmc": max(t["gemm"], t["rs_nmc"]) + launch + t["ag"],
    }
    parts = {"sequential": ("gemm", "rs", "ag"), "t3": ("t3", "ag"), "t3_mca": ("t3_mca", "ag"),
             "ideal_overlap": ("gemm", "rs", "ag"), "ideal_rs_nmc": ("gemm", "rs_nmc", "ag")}
    t_seq = times["sequential"]
    configs = {}
    for name in CONFIGS:
        read, write, cmds, lb = combo(parts[name])
        fused = runs.get(name) if name in ("t3", "t3_mca") else None
        e = _energy(energy_table, cmds, lb)
        configs[name] = {
            "time_ns": times[name] / 1000.0,
            "speedup_vs_sequential": t_seq / times[name],
            "dram_bytes_total": int(sum(read.values()) + sum(write.values())),
            "dram_bytes_read": dict(sorted(read.items())),
            "dram_bytes_written": dict(sorted(write.items())),
            "link_bytes": int(lb),
            "tracker_peak_entries": fused.tracker_peak if fused else 0,
            "tracker_fallback_tiles": fused.tracker_fallbacks if fused else 0,
            "dma_count": fused.dma_count if fused else 0,
            "dram_commands": {k: int(round(v)) for k, v in sorted(cmds.items())},
            "energy_pJ": e["total"],
            "energy_breakdown_pJ": {"dram_commands": e["dram_commands"], "near_memory_adds": e["near_memory_adds"],
                                    "link_transfers": e["link_transfers"]},
        }
    configs["t3_mca"]["mca_threshold"] = runs["t3_mca"].mca_threshold
    configs["t3_mca"]["mca_stage1_dram_utilisation"] = runs["t3_mca"].mca_util
    M, N, K = cfg.gemm_shape
    seq_bytes = configs["sequential"]["dram_bytes_total"]
    rs_reads_seq = configs["sequential"]["dram_bytes_read"]["rs"]
    rs_reads_t3 = configs["t3"]["dram_bytes_read"]["dma"] + configs["t3"]["dram_bytes_read"]["rs"]
    summary = {
        "workload": {"model": cfg.model.name, "hidden": cfg.model.hidden, "sublayer": cfg.sublayer,
                     "pass": SUBLAYERS[cfg.sublayer][0], "tp": cfg.tp, "tokens": cfg.tokens},
        "gemm": {"M": M, "N": N, "K": K, "flops": 2 * M * N * K, "tiles": setup.plan.n_wg,
                 "tiles_per_stage": setup.plan.tiles_per_chunk, "k_steps": setup.plan.nk},
        "allreduce_bytes": setup.plan.c_bytes_total(),
        "components_ns": {k: v / 1000.0 for k, v in sorted(t.items())},
        "configs": configs,
        "dram_traffic_change": {
            "t3_vs_sequential": configs["t3"]["dram_bytes_total"] / seq_bytes - 1.0,
            "t3_mca_vs_sequential": configs["t3_mca"]["dram_bytes_total"] / seq_bytes - 1.0,
            "rs_reads_ratio_sequential_over_t3": rs_reads_seq / rs_reads_t3 if rs_reads_t3 else 0.0,
            "gemm_reads_ratio_sequential_over_t3": (configs["sequential"]["dram_bytes_read"]["gemm"]
                                                    / max(configs["t3"]["dram_bytes_read"]["gemm"], 1)),
            "gemm_rs_writes_change_t3": ((configs["t3"]["dram_bytes_written"]["gemm"]
                                          + configs["t3"]["dram_bytes_written"]["nmc"])
                                         / (configs["sequential"]["dram_bytes_written"]["gemm"]
                                            + configs["sequential"]["dram_bytes_written"]["rs"]) - 1.0),
        },
        "simulated": {"gpus": setup.n_gpu, "channels_per_gpu": setup.ch_sim, "channels_total": setup.ch_tot,
                      "gpu_clock_period_ps": setup.gpu_period_ps},
    }
    stats = {}
    for k, r in sorted(runs.items()):
        read, write, cmds = per[k]
        pre = f"t3.run.{k}"
        stats[f"{pre}.time_ps"] = r.time_ps
        stats[f"{pre}.gemm_end_ps"] = r.t_gemm_ps
        stats[f"{pre}.collective_end_ps"] = r.t_coll_ps
        stats[f"{pre}.t3_reduced_ps"] = r.t_t3_ps
        stats[f"{pre}.events"] = r.events
        stats[f"{pre}.requests_simulated"] = r.n_requests
        stats[f"{pre}.link_bytes"] = r.link_bytes
        stats[f"{pre}.tracker_peak_entries"] = r.tracker_peak
        stats[f"{pre}.tracker_fallback_tiles"] = r.tracker_fallbacks
        stats[f"{pre}.dma_count"] = r.dma_count
        stats[f"{pre}.queue_occupancy_mean.compute"] = float(r.occ_mean[0])
        stats[f"{pre}.queue_occupancy_mean.comm"] = float(r.occ_mean[1])
        stats[f"{pre}.queue_occupancy_max.compute"] = int(r.occ_max[0])
        stats[f"{pre}.queue_occupancy_max.comm"] = int(r.occ_max[1])
        stats[f"{pre}.mca_threshold"] = r.mca_threshold
        for s in ("gemm", "rs", "ag", "dma", "nmc"):
            stats[f"{pre}.dram_bytes_read.{s}"] = read[s]
            stats[f"{pre}.dram_bytes_written.{s}"] = write[s]
        for c, v in cmds.items():
            stats[f"{pre}.dram_commands.{c}"] = float(v)
    for name, c in configs.items():
        stats[f"t3.config.{name}.time_ps"] = int(round(c["time_ns"] * 1000))
        stats[f"t3.config.{name}.dram_bytes_total"] = c["dram_bytes_total"]
        stats[f"t3.config.{name}.energy_pJ"] = c["energy_pJ"]
    return summary, dict(sorted(stats.items()))


def run(wl, trace: str | None = None, **_options):
    from hwsim.energy import load_energy_table
    from hwsim.workload import RunResult

    cfg: T3Workload = wl.config
    table = load_energy_table(cfg.energy, file=wl.file, path="energy")
    setup, runs = simulate_all(cfg, file=wl.file, timeline=True)  # sampling does not change timing
    summary, stats = summarise(cfg, setup, runs, table)
    summary["name"] = wl.name
    if trace is not None:
        from hwsim.t3.trace import t3_timeline
        t3_timeline(setup, runs).write(trace)
    files = {"queue_occupancy.csv": _occupancy_csv(runs)}
    c = summary["configs"]
    rows = [("sequential (us)", c["sequential"]["time_ns"] / 1000)]
    for name in CONFIGS[1:]:
        rows.append((f"{name} speedup", c[name]["speedup_vs_sequential"]))
    rows += [("DRAM traffic change t3", summary["dram_traffic_change"]["t3_vs_sequential"]),
             ("RS reads ratio seq/t3", summary["dram_traffic_change"]["rs_reads_ratio_sequential_over_t3"]),
             ("tracker peak entries", c["t3"]["tracker_peak_entries"]),
             ("MCA threshold", c["t3_mca"]["mca_threshold"])]
    return RunResult(stats=stats, summary=summary, table=rows, files=files)


def _occupancy_csv(runs) -> str:
    """DRAM-queue occupancy samples of the two fused runs on channel 0 (the paper's Fig. 17 view):
    entries in the DRAM queue and requests waiting for admission, by class."""
    lines = ["run,channel,time_ps,compute,communication,compute_waiting,communication_waiting"]
    for name in ("t3", "t3_mca"):
        for t, c0, c1, f0, f1 in runs[name].samples.tolist():
            lines.append(f"{name},ch0,{t},{c0},{c1},{f0},{f1}")
    return "\n".join(lines) + "\n"


def suite_table(results):
    """The side-by-side table of `hwsim suite`: one row per case; geomean and max aggregates."""
    headers = ["workload", "model", "sublayer", "tp", "seq_us", "t3_%", "t3_mca_%", "ideal_overlap_%",
               "ideal_rs_nmc_%", "dram_change_t3_%", "rs_reads_x"]
    rows = []
    sp = {k: [] for k in CONFIGS[1:]}
    dram, rsx, gemmx, wr = [], [], [], []
    for name, s in results:
        c = s["configs"]
        w = s["workload"]
        d = s["dram_traffic_change"]
        rows.append([name, w["model"], w["sublayer"], w["tp"], round(c["sequential"]["time_ns"] / 1000, 1),
                     *(round(100 * (c[k]["speedup_vs_sequential"] - 1), 1) for k in CONFIGS[1:]),
                     round(100 * d["t3_vs_sequential"], 1), round(d["rs_reads_ratio_sequential_over_t3"], 2)])
        for k in CONFIGS[1:]:
            sp[k].append(c[k]["speedup_vs_sequential"])
        dram.append(1 + d["t3_vs_sequential"])
        rsx.append(d["rs_reads_ratio_sequential_over_t3"])
        gemmx.append(d["gemm_reads_ratio_sequential_over_t3"])
        wr.append(1 + d["gemm_rs_writes_change_t3"])
    agg = {}
    for k in CONFIGS[1:]:
        agg[f"{k}_speedup_geomean_%"] = round(100 * (_geomean(sp[k]) - 1), 1)
        agg[f"{k}_speedup_max_%"] = round(100 * (max(sp[k]) - 1), 1)
    agg["dram_change_t3_geomean_%"] = round(100 * (_geomean(dram) - 1), 1)
    agg["dram_change_t3_max_reduction_%"] = round(100 * (1 - min(dram)), 1)
    agg["rs_reads_ratio_geomean"] = round(_geomean(rsx), 2)
    agg["gemm_reads_ratio_geomean"] = round(_geomean(gemmx), 2)
    agg["gemm_rs_writes_change_geomean_%"] = round(100 * (_geomean(wr) - 1), 1)
    agg["t3_mca_gap_to_ideal_overlap_geomean_%"] = round(
        100 * (_geomean(sp["ideal_overlap"]) / _geomean(sp["t3_mca"]) - 1), 1)
    agg["t3_mca_over_t3_geomean_%"] = round(100 * (_geomean(sp["t3_mca"]) / _geomean(sp["t3"]) - 1), 1)
    return headers, rows, agg
