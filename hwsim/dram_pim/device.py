"""Device state of every channel in ONE flat int64 array, and the numba primitives every
scheduler uses: `earliest` (the first tick a command may issue), `issue` (apply its effects) and
`bank_state_ok` (its bank-state precondition).

One flat array (rather than a tuple of arrays) keeps the kernels fast: numba passes and indexes it
without reference-count traffic. A small header at the front holds sizes and the offsets of each
section; `Device` exposes numpy views of the sections for Python code.

Node ids: channels first, then ranks, bank groups and banks; `anc[bank, level]` is the node id of a
bank's ancestor at each level (channel, rank, bankgroup, bank). `ready[node, cmd]` is the earliest
tick `cmd` may be issued to any bank under `node` as far as rules at that node's level go (a
rank node also carries the "other ranks" rules raised by commands to its sibling ranks). Ticks
are command-clock cycles.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from hwsim.dram_pim.commands import (N_CMDS, NEED_ALL_CLOSED, NEED_ALL_OPEN, NEED_CLOSED, NEED_OPEN,
                                     ROW_CLOSE, ROW_OPEN, Cmd, meta_array)
from hwsim.dram_pim.constraints import CHANNEL, OTHER_RANKS, RANK_LEVEL, compile_timing
from hwsim.dram_pim.spec import DramSpec

# Header slots.
(H_NCMD, H_NNODES, H_NBANKS, H_W, H_WMAX, H_READY, H_ANC, H_OPEN, H_RAISE, H_WRULE, H_WHIST, H_META,
 H_CHANNELS, H_RANKS, H_BANKGROUPS, H_BANKS_PER_GROUP, H_BANKS_PER_RANK, H_BANKS_PER_CHANNEL, H_FLOOR) = range(19)
HEADER = 24
META_WIDTH = 5  # scope, need, row_effect, bus, is_refresh


def raise_lists(lat: np.ndarray) -> np.ndarray:
    """Per (level, issued command): [k, next_1, lat_1, ..., next_k, lat_k, 0...] listing only the
    commands a rule binds (lat >= 0), so that `issue` raises those and skips the rest."""
    n_levels, ncmd, _ = lat.shape
    out = np.zeros((n_levels, ncmd, 1 + 2 * ncmd), dtype=np.int64)
    for lvl in range(n_levels):
        for c in range(ncmd):
            nxt = np.flatnonzero(lat[lvl, c] >= 0)
            out[lvl, c, 0] = len(nxt)
            out[lvl, c, 1:1 + 2 * len(nxt):2] = nxt
            out[lvl, c, 2:2 + 2 * len(nxt):2] = lat[lvl, c, nxt]
    return out


# The commands whose rank floors the request scheduler keeps (see `rank_floor`).
FLOOR_CMDS = (Cmd.ACT, Cmd.PRE, Cmd.RD, Cmd.WR)


def floor_raise_lists(ct) -> np.ndarray:
    """Per issued command: how many FLOOR_CMDS have a rank floor (`rank_floor`) it may raise, then
    those commands: the ones a rule at the channel, rank or other-ranks level, or a window rule,
    makes wait after it."""
    above = ct.lat[[CHANNEL, RANK_LEVEL, OTHER_RANKS]].max(axis=0) >= 0          # [prev, next]
    above |= (ct.win_prev[:, :, None] & ct.win_next[:, None, :]).any(axis=0)
    above &= np.isin(np.arange(N_CMDS), FLOOR_CMDS)[None, :]
    out = np.zeros((N_CMDS, 1 + N_CMDS), dtype=np.int64)
    for c in range(N_CMDS):
        nxt = np.flatnonzero(above[c])
        out[c, 0] = len(nxt)
        out[c, 1:1 + len(nxt)] = nxt
    return out


class Device:
    """The state of all channels of one DRAM spec, with its compiled timing rules."""

    def __init__(self, dspec: DramSpec):
        o = dspec.organization
        self.spec = dspec
        C, R, G, B = o.channels, o.ranks, o.bankgroups, o.banks_per_group
        n_banks = C * R * G * B
        bank = np.arange(n_banks)
        rank_base, bg_base, bank_base = C, C + C * R, C + C * R + C * R * G
        anc = np.stack([bank // (R * G * B), rank_base + bank // (G * B), bg_base + bank // B,
                        bank_base + bank], axis=1).astype(np.int64)
        n_nodes = bank_base + n_banks
        ct = compile_timing(dspec.timing)
        n_w, w_max = len(ct.win_lat), int(ct.win_count.max())
        wrule = np.concatenate([np.stack([ct.win_level, ct.win_count, ct.win_lat], axis=1),
                                ct.win_prev.astype(np.int64), ct.win_next.astype(np.int64)], axis=1)
        sections = {
            H_READY: np.zeros(n_nodes * N_CMDS, dtype=np.int64),
            H_ANC: anc.ravel(),
            H_OPEN: np.full(n_banks, -1, dtype=np.int64),
            H_RAISE: raise_lists(ct.lat).ravel(),
            H_WRULE: wrule.ravel(),
            H_WHIST: np.zeros(n_w * n_nodes * (2 + w_max), dtype=np.int64),
            H_META: meta_array().ravel(),
            # The request scheduler's rank floors (`rank_floor`) of FLOOR_CMDS, per (rank, command),
            # then per command the FLOOR_CMDS whose floors issuing it may raise (`floor_raise_lists`).
            # Not device state: snapshot() leaves it out, and the scheduler sets the floors at every
            # run.
            H_FLOOR: np.concatenate([np.zeros(C * R * N_CMDS, dtype=np.int64),
                                     floor_raise_lists(ct).ravel()]),
        }
        header = np.zeros(HEADER, dtype=np.int64)
        header[[H_NCMD, H_NNODES, H_NBANKS, H_W, H_WMAX]] = N_CMDS, n_nodes, n_banks, n_w, w_max
        header[[H_CHANNELS, H_RANKS, H_BANKGROUPS, H_BANKS_PER_GROUP, H_BANKS_PER_RANK,
                H_BANKS_PER_CHANNEL]] = C, R, G, B, G * B, R * G * B
        offset = HEADER
        for slot, arr in sections.items():
            header[slot] = offset
            offset += arr.size
        self.state = np.concatenate([header, *sections.values()])
        self.n_banks, self.n_nodes = n_banks, n_nodes

        def view(slot, shape):
            start = int(header[slot])
            return self.state[start:start + int(np.prod(shape))].reshape(shape)

        self.ready = view(H_READY, (n_nodes, N_CMDS))
        self.anc = view(H_ANC, (n_banks, 4))
        self.open_row = view(H_OPEN, (n_banks,))
        self.win_hist = view(H_WHIST, (n_w, n_nodes, 2 + w_max))  # [n, pos, ticks...]

    def bank_index(self, channel, rank, bankgroup, bank):
        """Global bank index (works on numpy arrays too)."""
        o = self.spec.organization
        return ((channel * o.ranks + rank) * o.bankgroups + bankgroup) * o.banks_per_group + bank

    def snapshot(self, tick: int) -> bytes:
        """Bytes describing the state relative to `tick`: two states with equal snapshots behave
        identically from `tick` on (future constraints only). Used as a memoisation key."""
        rel = np.maximum(self.ready - tick, 0)
        h = self.win_hist
        filled = np.arange(h.shape[2] - 2)[None, None, :] < h[:, :, :1]
        hist_rel = np.where(filled, np.maximum(h[:, :, 2:] - tick, -(1 << 40)), 0)
        return b"".join(a.tobytes() for a in (rel, self.open_row, hist_rel, h[:, :, :2]))

    def restore(self, snapshot: bytes, tick: int) -> None:
        """Set the state to `snapshot` (taken relative to some tick) re-based at `tick`."""
        n_ready, n_open = self.ready.size, self.open_row.size
        flat = np.frombuffer(snapshot, dtype=np.int64)
        self.ready[...] = flat[:n_ready].reshape(self.ready.shape) + tick
        self.open_row[...] = flat[n_ready:n_ready + n_open]
        h = self.win_hist
        k = h[:, :, 2:].size
        hist = flat[n_ready + n_open:n_ready + n_open + k].reshape(h[:, :, 2:].shape)
        h[:, :, :2] = flat[n_ready + n_open + k:].reshape(h[:, :, :2].shape)
        filled = np.arange(h.shape[2] - 2)[None, None, :] < h[:, :, :1]
        h[:, :, 2:] = np.where(filled, hist + tick, 0)


@njit(cache=True, inline="always")
def geom(S, slot):
    """A header value (e.g. H_BANKS_PER_RANK)."""
    return S[slot]


@njit(cache=True, inline="always")
def open_row(S, bank):
    """The open row of a bank, -1 when closed."""
    return S[S[H_OPEN] + bank]


@njit(cache=True, inline="always")
def bank_state_ok(S, cmd, bank, row):
    """True if the bank-state precondition of `cmd` holds (right row open, banks closed, ...)."""
    need = S[S[H_META] + cmd * META_WIDTH + 1]
    off_open = S[H_OPEN]
    if need == NEED_OPEN:
        return S[off_open + bank] == row
    if need == NEED_CLOSED:
        return S[off_open + bank] == -1
    if need == NEED_ALL_OPEN or need == NEED_ALL_CLOSED:
        bpr = S[H_BANKS_PER_RANK]
        first = bank - bank % bpr
        for b in range(first, first + bpr):
            if (S[off_open + b] == -1) == (need == NEED_ALL_OPEN):
                return False
    return True


@njit(cache=True, inline="always")
def _level_bound(S, cmd, b, t, lo, hi):
    """max(t, the ready ticks of `cmd` at the ancestors of bank `b` at levels lo..hi-1 (0 channel,
    1 rank, 2 bank group, 3 bank))."""
    ncmd = S[H_NCMD]
    off_ready, off_anc = S[H_READY], S[H_ANC] + b * 4
    for lvl in range(lo, hi):
        v = S[off_ready + S[off_anc + lvl] * ncmd + cmd]
        if v > t:
            t = v
    return t


@njit(cache=True, inline="always")
def _window_bound(S, cmd, b, t):
    """max(t, the bounds that window rules (tFAW...) put on `cmd` at bank `b`; they bind only at
    the channel and rank levels (constraints.compile_timing)."""
    ncmd = S[H_NCMD]
    off_anc = S[H_ANC] + b * 4
    wrw = 3 + 2 * ncmd
    hw = 2 + S[H_WMAX]
    for w in range(S[H_W]):
        r = S[H_WRULE] + w * wrw
        if S[r + 3 + ncmd + cmd]:
            h = S[H_WHIST] + (w * S[H_NNODES] + S[off_anc + S[r]]) * hw
            if S[h] == S[r + 1]:
                v = S[h + 2 + S[h + 1]] + S[r + 2]
                if v > t:
                    t = v
    return t


@njit(cache=True, inline="always")
def _earliest_bank(S, cmd, b, t):
    """max(t, the bound that rules at bank `b` and its ancestors put on `cmd`), windows included."""
    return _window_bound(S, cmd, b, _level_bound(S, cmd, b, t, 0, 4))


@njit(cache=True, inline="always")
def earliest(S, cmd, bank):
    """Earliest tick at which `cmd` to `bank` satisfies every timing rule (state not checked)."""
    first, last = bank, bank + 1
    if S[S[H_META] + cmd * META_WIDTH] != 0:  # a rank-wide command: every bank of the rank binds it
        bpr = S[H_BANKS_PER_RANK]
        first = bank - bank % bpr
        last = first + bpr
    t = 0
    for b in range(first, last):  # one inlined copy of _earliest_bank (each copy costs compile time)
        t = _earliest_bank(S, cmd, b, t)
    return t


@njit(cache=True, inline="always")
def rank_floor(S, cmd, bank):
    """The part of `earliest(S, cmd, bank)` (bank-scope `cmd`) that rules at the channel and rank
    levels put on it, windows there included: the same for every bank of the rank."""
    return _window_bound(S, cmd, bank, _level_bound(S, cmd, bank, 0, 0, 2))


@njit(cache=True, inline="always")
def earliest_from_floor(S, cmd, bank, floor):
    """`earliest(S, cmd, bank)` for a bank-scope `cmd`, given `floor` = rank_floor(S, cmd, bank):
    the bank-group and bank levels on top (window rules bind only at the rank level and above)."""
    return _level_bound(S, cmd, bank, floor, 2, 4)


@njit(cache=True, inline="always")
def _raise(S, lst, ready, tick):
    """S[ready + n] = max(S[ready + n], tick + latency) for every (n, latency) of raise list `lst`."""
    for i in range(S[lst]):
        n = S[lst + 1 + 2 * i]
        v = tick + S[lst + 2 + 2 * i]
        if v > S[ready + n]:
            S[ready + n] = v


@njit(cache=True, inline="always")
def issue(S, cmd, bank, row, tick):
    """Apply the effects of issuing `cmd` to `bank` (row `row`) at `tick`."""
    # Every header value is read once, up front: after a store into S the compiler must assume any
    # element of S changed and would reload a header value read later.
    ncmd, n_ranks, bpg, n_w = S[H_NCMD], S[H_RANKS], S[H_BANKS_PER_GROUP], S[H_W]
    off_anc, off_open, off_raise, off_ready = S[H_ANC], S[H_OPEN], S[H_RAISE], S[H_READY]
    off_wrule, off_whist, n_nodes, w_max = S[H_WRULE], S[H_WHIST], S[H_NNODES], S[H_WMAX]
    meta = S[H_META] + cmd * META_WIDTH
    scope, effect = S[meta], S[meta + 2]
    first, last = bank, bank + 1
    if scope != 0:
        bpr = S[H_BANKS_PER_RANK]
        first = bank - bank % bpr
        last = first + bpr
    channel, own_rank = S[off_anc + bank * 4], S[off_anc + bank * 4 + 1]
    first_rank = S[H_CHANNELS] + channel * n_ranks
    # Window rules (tFAW...): record `tick` in the ring of the node the rule binds.
    wrw = 3 + 2 * ncmd
    hw = 2 + w_max
    for w in range(n_w):
        r = off_wrule + w * wrw
        if S[r + 3 + cmd]:
            h = off_whist + (w * n_nodes + S[off_anc + bank * 4 + S[r]]) * hw
            count = S[r + 1]
            S[h + 2 + S[h + 1]] = tick
            S[h + 1] = (S[h + 1] + 1) % count
            if S[h] < count:
                S[h] += 1
    for b in range(first, last):
        if effect == ROW_OPEN:
            S[off_open + b] = row
        elif effect == ROW_CLOSE:
            S[off_open + b] = -1
    # The nodes whose ready ticks `cmd` raises, one step each: its channel (rules of level 0); every
    # rank of the channel (level 1 for its own rank, level 4, rank switching, for the others); per
    # bank touched, its bank group (level 2, once per group) and the bank (level 3). One call site,
    # so one inlined copy of _raise (each copy costs compile time).
    for step in range(1 + n_ranks + 2 * (last - first)):
        if step == 0:
            lvl, node = 0, channel
        elif step <= n_ranks:
            node = first_rank + step - 1
            lvl = 1 if node == own_rank else 4
        else:
            b = first + (step - 1 - n_ranks) // 2
            if (step - 1 - n_ranks) % 2 == 1:
                lvl, node = 3, S[off_anc + b * 4 + 3]
            elif b == first or b % bpg == 0:
                lvl, node = 2, S[off_anc + b * 4 + 2]
            else:
                continue
        _raise(S, off_raise + (lvl * ncmd + cmd) * (1 + 2 * ncmd), off_ready + node * ncmd, tick)
