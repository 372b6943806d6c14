"""T3 tracker (paper section 4.2): a small table next to the memory controller, keyed by the
producer's workgroup tile (not by address), that counts the local updates (this GPU's GEMM
stores) and the incoming updates (remote stores / DMA updates from the upstream GPU) of each
output tile and fires the tile's pre-programmed DMA descriptor exactly when the count reaches the
expected value.

Keys are `stage * tiles_per_stage + tile`; the expected count of a key is the number of update
bursts that will land on the simulated channels (local + incoming). An entry is allocated at the
first update of a tile and freed when it fires.

When the table is full (`entries` in use) the tile falls back to a per-stage counter: such a tile
fires together with every other fallen-back tile of its stage, when all tiles of the stage have
been seen and all fallen-back tiles are complete. This is always correct (nothing fires early) and
never deadlocks; stalling the producer instead could deadlock (the table can be full of tiles of
the next stage whose local updates need the producer to progress). See docs/t3.md.

The table state is a tuple of arrays so the system kernel can use it from numba; `Tracker` is a
thin Python wrapper for tests and studies.
"""

from __future__ import annotations

import numpy as np
from numba import njit

# tile states
T_UNSEEN, T_TRACKED, T_FALLBACK, T_FIRED = 0, 1, 2, 3
# state tuple indices (every array has a leading GPU dimension)
(K_STATE, K_SLOT, K_EXPECT, K_SLOT_KEY, K_SLOT_CNT, K_FREE, K_SCAL, K_SEEN, K_OV_CNT, K_OV_EXP,
 K_OV_HEAD, K_OV_NEXT, K_FIRED_Q) = range(13)
# K_SCAL entries
S_USED, S_PEAK, S_CAP, S_TPS, S_N_FALLBACK, S_LOCAL, S_REMOTE, S_FIRED = range(8)


