"""The three 100,000-request trace-mode benchmark traces (issue #5 scenario 1), shared by
benchmarks/run.py and benchmarks/dram_ab.py."""

from __future__ import annotations

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
