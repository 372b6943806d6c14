"""Device state of every channel as numpy arrays, and the two numba primitives every scheduler
uses: `earliest` (the first tick a command may issue) and `issue` (apply its effects).

Node ids: channels first, then ranks, bank groups and banks; `anc[bank, level]` gives the node id
of a bank's ancestor at each level (channel, rank, bankgroup, bank). `ready[node, cmd]` is the
earliest tick `cmd` may be issued to any bank under `node`, as far as rules at that node's
level are concerned. Ticks are in command-clock cycles.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from hwsim.dram_pim.commands import (BUS_NONE, N_CMDS, NEED_ALL_CLOSED, NEED_ALL_OPEN, NEED_CLOSED,
                                     NEED_OPEN, ROW_CLOSE, ROW_OPEN, meta_array)
from hwsim.dram_pim.constraints import compile_timing
from hwsim.dram_pim.spec import DramSpec

# Indices of the state tuple passed to kernels.
READY, ANC, OPEN_ROW, LAT, W_LEVEL, W_COUNT, W_LAT, W_PREV, W_NEXT, W_HIST, W_N, W_POS, META, GEOM = range(14)
# Indices into GEOM.
G_CHANNELS, G_RANKS, G_BANKGROUPS, G_BANKS_PER_GROUP, G_BANKS_PER_RANK, G_BANKS_PER_CHANNEL = range(6)


class Device:
    """State arrays of all channels of one DRAM spec, with its compiled timing rules."""

    def __init__(self, dspec: DramSpec):
        o = dspec.organization
        self.spec = dspec
        C, R, G, B = o.channels, o.ranks, o.bankgroups, o.banks_per_group
        n_banks = C * R * G * B
        self.n_banks = n_banks
        bank = np.arange(n_banks)
        ch = bank // (R * G * B)
        rank = bank // (G * B)
        bg = bank // B
        rank_base, bg_base, bank_base = C, C + C * R, C + C * R + C * R * G
        self.anc = np.stack([ch, rank_base + rank, bg_base + bg, bank_base + bank], axis=1).astype(np.int64)
        self.n_nodes = bank_base + n_banks
        ct = compile_timing(dspec.timing)
        self.ready = np.zeros((self.n_nodes, N_CMDS), dtype=np.int64)
        self.open_row = np.full(n_banks, -1, dtype=np.int64)
        w = len(ct.win_lat)
        self.win_hist = np.zeros((w, self.n_nodes, int(ct.win_count.max())), dtype=np.int64)
        self.win_n = np.zeros((w, self.n_nodes), dtype=np.int64)
        self.win_pos = np.zeros((w, self.n_nodes), dtype=np.int64)
        self.geom = np.array([C, R, G, B, G * B, R * G * B], dtype=np.int64)
        self.state = (self.ready, self.anc, self.open_row, ct.lat, ct.win_level, ct.win_count, ct.win_lat,
                      ct.win_prev, ct.win_next, self.win_hist, self.win_n, self.win_pos, meta_array(),
                      self.geom)

    def bank_index(self, channel, rank, bankgroup, bank):
        """Global bank index (works on numpy arrays too)."""
        o = self.spec.organization
        return ((channel * o.ranks + rank) * o.bankgroups + bankgroup) * o.banks_per_group + bank

    def snapshot(self, tick: int) -> bytes:
        """Bytes describing the state relative to `tick` (future constraints only): two states with
        equal snapshots behave identically from `tick` on. Used as a memoisation key."""
        rel = np.maximum(self.ready - tick, 0)
        hist_rel = np.where(self.win_n[..., None] > 0, np.maximum(self.win_hist - tick, -(1 << 40)), 0)
        return b"".join(a.tobytes() for a in (rel, self.open_row, hist_rel, self.win_n, self.win_pos))


@njit(cache=True)
def bank_state_ok(st, cmd, bank, row):
    """True if the bank-state precondition of `cmd` holds (right row open, banks closed, ...)."""
    open_row, meta, geom = st[OPEN_ROW], st[META], st[GEOM]
    need = meta[cmd, 1]
    if need == NEED_OPEN:
        return open_row[bank] == row
    if need == NEED_CLOSED:
        return open_row[bank] == -1
    if need == NEED_ALL_OPEN or need == NEED_ALL_CLOSED:
        bpr = geom[G_BANKS_PER_RANK]
        first = bank - bank % bpr
        for b in range(first, first + bpr):
            if (open_row[b] == -1) == (need == NEED_ALL_OPEN):
                return False
    return True


@njit(cache=True)
def earliest(st, cmd, bank):
    """Earliest tick at which `cmd` to `bank` satisfies every timing rule (state not checked)."""
    ready, anc, meta, geom = st[READY], st[ANC], st[META], st[GEOM]
    t = 0
    first, last = bank, bank + 1
    if meta[cmd, 0] != 0:
        bpr = geom[G_BANKS_PER_RANK]
        first = bank - bank % bpr
        last = first + bpr
    for b in range(first, last):
        for lvl in range(4):
            v = ready[anc[b, lvl], cmd]
            if v > t:
                t = v
    w_level, w_count, w_lat, w_next = st[W_LEVEL], st[W_COUNT], st[W_LAT], st[W_NEXT]
    hist, w_n, w_pos = st[W_HIST], st[W_N], st[W_POS]
    for w in range(w_lat.shape[0]):
        if w_next[w, cmd]:
            for b in range(first, last):
                node = anc[b, w_level[w]]
                if w_n[w, node] == w_count[w]:
                    v = hist[w, node, w_pos[w, node]] + w_lat[w]
                    if v > t:
                        t = v
    return t


@njit(cache=True)
def _raise(ready, lat, lvl, cmd, node, tick):
    for n in range(lat.shape[2]):
        v = lat[lvl, cmd, n]
        if v >= 0 and tick + v > ready[node, n]:
            ready[node, n] = tick + v


@njit(cache=True)
def issue(st, cmd, bank, row, tick):
    """Apply the effects of issuing `cmd` to `bank` (row `row`) at `tick`."""
    ready, anc, open_row, lat, meta, geom = st[READY], st[ANC], st[OPEN_ROW], st[LAT], st[META], st[GEOM]
    first, last = bank, bank + 1
    if meta[cmd, 0] != 0:
        bpr = geom[G_BANKS_PER_RANK]
        first = bank - bank % bpr
        last = first + bpr
    _raise(ready, lat, 0, cmd, anc[bank, 0], tick)
    _raise(ready, lat, 1, cmd, anc[bank, 1], tick)
    bpg = geom[G_BANKS_PER_GROUP]
    for b in range(first, last):
        if b == first or b % bpg == 0:
            _raise(ready, lat, 2, cmd, anc[b, 2], tick)
        _raise(ready, lat, 3, cmd, anc[b, 3], tick)
        effect = meta[cmd, 2]
        if effect == ROW_OPEN:
            open_row[b] = row
        elif effect == ROW_CLOSE:
            open_row[b] = -1
    w_level, w_count, w_prev = st[W_LEVEL], st[W_COUNT], st[W_PREV]
    hist, w_n, w_pos = st[W_HIST], st[W_N], st[W_POS]
    for w in range(w_level.shape[0]):
        if w_prev[w, cmd]:
            node = anc[bank, w_level[w]]
            hist[w, node, w_pos[w, node]] = tick
            w_pos[w, node] = (w_pos[w, node] + 1) % w_count[w]
            if w_n[w, node] < w_count[w]:
                w_n[w, node] += 1


@njit(cache=True)
def uses_bus(st, cmd):
    return st[META][cmd, 3] != BUS_NONE
