"""Debug mode: conservation laws checked on a run's own results (`hwsim run --debug`,
`hwsim dram --debug`, or HWSIM_DEBUG=1 in the environment).

A violated law is a bug in hwsim, never a property of the input, so it raises `InvariantError`
(an internal error, exit code 1) rather than `InputError`. The checks:

* DRAM requests: every request is accepted once and completes once, after it was accepted, and the
  command trace holds exactly one column command per request (reads as RD/RDA, writes as WR/WRA);
  the trace then passes the independent protocol checker.
* PIM VMM: every weight element of the placement is multiplied exactly once: the MAC_AB commands
  of the lowered instruction touch each (channel, row, column burst) at most once, and every burst
  that holds a placed element is touched.
* T3 fused GEMM + reduce-scatter: every request completes; on every simulated GPU g and channel,
  each burst of the chunk that g computes at stage s (0-based) receives exactly one local and one
  incoming near-memory update when s >= 1 and none at s = 0 (that partial leaves as remote
  stores), and is read exactly once by the DMA when 1 <= s <= TP-2 (the last chunk is g's result).
  So every partial is added into the reduction exactly once.
"""

from __future__ import annotations

import os
from contextlib import contextmanager

import numpy as np

_forced: bool | None = None


class InvariantError(RuntimeError):
    """A conservation law of the simulation does not hold (an hwsim bug)."""


def enabled() -> bool:
    """Debug checks on? (`debug_mode(True)` or HWSIM_DEBUG set to anything but '' / '0')."""
    if _forced is not None:
        return _forced
    return os.environ.get("HWSIM_DEBUG", "") not in ("", "0")


@contextmanager
def debug_mode(on: bool | None):
    """Force debug checks on or off inside the block (None: leave it to HWSIM_DEBUG)."""
    global _forced
    previous, _forced = _forced, (None if on is None else bool(on))
    try:
        yield
    finally:
        _forced = previous


def check_requests_complete(is_write: np.ndarray, accept_tick: np.ndarray, done_tick: np.ndarray,
                            commands=None) -> None:
    """Every request issued completes exactly once (see the module docstring)."""
    from hwsim.dram_pim.commands import Cmd

    n = len(is_write)
    if len(accept_tick) != n or len(done_tick) != n:
        raise InvariantError(f"{n} requests but {len(accept_tick)} accept and {len(done_tick)} completion ticks")
    never = np.flatnonzero(accept_tick < 0)
    if len(never):
        raise InvariantError(f"{len(never)} requests never accepted (first: request {int(never[0])})")
    early = np.flatnonzero(done_tick <= accept_tick)
    if len(early):
        i = int(early[0])
        raise InvariantError(f"{len(early)} requests complete at or before acceptance (request {i}: "
                             f"accepted {int(accept_tick[i])}, done {int(done_tick[i])})")
    if commands is None:
        return
    reads = int((~np.asarray(is_write, bool)).sum())
    n_rd = int(np.isin(commands.cmd, [int(Cmd.RD), int(Cmd.RDA)]).sum())
    n_wr = int(np.isin(commands.cmd, [int(Cmd.WR), int(Cmd.WRA)]).sum())
    if (n_rd, n_wr) != (reads, n - reads):
        raise InvariantError(f"{reads} reads and {n - reads} writes requested but {n_rd} read and {n_wr} write "
                             "column commands issued")


def check_dram_run(dspec, is_write: np.ndarray, result) -> None:
    """Both DRAM laws on a `hwsim.dram_pim.controller.simulate` result recorded with its commands."""
    check_requests_complete(is_write, result.accept_tick, result.done_tick, result.commands)
    check_protocol(dspec, result.commands)


def check_protocol(dspec, commands) -> None:
    """The independent protocol checker finds no violation in `commands`."""
    from hwsim.dram_pim.checker import check_trace
    from hwsim.dram_pim.controller import trace_rows

    violations = check_trace(dspec, trace_rows(dspec, commands))
    if violations:
        raise InvariantError(f"{len(violations)} timing violations in the issued commands; first: {violations[0]}")