def make_tracker(expected: np.ndarray, entries: int, tiles_per_stage: int):
    """Tracker state for GPUs x keys; `expected[g, key]` is the expected count of tile `key`
    (keys 0..n-1 with key = stage * tiles_per_stage + tile)."""
    expected = np.atleast_2d(np.asarray(expected, dtype=np.int64))
    n_gpu, n_keys = expected.shape
    n_stages = -(-n_keys // tiles_per_stage)
    cap = max(entries, 1)
    scal = np.zeros((n_gpu, 8), dtype=np.int64)
    scal[:, S_CAP] = entries
    scal[:, S_TPS] = tiles_per_stage
    return (
        np.zeros((n_gpu, n_keys), dtype=np.int64),            # K_STATE
        np.full((n_gpu, n_keys), -1, dtype=np.int64),         # K_SLOT
        expected.copy(),                                      # K_EXPECT
        np.full((n_gpu, cap), -1, dtype=np.int64),            # K_SLOT_KEY
        np.zeros((n_gpu, cap), dtype=np.int64),               # K_SLOT_CNT
        np.tile(np.arange(cap, dtype=np.int64)[::-1], (n_gpu, 1)),  # K_FREE (stack of free slots)
        scal,                                                 # K_SCAL
        np.zeros((n_gpu, n_stages), dtype=np.int64),          # K_SEEN: tiles seen per stage
        np.zeros((n_gpu, n_stages), dtype=np.int64),          # K_OV_CNT
        np.zeros((n_gpu, n_stages), dtype=np.int64),          # K_OV_EXP
        np.full((n_gpu, n_stages), -1, dtype=np.int64),       # K_OV_HEAD: list of fallen-back keys
        np.full((n_gpu, n_keys), -1, dtype=np.int64),         # K_OV_NEXT
        np.zeros((n_gpu, n_keys), dtype=np.int64),            # K_FIRED_Q: keys fired by the last call
    )


@njit(cache=True)
def tracker_count(tr, g, key, n, remote):
    """Count `n` update bursts of tile `key` on GPU `g` (remote: incoming, else local). Returns how
    many keys fired (they are in tr[K_FIRED_Q][g, :returned]), or -1 on a protocol error (a count
    past the expected value)."""
    state, slot_of, expect = tr[K_STATE][g], tr[K_SLOT][g], tr[K_EXPECT][g]
    slot_key, slot_cnt, free, scal = tr[K_SLOT_KEY][g], tr[K_SLOT_CNT][g], tr[K_FREE][g], tr[K_SCAL][g]
    seen, ov_cnt, ov_exp, ov_head, ov_next, fq = (tr[K_SEEN][g], tr[K_OV_CNT][g], tr[K_OV_EXP][g],
                                                  tr[K_OV_HEAD][g], tr[K_OV_NEXT][g], tr[K_FIRED_Q][g])
    tps = scal[S_TPS]
    cap = scal[S_CAP]
    stage = key // tps
    if remote:
        scal[S_REMOTE] += n
    else:
        scal[S_LOCAL] += n
    st = state[key]
    if st == T_FIRED:
        return -1
    if st == T_UNSEEN:
        seen[stage] += 1
        if scal[S_USED] < cap:
            s = free[cap - 1 - scal[S_USED]]
            scal[S_USED] += 1
            if scal[S_USED] > scal[S_PEAK]:
                scal[S_PEAK] = scal[S_USED]
            slot_of[key] = s
            slot_key[s] = key
            slot_cnt[s] = 0
            state[key] = T_TRACKED
        else:
            state[key] = T_FALLBACK
            scal[S_N_FALLBACK] += 1
            ov_exp[stage] += expect[key]
            ov_next[key] = ov_head[stage]
            ov_head[stage] = key
        st = state[key]
    nf = 0
    if st == T_TRACKED:
        s = slot_of[key]
        slot_cnt[s] += n
        if slot_cnt[s] > expect[key]:
            return -1
        if slot_cnt[s] == expect[key]:
            state[key] = T_FIRED
            slot_key[s] = -1
            scal[S_USED] -= 1
            free[cap - 1 - scal[S_USED]] = s
            slot_of[key] = -1
            fq[nf] = key
            nf += 1
    else:  # fallback
        ov_cnt[stage] += n
        if ov_cnt[stage] > ov_exp[stage]:
            return -1
    # Fallen-back tiles of this stage fire once every tile of the stage has been seen and all of
    # them are complete (no count exceeds its expectation, so equal sums mean each is complete).
    n_keys = state.shape[0]
    stage_tiles = min(tps, n_keys - stage * tps)
    if ov_head[stage] >= 0 and seen[stage] == stage_tiles and ov_cnt[stage] == ov_exp[stage]:
        k = ov_head[stage]
        while k >= 0:
            state[k] = T_FIRED
            fq[nf] = k
            nf += 1
            k = ov_next[k]
        ov_head[stage] = -1
    scal[S_FIRED] += nf
    return nf


class Tracker:
    """Python wrapper around one GPU's table: `count(key, n, remote) -> list of fired keys`."""

    def __init__(self, expected, entries: int = 256, tiles_per_stage: int | None = None):
        expected = np.asarray(expected, dtype=np.int64).reshape(1, -1)
        self.state = make_tracker(expected, entries, tiles_per_stage or expected.shape[1])

    def count(self, key: int, n: int = 1, remote: bool = False) -> list[int]:
        nf = tracker_count(self.state, 0, int(key), int(n), bool(remote))
        if nf < 0:
            raise RuntimeError(f"tracker: tile {key} counted past its expected count")
        return [int(k) for k in self.state[K_FIRED_Q][0, :nf]]

    @property
    def in_use(self) -> int:
        return int(self.state[K_SCAL][0, S_USED])

    @property
    def peak(self) -> int:
        return int(self.state[K_SCAL][0, S_PEAK])

    @property
    def fallbacks(self) -> int:
        return int(self.state[K_SCAL][0, S_N_FALLBACK])

    def fired(self, key: int) -> bool:
        return int(self.state[K_STATE][0, key]) == T_FIRED
