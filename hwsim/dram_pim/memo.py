"""The exact instruction memo of `PimSystem` (docs/pim_mapping.md §7) in numpy arrays, so that a
compiled loop (`hwsim.dram_pim.serial`) looks entries up and replays them without Python objects.

A key is (signature id, the device state relative to the instruction's start as `_memo_key`
pairs). Keys are rows of `keys` [capacity, key width] with `meta` [capacity, (signature, hash,
length, last use)]; `slots`, an open-addressing hash table (a power of two, at least twice the
capacity; -1 empty), maps a hash to the entry index. An entry's payload (the end state and the
result, both relative to the start, rows to the placement's first row) is a row of `data` at the
offsets of `Layout`. A full memo keeps its most recently used half: eviction only costs a
re-simulation. `hot` lists, per entry, the ready ticks of its end state after its end (the only
ones a later instruction's key can hold while that state is not restored; `hwsim.dram_pim.serial`).
`trans` caches lookups made from such an unrestored end state (`trans_find`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
from numba import njit

from hwsim.dram_pim.commands import N_CMDS

N_PHASES = 7
HOT_WIDTH = 1024   # most ready ticks listed per entry as after its end (`MemoTable.hot`)
# Slots of the transition cache (`MemoTable.trans`): a power of two.
TRANS_SLOTS = 1 << 14
T_FROM, T_SIG, T_DELTA, T_SHIFT, T_OWED, T_TO = range(6)
# Scalars of an entry's result (after the arrays in a `data` row).
# S_LAST_DECISION: the latest refresh decision of any channel (`PimSystem._last_decisions`).
(S_END, S_ROW_HITS, S_ROW_MISSES, S_BYTES_IN, S_BYTES_OUT, S_MACS, S_ACTIVE, S_MODE_SWITCHES,
 S_LAST_DECISION) = range(9)
N_SCALARS = 9
# A boundary entry (hwsim.dram_pim.serial) also holds the REFab flush at the instruction's boundary
# before it: its commands per Cmd, then its end (relative to its start), row-open cycles and mode
# switches; its state and result sections are the instruction's, relative to the flush's end.
B_END, B_ACTIVE, B_SWITCHES = N_CMDS, N_CMDS + 1, N_CMDS + 2
N_BOUNDARY = N_CMDS + 3
# Positions of the sections in `Layout.offsets()` (what compiled code gets).
(L_READY, L_OPEN, L_HIST, L_CHANNEL_TICK, L_MODE, L_LAST_DECISION, L_CHANNEL_END, L_COUNTS, L_CYCLES,
 L_SCALARS, L_BOUNDARY, L_WIDTH) = range(12)
M_SIG, M_HASH, M_LEN, M_STAMP = range(4)
_HASH_MASK = (1 << 43) - 1
_HASH_MUL = 1000003


@dataclass(frozen=True)
class Layout:
    """Offsets of the sections of a `data` row (ready, open rows, window histories, channel
    command slots, modes, last refresh decisions, channel end ticks, command counts, phase cycles,
    scalars, boundary flush) and its width."""

    ready: int
    open: int
    hist: int
    channel_tick: int
    mode: int
    last_decision: int
    channel_end: int
    counts: int
    cycles: int
    scalars: int
    boundary: int
    width: int

    @classmethod
    def of(cls, n_ready: int, n_banks: int, n_hist: int, channels: int) -> "Layout":
        sizes = (n_ready, n_banks, n_hist, channels, channels, channels, channels, N_CMDS, N_PHASES, N_SCALARS,
                 N_BOUNDARY)
        offsets = np.concatenate([[0], np.cumsum(sizes)]).tolist()
        return cls(*offsets)

    def offsets(self) -> np.ndarray:
        """The offsets as an int64 array, indexed by L_READY ... L_WIDTH."""
        return np.array(dataclasses.astuple(self), np.int64)


@njit(cache=True, inline="always")
def key_hash(sig, key, n):
    """Hash of (signature id, the first n values of key), in [0, 2^43): four interleaved
    multiply-xor lanes (no overflow in int64: each lane stays below 2^43 before its multiply by
    a 20-bit constant)."""
    h0 = sig & _HASH_MASK
    h1 = h2 = h3 = n & _HASH_MASK
    i = 0
    while i + 4 <= n:
        h0 = ((h0 * _HASH_MUL) ^ key[i]) & _HASH_MASK
        h1 = ((h1 * _HASH_MUL) ^ key[i + 1]) & _HASH_MASK
        h2 = ((h2 * _HASH_MUL) ^ key[i + 2]) & _HASH_MASK
        h3 = ((h3 * _HASH_MUL) ^ key[i + 3]) & _HASH_MASK
        i += 4
    while i < n:
        h0 = ((h0 * _HASH_MUL) ^ key[i]) & _HASH_MASK
        i += 1
    h = (h0 ^ ((h1 * 3) & _HASH_MASK) ^ ((h2 * 5) & _HASH_MASK) ^ ((h3 * 7) & _HASH_MASK)) & _HASH_MASK
    return ((h ^ (h >> 21)) * 1021) & _HASH_MASK   # the slot index takes the low bits


@njit(cache=True, inline="always")
def find(slots, meta, keys, sig, key, n, h):
    """Index of the entry whose key is (sig, key[:n]) (hash h), or -1."""
    mask = slots.shape[0] - 1
    s = h & mask
    while True:
        e = slots[s]
        if e < 0:
            return -1
        if meta[e, M_HASH] == h and meta[e, M_SIG] == sig and meta[e, M_LEN] == n:
            same = True
            row = keys[e]
            for i in range(n):
                if row[i] != key[i]:
                    same = False
                    break
            if same:
                return e
        s = (s + 1) & mask


@njit(cache=True, inline="always")
def trans_find(trans, source, sig, delta, shift, owed):
    """(slot, cached entry or -1) of the transition cache for a lookup of signature `sig` from the
    end state of entry `source`, `delta` ticks after the start of its replay, `shift` rows above
    its first row, with `owed` REFab owed by every channel (a boundary lookup; -1 otherwise). The
    key of such a lookup is a function of (the entry's data and hot list, delta, shift, owed)
    alone, so while entry `source` keeps its data and the entries keep their indices, the lookup
    finds the same entry: `MemoTable` clears the cache whenever either changes."""
    h = source * 0x9E3779B1 + sig * 0x85EBCA77 + delta * 0xC2B2AE3D + shift * 0x27D4EB2F + owed * 0x165667B1
    ts = (h ^ (h >> 29)) & (TRANS_SLOTS - 1)
    if (trans[ts, T_FROM] == source and trans[ts, T_SIG] == sig and trans[ts, T_DELTA] == delta
            and trans[ts, T_SHIFT] == shift and trans[ts, T_OWED] == owed):
        return ts, trans[ts, T_TO]
    return ts, -1


@njit(cache=True, inline="always")
def trans_put(trans, ts, source, sig, delta, shift, owed, e):
    """Cache in slot ts (`trans_find`) that the lookup found entry e."""
    trans[ts, T_FROM], trans[ts, T_SIG], trans[ts, T_DELTA] = source, sig, delta
    trans[ts, T_SHIFT], trans[ts, T_OWED], trans[ts, T_TO] = shift, owed, e


@njit(cache=True)
def find_key(slots, meta, keys, sig, key, n):
    """(hash, index or -1) of (sig, key[:n])."""
    h = key_hash(sig, key, n)
    return h, find(slots, meta, keys, sig, key, n, h)


@njit(cache=True)
def rehash_one(slots, h, e):
    """Put entry e (hash h) into the first free slot of its probe sequence."""
    mask = slots.shape[0] - 1
    s = h & mask
    while slots[s] >= 0:
        s = (s + 1) & mask
    slots[s] = e


@njit(cache=True)
def rehash(slots, meta, n):
    """Fill `slots` with entries 0..n-1."""
    slots[:] = -1
    for e in range(n):
        rehash_one(slots, meta[e, M_HASH], e)


@njit(cache=True)
def compact(data, keys, meta, hot, keep):
    """Move entries keep[0] < keep[1] < ... to 0, 1, ... (keys only up to their lengths)."""
    for j in range(keep.shape[0]):
        i = keep[j]
        if i != j:
            data[j] = data[i]
            keys[j, :meta[i, M_LEN]] = keys[i, :meta[i, M_LEN]]
            meta[j] = meta[i]
            hot[j, :max(hot[i, 0], 0) + 2] = hot[i, :max(hot[i, 0], 0) + 2]


class MemoTable:
    """The arrays of the memo and its Python side (insertion, eviction, per-entry objects)."""

    def __init__(self, capacity: int, layout: Layout, key_width: int):
        self.capacity = max(int(capacity), 1)
        self.layout = layout
        self.offsets = layout.offsets()   # for compiled code
        self.data = np.zeros((self.capacity, layout.width), np.int64)   # untouched pages cost no memory
        self.keys = np.zeros((self.capacity, key_width), np.int64)
        self.meta = np.zeros((self.capacity, 4), np.int64)
        # per entry: [n, the latest, positions...] of the end state's ready ticks after its end (n = -1:
        # too many to list)
        n_ready = layout.open - layout.ready
        self.hot = np.zeros((self.capacity, 2 + min(n_ready, HOT_WIDTH)), np.int64)
        n_slots = 1 << max(2 * self.capacity - 1, 1).bit_length()
        self.slots = np.full(n_slots, -1, np.int64)
        # [entries, use clock]; the clock stamps meta[:, M_STAMP] at every lookup that finds an entry
        self.counter = np.zeros(2, np.int64)
        # [from entry, signature, delta, row shift, REFab owed, found entry] per slot (`trans_find`);
        # from entry -1: empty
        self.trans = np.full((TRANS_SLOTS, 6), -1, np.int64)
        self.objects: list = []   # per entry: what the Python replay needs besides `data` (result, trace)

    @property
    def n(self) -> int:
        return int(self.counter[0])

    def lookup(self, sig: int, key: np.ndarray, n: int) -> tuple[int, int]:
        """(hash, entry index or -1) of a key; a found entry is stamped as just used."""
        h, e = find_key(self.slots, self.meta, self.keys, sig, key, n)
        if e >= 0:
            self.counter[1] += 1
            self.meta[e, M_STAMP] = self.counter[1]
        return int(h), int(e)

    def insert(self, sig: int, key: np.ndarray, n: int, h: int, row: np.ndarray, obj) -> int:
        """Store (or replace) the entry of key (sig, key[:n]) with hash h; returns its index."""
        e = int(find(self.slots, self.meta, self.keys, sig, key, n, h))
        if e < 0:
            if self.n >= self.capacity:
                self._evict()
            e = self.n
            self.counter[0] += 1
            self.objects.append(None)
            self.keys[e, :n] = key[:n]
            self.meta[e, :3] = sig, h, n
            rehash_one(self.slots, h, e)
        else:   # the entry's data changes: lookups from its end state may find others
            self.trans[:, T_FROM] = -1
        self.counter[1] += 1
        self.meta[e, M_STAMP] = self.counter[1]
        self.data[e] = row
        lay = self.layout
        ready = row[lay.ready:lay.open]
        hot = np.flatnonzero(ready > row[lay.scalars + S_END])
        self.hot[e, 1] = ready.max(initial=0)
        if len(hot) <= self.hot.shape[1] - 2:
            self.hot[e, 0] = len(hot)
            self.hot[e, 2:2 + len(hot)] = hot
        else:
            self.hot[e, 0] = -1
        self.objects[e] = obj
        return e

    def _evict(self) -> None:
        """Keep the most recently used half of the entries (in their order), rebuild the slots."""
        n = self.n
        keep = np.sort(np.argsort(self.meta[:n, M_STAMP], kind="stable")[n - self.capacity // 2:])
        k = len(keep)
        compact(self.data, self.keys, self.meta, self.hot, keep)
        self.trans[:, T_FROM] = -1   # indices changed
        self.objects = [self.objects[i] for i in keep.tolist()]
        self.counter[0] = k
        rehash(self.slots, self.meta, k)