def check_vmm_reads_every_weight_once(placement, lowered, *, lanes: int, banks_per_channel: int) -> None:
    """Every placed weight element is multiplied exactly once by the lowered VMM."""
    from hwsim.dram_pim.commands import Cmd

    mac = lowered.cmd == int(Cmd.MAC_AB)
    first = placement.col_elem // lanes
    n_bursts = (placement.col_elem + placement.length - 1) // lanes - first + 1
    seg = np.repeat(np.arange(placement.n_segments), n_bursts)
    burst = first[seg] + (np.arange(int(n_bursts.sum())) - np.repeat(np.cumsum(n_bursts) - n_bursts, n_bursts))
    keys = _burst_keys(lowered.bank[mac] // banks_per_channel, lowered.row[mac], lowered.col[mac])
    uniq, counts = np.unique(keys, return_counts=True)
    if len(uniq) and counts.max() > 1:
        i = int(np.flatnonzero(mac)[np.flatnonzero(keys == uniq[np.argmax(counts)])[0]])
        raise InvariantError(f"{placement.name}: MAC_AB on channel {int(lowered.bank[i]) // banks_per_channel}, row "
                             f"{int(lowered.row[i])}, column {int(lowered.col[i])} issued {int(counts.max())} times "
                             "(weights multiplied twice)")
    need = _burst_keys(placement.channel[seg], placement.row[seg], burst)
    missing = np.setdiff1d(need, uniq)
    if len(missing):
        raise InvariantError(f"{placement.name}: {len(missing)} weight bursts are never multiplied "
                             f"(of {len(np.unique(need))} placed)")


def _burst_keys(channel: np.ndarray, row: np.ndarray, column: np.ndarray) -> np.ndarray:
    """One int64 per (channel, row, column burst): 20 bits each for row and column."""
    if len(row) and (int(row.max()) >= 1 << 20 or int(column.max()) >= 1 << 20):
        raise InvariantError("row or column index beyond 2^20: widen the burst keys")
    return (channel.astype(np.int64) << 40) | (row.astype(np.int64) << 20) | column.astype(np.int64)


def check_t3_reduction_once(setup, res) -> None:
    """Every byte of the fused reduce-scatter is reduced exactly once (see the module docstring).
    `res` is a T3 fused run simulated with record=True."""
    from hwsim.t3 import system as S
    from hwsim.t3.producer import BURST

    q, plan = res.requests, setup.plan
    tp = plan.tp
    if (q["done"] < 0).any():
        raise InvariantError(f"{int((q['done'] < 0).sum())} of {len(q['done'])} T3 requests never completed")
    base, per_chunk = int(plan.chunk_off[0]) // BURST, plan.chunk_bytes // BURST
    bursts = base + np.arange(tp * per_chunk)
    simulated = bursts % setup.ch_tot < setup.ch_sim
    chunk = np.arange(tp * per_chunk) // per_chunk
    for g in range(setup.n_gpu):
        stage = (chunk + g) % tp
        for kind, what, want in ((S.K_STORE, "local updates", stage >= 1), (S.K_NMC, "incoming updates", stage >= 1),
                                 (S.K_DMA, "DMA reads", (stage >= 1) & (stage <= tp - 2))):
            b = q["b"][(q["gpu"] == g) & (q["kind"] == kind)] - base
            if len(b) and (b.min() < 0 or b.max() >= len(bursts)):
                raise InvariantError(f"GPU {g}: {what} outside the output buffer")
            got = np.bincount(b, minlength=len(bursts))
            bad = np.flatnonzero(got != np.where(simulated & want, 1, 0))
            if len(bad):
                i = int(bad[0])
                raise InvariantError(f"GPU {g}: {len(bad)} output bursts with the wrong number of {what} (burst {i} of "
                                     f"chunk {int(chunk[i])}, stage {int(stage[i]) + 1}: {int(got[i])})")
