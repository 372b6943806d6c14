"""Lowering: a `Placement` (plus the chunking of its input vector) -> per-channel PIM command arrays.

Everything is numpy; no Python objects per command. The output is one set of arrays in issue
order, channel-major (all of channel 0, then channel 1, ...); channels are independent command
streams, so `StreamIssuer`-style in-order issue gives the same ticks whatever the interleaving.

Per channel, for each global-buffer (GB) window (docs/pim_mapping.md §3):

    [ACT_AB r0]            hoisted first activate (pim.overlap_activate), hides tRCD_MAC
    WR_GB x n              the window's input runs, each padded to whole 32 B bursts
    for each row r of the window (ascending):
        [ACT_AB r]         (not for the first row when hoisted)
        for each segment slot of the row (ascending column):
            MAC_AB x ceil(len / 16)
            RD_MAC x readout_bursts     read-and-reset of the 16 banks' accumulators
        PREA

GB windows are built per channel, greedily, from the distinct input runs (in_start, length) the
channel's segments need, sorted by in_start: a run joins the current window while the window's
padded size stays within the GB (`window_elems`). Each run is written to its own 16-aligned GB
slot, so MAC lanes line up with the bank's 32 B columns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from hwsim.dram_pim.commands import Cmd
from hwsim.mapping.partition import Placement, window_elems

if TYPE_CHECKING:  # pragma: no cover
    from hwsim.dram_pim.pim import PimSpec

_ACT_AB, _MAC, _WR_GB, _RD_MAC, _PREA = (int(Cmd.ACT_AB), int(Cmd.MAC_AB), int(Cmd.WR_GB), int(Cmd.RD_MAC),
                                          int(Cmd.PREA))


@dataclass(frozen=True)
class LoweredOp:
    """Commands of one PIM instruction, in issue order (channel-major).

    `bank` is the global bank index (channel * banks_per_channel + bank; rank-scope commands carry
    the channel's first bank), `col` the column of MAC/RD/WR (the GB burst slot for WR_GB, -1
    otherwise). Counters are structural (known before timing)."""

    cmd: np.ndarray
    bank: np.ndarray
    row: np.ndarray
    col: np.ndarray
    macs: int            # useful BF16 multiply-accumulates (elements of W used)
    bank_accesses: int   # column accesses counted per bank (a MAC_AB is one per bank)
    row_misses: int      # bank accesses that needed an activate (first access after ACT)
    n_windows: int = 0

    def __len__(self) -> int:
        return int(len(self.cmd))

    def stream(self, first_row: int) -> list[np.ndarray]:
        """What identifies its timing up to a row offset: commands, banks, rows relative to
        `first_row`, columns, and (bank accesses, row misses); not the useful MAC count."""
        return [self.cmd, self.bank, self.row - first_row, self.col,
                np.array([self.bank_accesses, self.row_misses], np.int64)]


def _excl_cumsum(a: np.ndarray) -> np.ndarray:
    out = np.zeros(len(a), dtype=np.int64)
    if len(a) > 1:
        np.cumsum(a[:-1], out=out[1:])
    return out


def _ranges(counts: np.ndarray) -> np.ndarray:
    """0..counts[k]-1 for every k, concatenated."""
    total = int(counts.sum())
    return np.arange(total, dtype=np.int64) - np.repeat(_excl_cumsum(counts), counts)


def gb_windows(ch: np.ndarray, in_start: np.ndarray, length: np.ndarray, lanes: int, window: int):
    """Greedy per-channel GB windows over the distinct input runs.

    Returns (run_window, run_slot, window_channel, window_bursts, inverse): for each distinct run
    (channel, in_start, length) its window id (global, channel-major, in order) and its first GB
    burst slot; per window its channel and WR_GB bursts; `inverse` maps the inputs to runs."""
    span = int(in_start.max() + length.max() + 1) if len(in_start) else 1
    key = (ch * span + in_start) * span + length
    runs, inverse = np.unique(key, return_inverse=True)
    r_ch = runs // (span * span)
    r_len = runs % span
    r_bursts = -(-r_len // lanes)
    cap = window // lanes
    n = len(runs)
    r_win = np.empty(n, dtype=np.int64)
    r_slot = np.empty(n, dtype=np.int64)
    w_ch: list[int] = []
    w_b: list[int] = []
    cur, fill = -1, 0
    rc, rb = r_ch.tolist(), r_bursts.tolist()
    for k in range(n):
        if rc[k] != cur or fill + rb[k] > cap:
            cur, fill = rc[k], 0
            w_ch.append(cur)
            w_b.append(0)
        r_win[k] = len(w_ch) - 1
        r_slot[k] = fill
        fill += rb[k]
        w_b[-1] = fill
    return r_win, r_slot, np.array(w_ch, dtype=np.int64), np.array(w_b, dtype=np.int64), inverse


def slot_table(p: Placement, pim_spec: "PimSpec") -> tuple[np.ndarray, ...]:
    """(channel, row, column, input start, length) of every (channel, row, column) slot of `p`, in
    slot order: all that `lower_vmm` reads of the placement besides its MAC count (lockstep makes
    in_start/length common to the banks of a slot; the first segment's are taken)."""
    L = pim_spec.mac_lanes
    col0_all = p.col_elem // L
    key = (p.channel * pim_spec.rows_per_bank + p.row) * (pim_spec.row_elems // L) + col0_all
    _, first = np.unique(key, return_index=True)
    return p.channel[first], p.row[first], col0_all[first], p.in_start[first], p.length[first]


def lower_vmm(p: Placement, pim_spec: "PimSpec") -> LoweredOp:
    """Commands of y = x @ W on the PIM for placement `p` (see the module docstring)."""
    B, L = pim_spec.banks_per_channel, pim_spec.mac_lanes
    rb = pim_spec.readout_bursts
    s_ch, s_row, s_col, s_in, s_len = slot_table(p, pim_spec)
    s_ncol = -(-s_len // L)

    r_win, _, w_ch, w_bursts, inv = gb_windows(s_ch, s_in, s_len, L, window_elems(pim_spec))
    s_win = r_win[inv]
    o = np.lexsort((s_col, s_row, s_win))
    s_ch, s_row, s_col, s_win, s_ncol = s_ch[o], s_row[o], s_col[o], s_win[o], s_ncol[o]
    n_slots = len(o)
    # Row groups: (window, row), in order.
    new_g = np.ones(n_slots, dtype=bool)
    new_g[1:] = (s_win[1:] != s_win[:-1]) | (s_row[1:] != s_row[:-1])
    g_first_slot = np.flatnonzero(new_g)
    s_g = np.cumsum(new_g) - 1
    g_win = s_win[g_first_slot]
    g_row = s_row[g_first_slot]
    g_ch = s_ch[g_first_slot]
    n_g = len(g_first_slot)
    s_items = s_ncol + rb
    g_content = np.add.reduceat(s_items, g_first_slot) if n_slots else np.zeros(0, np.int64)
    g_len = g_content + 2                                   # ACT_AB + content + PREA
    new_w = np.ones(n_g, dtype=bool)
    new_w[1:] = g_win[1:] != g_win[:-1]
    g_cs = _excl_cumsum(g_len)
    g_off = g_cs - g_cs[np.flatnonzero(new_w)][np.cumsum(new_w) - 1]   # offset within the window
    n_w = len(w_ch)
    w_total = w_bursts + np.bincount(g_win, weights=g_len, minlength=n_w).astype(np.int64)
    w_start = _excl_cumsum(w_total)
    N = int(w_total.sum())

    cmd = np.empty(N, dtype=np.int64)
    row = np.empty(N, dtype=np.int64)
    col = np.full(N, -1, dtype=np.int64)
    gw_start, gw_b = w_start[g_win], w_bursts[g_win]
    content = gw_start + gw_b + g_off + 1
    if pim_spec.overlap_activate:
        act = np.where(new_w, gw_start, gw_start + gw_b + g_off)
        gb_pos = np.repeat(w_start + 1, w_bursts) + _ranges(w_bursts)
    else:
        act = gw_start + gw_b + g_off
        gb_pos = np.repeat(w_start, w_bursts) + _ranges(w_bursts)
    prea = content + g_content
    cmd[act], row[act] = _ACT_AB, g_row
    cmd[prea], row[prea] = _PREA, g_row
    cmd[gb_pos] = _WR_GB
    col[gb_pos] = _ranges(w_bursts)
    row[gb_pos] = -1
    s_pos = content[s_g] + (_excl_cumsum(s_items) - _excl_cumsum(s_items)[g_first_slot][s_g])
    k = _ranges(s_ncol)
    mac_pos = np.repeat(s_pos, s_ncol) + k
    cmd[mac_pos] = _MAC
    col[mac_pos] = np.repeat(s_col, s_ncol) + k
    row[mac_pos] = np.repeat(s_row, s_ncol)
    for r in range(rb):
        pos = s_pos + s_ncol + r
        cmd[pos] = _RD_MAC
        row[pos] = -1
    # Bank (first bank of the channel: every PIM command is rank scope).
    w_cmds_ch = np.repeat(w_ch, w_total)
    bank = w_cmds_ch * B
    n_mac = int(s_ncol.sum())
    return LoweredOp(cmd, bank, row, col, macs=p.elements, bank_accesses=n_mac * B,
                     row_misses=n_g * B, n_windows=n_w)
