"""The three 100,000-request trace-mode benchmark traces (issue #5 scenario 1), shared by
benchmarks/run.py, dram_ab.py and dram_profile.py, and the harness the last two use to run a copy
of the controller kernel on one of them."""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import numpy as np

from hwsim.mapping.address import encode

KINDS = ("sequential", "random", "conflict")


def trace_addresses(spec, kind: str, n: int) -> np.ndarray:
    """Byte addresses of `n` requests: `sequential` (consecutive bursts), `random` (uniform over the
    device, seed 1) or `conflict` (every request a new row of bank 0: same-bank row conflicts)."""
    if kind == "sequential":
        return np.arange(n, dtype=np.uint64) * 32
    if kind == "random":
        return np.random.default_rng(1).integers(0, spec.organization.capacity_bytes // 32, n).astype(np.uint64) * 32
    if kind == "conflict":
        return encode(spec, {"row": np.arange(n) % spec.organization.rows})
    raise SystemExit(f"unknown trace {kind!r}: expected one of {', '.join(KINDS)}")


def load_kernel(path: Path, name: str):
    """Import a copy of scheduler.py as module hwsim.dram_pim.<name>."""
    spec = importlib.util.spec_from_file_location(f"hwsim.dram_pim.{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def kernel_trial(kind: str, n: int):
    """A function that runs a scheduler module's `simulate_requests` once on trace `kind` (`n` reads
    on GDDR6_16Gbps_x16, offered front end, no command log) from a fresh device and returns
    (kernel seconds, done ticks)."""
    from hwsim.dram_pim.controller import _cfg
    from hwsim.dram_pim.device import Device
    from hwsim.dram_pim.spec import load_dram_spec
    from hwsim.mapping.address import decode

    spec = load_dram_spec(preset="GDDR6_16Gbps_x16")
    cfg = _cfg(spec, True, False, False)
    hi, lo = spec.controller.write_high_watermark, spec.controller.write_low_watermark
    f = decode(spec, trace_addresses(spec, kind, n))
    bank = Device(spec).bank_index(f["channel"], f["rank"], f["bankgroup"], f["bank"]).astype(np.int64)
    arrive, write, empty = np.zeros(n, np.int64), np.zeros(n, bool), np.zeros(0, np.int64)

    def run(module) -> tuple[float, np.ndarray]:
        dev = Device(spec)
        work = module.request_state(dev.state, n, cfg)
        t0 = time.perf_counter()
        out = module.simulate_requests(dev.state, arrive, write, f["channel"], bank, f["row"], f["column"], cfg, hi,
                                       lo, empty, empty, empty, empty, empty, work)
        return time.perf_counter() - t0, out[1]

    return run
