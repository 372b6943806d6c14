"""Synthetic DRAM traffic workloads (`kind: dram`): streaming, random, mixed read/write and row
ping-pong request streams on a DRAM preset, reported like trace mode."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from hwsim import invariants
from hwsim.config import spec
from hwsim.dram_pim.controller import command_csv, simulate
from hwsim.dram_pim.spec import DramSpec, load_dram_spec
from hwsim.errors import InputError
from hwsim.mapping.address import encode


@dataclass(frozen=True, kw_only=True)
class DramSource:
    """Which DRAM: a preset or a spec file, plus overrides (nested keys of the spec)."""

    preset: str | None = spec("DRAM preset name (see `hwsim presets dram`)", default=None)
    spec_file: str | None = spec("DRAM spec YAML file, relative to the workload file", default=None)
    overrides: dict = spec("nested overrides of the spec, e.g. {timing: {nCL: 20}}", default_factory=dict)

    def validate(self, file, path):
        if (self.preset is None) == (self.spec_file is None):
            raise InputError(file, path, "give exactly one of preset or spec_file")


@dataclass(frozen=True, kw_only=True)
class Traffic:
    """A synthetic request stream."""

    pattern: Literal["stream", "random", "mixed", "pingpong"] = spec(
        "stream: consecutive bursts; random: uniform bursts over the footprint; mixed: random with "
        "writes; pingpong: alternate two rows of one bank", default="stream")
    requests: int = spec("number of requests", min=1, default=10000)
    read_fraction: float = spec("fraction of reads (stream, random, mixed)", min=0.0, default=1.0)
    footprint_bytes: int = spec("address range used by random/mixed (0: the whole device)", unit="B",
                                min=0, default=0)
    seed: int = spec("random seed", min=0, default=1)

    def validate(self, file, path):
        if self.read_fraction > 1.0:
            raise InputError(file, f"{path}.read_fraction", f"got {self.read_fraction}; expected 0..1")


@dataclass(frozen=True, kw_only=True)
class DramWorkload:
    """`kind: dram`: a synthetic request stream on one DRAM."""

    name: str | None = spec("workload name", default=None)
    description: str = spec("what the workload is for", default="")
    dram: DramSource = spec("the DRAM")
    traffic: Traffic = spec("the request stream", default_factory=Traffic)
    dump_commands: bool = spec("also write the command trace (commands.csv)", default=False)


def generate(dspec: DramSpec, t: Traffic) -> tuple[np.ndarray, np.ndarray]:
    """Byte addresses and write flags of a synthetic stream."""
    rng = np.random.default_rng(t.seed)
    n = t.requests
    burst = dspec.organization.burst_bytes
    capacity = dspec.organization.capacity_bytes
    if t.pattern == "stream":
        addrs = (np.arange(n, dtype=np.uint64) * np.uint64(burst)) % np.uint64(capacity)
    elif t.pattern in ("random", "mixed"):
        span = min(t.footprint_bytes or capacity, capacity) // burst
        addrs = rng.integers(0, max(span, 1), n, dtype=np.uint64) * np.uint64(burst)
    else:  # pingpong: rows 0 and 1 of bank 0, column walking
        rows = np.arange(n) % 2
        cols = (np.arange(n) // 2) % dspec.organization.columns
        addrs = encode(dspec, {"row": rows, "column": cols})
    read_fraction = 0.5 if t.pattern == "mixed" and t.read_fraction == 1.0 else t.read_fraction
    is_write = rng.random(n) >= read_fraction
    return addrs, is_write


def run(wl, trace: str | None = None, **_options):
    from hwsim.workload import RunResult

    cfg: DramWorkload = wl.config
    src = cfg.dram
    spec_file = str(wl.base_dir / src.spec_file) if src.spec_file else None
    dspec = load_dram_spec(preset=src.preset, spec_file=spec_file, overrides=src.overrides or None,
                           file=wl.file, path="dram")
    addrs, is_write = generate(dspec, cfg.traffic)
    debug = invariants.enabled()
    res = simulate(dspec, addrs, is_write, record=cfg.dump_commands or trace is not None or debug)
    if debug:
        invariants.check_dram_run(dspec, is_write, res)
    if trace is not None:
        from hwsim.timeline import dram_command_timeline
        dram_command_timeline(dspec, res.commands).write(trace)
    stats = {k: v for k, v in res.stats.items() if k not in ("wall_s", "requests_per_s")}
    summary = {k: stats[k] for k in ("cycles", "time_ns", "reads", "writes", "row_hits", "row_misses",
                                     "row_conflicts", "row_hit_rate", "read_latency_avg_cycles",
                                     "bandwidth_GBps", "n_act", "n_pre", "n_ref")}
    summary["dram"] = dspec.name
    files = {"commands.csv": command_csv(dspec, res.commands)} if cfg.dump_commands else {}
    table = [(k, summary[k]) for k in summary]
    perf = {"wall_s": res.stats["wall_s"], "requests_per_s": res.stats["requests_per_s"]}
    return RunResult(stats=stats, summary=summary, files=files, table=table, perf=perf)
