"""Request-level DRAM simulation: decode addresses, run the scheduling kernel, gather stats."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from hwsim.dram_pim.commands import N_CMDS, Cmd
from hwsim.dram_pim.device import Device
from hwsim.dram_pim.scheduler import (C_CLOSED, C_EXHAUSTIVE, C_FCFS, C_FE_RATIO, C_MEM_RATIO, C_NREFI, C_OFFERED,
                                      C_RD_LAT, C_RECORD, C_REFRESH, N_CFG,
                                      C_RQ, C_WQ, C_WR_LAT, CONFLICT, HIT, MISS, SCHED_FCFS, SCHED_FRFCFS,
                                      SCHED_READY_OLDEST, PAGE_CLOSED, PAGE_CLOSED_ALWAYS, PAGE_OPEN,
                                      request_state, simulate_requests)
from hwsim.dram_pim.spec import DramSpec
from hwsim.mapping.address import decode


@dataclass
class CommandLog:
    """Issued commands, in issue order (tick in command-clock cycles)."""

    tick: np.ndarray
    cmd: np.ndarray
    bank: np.ndarray   # global bank index
    row: np.ndarray
    column: np.ndarray

    def __len__(self) -> int:
        return len(self.tick)

    def in_issue_order(self) -> "CommandLog":
        """The log sorted by tick (stable): per-channel streams merged into one issue order."""
        if len(self.tick) < 2 or bool((self.tick[1:] >= self.tick[:-1]).all()):
            return self
        o = np.argsort(self.tick, kind="stable")
        return CommandLog(self.tick[o], self.cmd[o], self.bank[o], self.row[o], self.column[o])


@dataclass
class DramResult:
    stats: dict
    commands: CommandLog | None
    accept_tick: np.ndarray
    done_tick: np.ndarray
    row_class: np.ndarray
    wall_s: float = 0.0
    extra: dict = field(default_factory=dict)


def _cfg(dspec: DramSpec, offered: bool, record: bool, exhaustive: bool) -> np.ndarray:
    c, t = dspec.controller, dspec.timing
    cfg = np.zeros(N_CFG, dtype=np.int64)
    cfg[C_FCFS] = {"frfcfs": SCHED_FRFCFS, "fcfs": SCHED_FCFS, "ready_oldest": SCHED_READY_OLDEST}[c.scheduler]
    cfg[C_CLOSED] = {"open": PAGE_OPEN, "closed": PAGE_CLOSED, "closed_always": PAGE_CLOSED_ALWAYS}[c.page_policy]
    cfg[C_RQ], cfg[C_WQ] = c.read_queue, c.write_queue
    cfg[C_REFRESH] = c.refresh == "all_bank"
    cfg[C_NREFI] = t.nREFI
    cfg[C_RD_LAT] = t.nCL + t.nBL
    cfg[C_WR_LAT] = t.nCWL + t.nBL
    cfg[C_OFFERED] = offered
    cfg[C_RECORD] = record
    cfg[C_FE_RATIO], cfg[C_MEM_RATIO] = c.frontend_clock_ratio, c.memory_clock_ratio
    cfg[C_EXHAUSTIVE] = exhaustive
    return cfg


def simulate(dspec: DramSpec, addresses: np.ndarray, is_write: np.ndarray,
             arrive_cycle: np.ndarray | None = None, *, record: bool = False,
             exhaustive: bool = False) -> DramResult:
    """Simulate a request stream. With `arrive_cycle` None, requests are offered one per cycle as
    fast as the controller accepts them (Ramulator 2 load/store traces); otherwise request i may
    enter its queue no earlier than `arrive_cycle[i]` (DRAMSim3 traces). Order is kept.
    `exhaustive` turns off the skipping of decision ticks at which provably nothing can issue
    (same results, more decisions: the reference for tests)."""
    n = len(addresses)
    f = decode(dspec, addresses)
    dev = Device(dspec)
    bank = dev.bank_index(f["channel"], f["rank"], f["bankgroup"], f["bank"]).astype(np.int64)
    avail = np.zeros(n, dtype=np.int64) if arrive_cycle is None else np.asarray(arrive_cycle, dtype=np.int64)
    is_write = np.asarray(is_write, dtype=np.bool_)
    log_cap = (3 * n + 64) if record else 0
    cfg = _cfg(dspec, arrive_cycle is None, record, exhaustive)
    hi, lo = dspec.controller.write_high_watermark, dspec.controller.write_low_watermark
    # Load the kernel (numba cache or compile) on an empty stream first, so that wall_s and
    # requests_per_s measure simulation, not the one-off load of the compiled kernel.
    e, empty_dev = np.zeros(0, dtype=np.int64), Device(dspec)
    simulate_requests(empty_dev.state, e, np.zeros(0, dtype=np.bool_), e, e, e, e, cfg, hi, lo, e, e, e, e, e,
                      request_state(empty_dev.state, 0, cfg))
    t0 = time.perf_counter()
    while True:
        logs = [np.zeros(log_cap, dtype=np.int64) for _ in range(5)]
        dev = Device(dspec)
        out = simulate_requests(dev.state, avail, is_write, f["channel"], bank, f["row"], f["column"],
                                cfg, hi, lo, *logs, request_state(dev.state, n, cfg))
        accept, done, cls, counts, n_log, status = out
        if status == 1:
            log_cap = 2 * n_log + 64
            continue
        if status == 2:
            raise RuntimeError("DRAM controller deadlock (internal error)")
        break
    wall_s = time.perf_counter() - t0
    commands = None
    if record:
        commands = CommandLog(*(a[:n_log] for a in logs))
    stats = _stats(dspec, dev, is_write, accept, done, cls, counts, commands)
    stats["wall_s"] = wall_s
    stats["requests_per_s"] = n / wall_s if wall_s > 0 else 0.0
    return DramResult(stats, commands, accept, done, cls, wall_s)


def _stats(dspec, dev, is_write, accept, done, cls, counts, commands) -> dict:
    t = dspec.timing
    n = len(accept)
    cycles = int(done.max()) if n else 0
    reads = int((~is_write).sum())
    writes = n - reads
    rd_lat = (done - accept)[~is_write]
    bytes_moved = n * dspec.organization.burst_bytes
    seconds = cycles * t.tCK_ps * 1e-12
    stats = {
        "cycles": cycles,
        # When the last request entered its queue: where Ramulator 2's memory_system_cycles stops
        # for a load/store trace (its main loop ends once the front end has sent every request).
        "last_accept_cycle": int(accept.max()) if n else 0,
        "time_ns": cycles * t.tCK_ps / 1000.0,
        "reads": reads,
        "writes": writes,
        "row_hits": int((cls == HIT).sum()),
        "row_misses": int((cls == MISS).sum()),
        "row_conflicts": int((cls == CONFLICT).sum()),
        "read_latency_avg_cycles": float(rd_lat.mean()) if reads else 0.0,
        "read_latency_max_cycles": int(rd_lat.max()) if reads else 0,
        "bandwidth_GBps": bytes_moved / seconds / 1e9 if seconds > 0 else 0.0,
        "peak_bandwidth_GBps": dspec.peak_bandwidth_GBps,
        "n_act": int(counts[Cmd.ACT] + counts[Cmd.ACT_AB]),
        "n_pre": int(counts[Cmd.PRE] + counts[Cmd.PREA] + counts[Cmd.RDA] + counts[Cmd.WRA]),
        "n_ref": int(counts[Cmd.REFab] + counts[Cmd.REFpb]),
        "commands": {Cmd(c).name: int(counts[c]) for c in range(N_CMDS) if counts[c]},
    }
    stats["row_hit_rate"] = stats["row_hits"] / n if n else 0.0
    if commands is not None and cycles > 0:
        col = np.isin(commands.cmd, [Cmd.RD, Cmd.WR, Cmd.RDA, Cmd.WRA])
        per_bank = np.bincount(commands.bank[col], minlength=dev.n_banks)
        stats["bank_utilisation"] = [round(float(x), 6) for x in per_bank * t.nBL / cycles]
    return stats


COMMAND_CSV_HEADER = "tick,channel,rank,bankgroup,bank,row,column,command"
_ROW_CMDS = [Cmd.ACT, Cmd.ACT_AB, Cmd.RD, Cmd.WR, Cmd.RDA, Cmd.WRA, Cmd.UPD]
_COL_CMDS = [Cmd.RD, Cmd.WR, Cmd.RDA, Cmd.WRA, Cmd.UPD, Cmd.MAC_AB]


def trace_rows(dspec: DramSpec, log: CommandLog) -> list[tuple]:
    """The log in issue order as rows (tick, channel, rank, bankgroup, bank, row, column, Cmd), as
    `hwsim.dram_pim.checker.check_trace` takes them. Rank-scope commands have bankgroup = bank = -1;
    row and column are -1 where the command has none."""
    from hwsim.dram_pim.commands import META, RANK

    o = dspec.organization
    log = log.in_issue_order()
    b = log.bank
    ch = b // (o.ranks * o.banks_per_rank)
    rank = (b // o.banks_per_rank) % o.ranks
    cmds = [Cmd(c) for c in range(N_CMDS)]
    rank_scope = np.array([META[c].scope == RANK for c in cmds])[log.cmd]
    bg = np.where(rank_scope, -1, (b // o.banks_per_group) % o.bankgroups)
    bk = np.where(rank_scope, -1, b % o.banks_per_group)
    row = np.where(np.isin(log.cmd, _ROW_CMDS), log.row, -1)
    col = np.where(np.isin(log.cmd, _COL_CMDS), log.column, -1)
    return [(t, c, r, g, k, w, cl, cmds[m]) for t, c, r, g, k, w, cl, m in
            zip(log.tick.tolist(), ch.tolist(), rank.tolist(), bg.tolist(), bk.tolist(), row.tolist(),
                col.tolist(), log.cmd.tolist())]


def command_csv(dspec: DramSpec, log: CommandLog) -> str:
    """The command trace as CSV (header `COMMAND_CSV_HEADER`, fields as `trace_rows`), as `hwsim
    check` reads it."""
    lines = [COMMAND_CSV_HEADER]
    lines += [f"{t},{c},{r},{g},{k},{w},{cl},{cmd.name}" for t, c, r, g, k, w, cl, cmd in trace_rows(dspec, log)]
    return "\n".join(lines) + "\n"
