"""GPU producer: a tensor-parallel GEMM C[M x N] = A[M x K] . B[K x N] executed as workgroup (WG)
tiles of BM x BN outputs on CUs, issued in stage order; stage s of GPU g computes output chunk
c(g, s) = (s - g) mod TP (a block of M/TP rows), so every GPU produces a different chunk at the
same time (T3's staggered WG schedule, paper section 4.1).

This module builds the static plan the system kernel executes:

* tiling: tiles per chunk, edge tiles, k-steps of BK;
* memory layout: A, B and C stored in the GEMM's blocked layout (every k-step block of A
  (BM x BK) and of B (BK x BN), and every output tile, is one contiguous byte range, as packed
  BLAS layouts are), plus the baseline collective's receive buffer;
* the L2 model: an LRU cache of `l2_bytes` over those blocks, fed in the nominal access order
  (waves of `slots` WGs in dispatch order advancing k-step by k-step; in the baseline the output
  tiles are write-allocated into L2 when stored, in T3 they bypass it). Each k-step access is a
  miss (a new fill: DRAM reads) or a hit on an earlier fill (which the WG waits for if it is still
  in flight). Hit/miss is decided in the nominal order, not re-decided under contention.

Times are integer ps; the GPU clock period is rounded to whole ps (recorded in the stats).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

BURST = 32          # bytes per DRAM burst (HBM2 pseudo-channel, BL4 x 64 bit)
ALIGN = 1 << 20     # regions start on 1 MiB boundaries


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


@dataclass
class GemmPlan:
    """Static description of one GPU's GEMM and its memory layout."""

    M: int
    N: int
    K: int
    BM: int
    BN: int
    BK: int
    tp: int
    elem_bytes: int
    rows_per_chunk: int
    mt_per_chunk: int
    nt: int
    nk: int
    tiles_per_chunk: int
    tile_rows: np.ndarray        # [tiles_per_chunk]
    tile_cols: np.ndarray
    kw: np.ndarray               # [nk] k-step widths
    a_off: np.ndarray            # [tp * mt_per_chunk, nk]
    a_bytes: np.ndarray
    b_off: np.ndarray            # [nt, nk]
    b_bytes: np.ndarray
    c_off: np.ndarray            # [tp, tiles_per_chunk]
    c_bytes: np.ndarray          # [tiles_per_chunk]
    chunk_off: np.ndarray        # [tp] byte offset of each output chunk (contiguous)
    chunk_bytes: int
    recv_base: int               # baseline RS receive buffer: step s at recv_base + s * chunk_bytes
    total_bytes: int

    @property
    def n_wg(self) -> int:
        return self.tp * self.tiles_per_chunk

    @property
    def flops(self) -> int:
        return 2 * self.M * self.N * self.K

    def tile_flops(self) -> int:
        return 2 * self.BM * self.BN * self.BK

    def block_ids(self):
        """Sizes of all L2 blocks: A blocks, then B blocks, then output tiles."""
        return np.concatenate([self.a_bytes.ravel(), self.b_bytes.ravel(), np.tile(self.c_bytes, self.tp)])

    def a_bytes_total(self) -> int:
        return int(self.a_bytes.sum())

    def b_bytes_total(self) -> int:
        return int(self.b_bytes.sum())

    def c_bytes_total(self) -> int:
        return int(self.c_bytes.sum()) * self.tp


def make_plan(M: int, N: int, K: int, *, BM: int, BN: int, BK: int, tp: int, elem_bytes: int = 2) -> GemmPlan:
    """Tiling and blocked layout. M must divide into tp chunks (checked by the workload)."""
    rpc = M // tp
    mtpc = _ceil(rpc, BM)
    nt = _ceil(N, BN)
    nk = _ceil(K, BK)
    rows = np.array([min(BM, rpc - i * BM) for i in range(mtpc)], dtype=np.int64)
    cols = np.array([min(BN, N - j * BN) for j in range(nt)], dtype=np.int64)
    kw = np.array([min(BK, K - k * BK) for k in range(nk)], dtype=np.int64)
    tile_rows = np.repeat(rows, nt)
    tile_cols = np.tile(cols, mtpc)
    off = 0
    # A: blocks (global m-tile, k), m-tile-major.
    a_rows = np.tile(rows, tp)
    a_bytes = (a_rows[:, None] * kw[None, :] * elem_bytes).astype(np.int64)
    a_off = (off + np.concatenate([[0], np.cumsum(a_bytes.ravel())[:-1]])).reshape(a_bytes.shape).astype(np.int64)
    off = _align(off + int(a_bytes.sum()))
    b_bytes = (cols[:, None] * kw[None, :] * elem_bytes).astype(np.int64)
    b_off = (off + np.concatenate([[0], np.cumsum(b_bytes.ravel())[:-1]])).reshape(b_bytes.shape).astype(np.int64)
    off = _align(off + int(b_bytes.sum()))
    c_tile = (tile_rows * tile_cols * elem_bytes).astype(np.int64)
    chunk_bytes = int(c_tile.sum())
    c_rel = np.concatenate([[0], np.cumsum(c_tile)[:-1]]).astype(np.int64)
    chunk_off = np.array([off + c * chunk_bytes for c in range(tp)], dtype=np.int64)
    c_off = (chunk_off[:, None] + c_rel[None, :]).astype(np.int64)
    off = _align(off + tp * chunk_bytes)
    recv_base = off
    off = _align(off + tp * chunk_bytes)
    return GemmPlan(M=M, N=N, K=K, BM=BM, BN=BN, BK=BK, tp=tp, elem_bytes=elem_bytes, rows_per_chunk=rpc,
                    mt_per_chunk=mtpc, nt=nt, nk=nk, tiles_per_chunk=mtpc * nt, tile_rows=tile_rows,
                    tile_cols=tile_cols, kw=kw, a_off=a_off, a_bytes=a_bytes, b_off=b_off, b_bytes=b_bytes,
                    c_off=c_off, c_bytes=c_tile, chunk_off=chunk_off, chunk_bytes=chunk_bytes,
                    recv_base=recv_base, total_bytes=off)


def _align(x: int) -> int:
    return _ceil(x, ALIGN) * ALIGN


def chunk_of(g: int, stage: int, tp: int) -> int:
    """Output chunk GPU g computes at stage `stage` (0-based); the downstream GPU g+1 computes the
    same chunk one stage later."""
    return (stage - g) % tp


# ---------------------------------------------------------------------------------------------
# L2: an LRU cache over blocks, in the nominal access order
# ---------------------------------------------------------------------------------------------
@njit(cache=True)
def _lru_access(blk, size, cap, prev, nxt, resident, headtail, used):
    """Access block `blk`; return True on a hit. LRU list: headtail[0] = MRU, headtail[1] = LRU."""
    if resident[blk]:
        # move to MRU
        if headtail[0] != blk:
            p, n = prev[blk], nxt[blk]
            nxt[p] = n
            if n >= 0:
                prev[n] = p
            else:
                headtail[1] = p
            prev[blk] = -1
            nxt[blk] = headtail[0]
            prev[headtail[0]] = blk
            headtail[0] = blk
        return True
    if size[blk] > cap:
        return False  # never fits: not cached
    resident[blk] = True
    prev[blk] = -1
    nxt[blk] = headtail[0]
    if headtail[0] >= 0:
        prev[headtail[0]] = blk
    headtail[0] = blk
    if headtail[1] < 0:
        headtail[1] = blk
    used[0] += size[blk]
    while used[0] > cap:
        v = headtail[1]
        resident[v] = False
        used[0] -= size[v]
        p = prev[v]
        headtail[1] = p
        if p >= 0:
            nxt[p] = -1
        else:
            headtail[0] = -1
    return False


@njit(cache=True)
def l2_plan(wg_chunk, wg_l, mtpc, nt, nk, n_a, n_b, sizes, cap, slots, write_allocate, fill_base):
    """Decide hit/miss of every k-step access of one GPU in the nominal order.

    wg_chunk/wg_l: chunk and tile index of each WG in dispatch order. Returns (acc_fill[n_wg, nk, 2],
    acc_miss[n_wg, nk, 2], fill_block[n_fills]); fill ids start at `fill_base`."""
    n_wg = wg_chunk.shape[0]
    n_blocks = sizes.shape[0]
    prev = np.full(n_blocks, -1, dtype=np.int64)
    nxt = np.full(n_blocks, -1, dtype=np.int64)
    resident = np.zeros(n_blocks, dtype=np.bool_)
    last_fill = np.full(n_blocks, -1, dtype=np.int64)
    headtail = np.array([-1, -1], dtype=np.int64)
    used = np.zeros(1, dtype=np.int64)
    acc_fill = np.zeros((n_wg, nk, 2), dtype=np.int64)
    acc_miss = np.zeros((n_wg, nk, 2), dtype=np.bool_)
    fill_block = np.zeros(n_wg * nk * 2, dtype=np.int64)
    nf = 0
    tpc = mtpc * nt
    for w0 in range(0, n_wg, slots):
        w1 = min(w0 + slots, n_wg)
        for k in range(nk):
            for w in range(w0, w1):
                c = wg_chunk[w]
                l = wg_l[w]
                i = l // nt
                j = l % nt
                for a in range(2):
                    if a == 0:
                        blk = (c * mtpc + i) * nk + k
                    else:
                        blk = n_a + j * nk + k
                    hit = _lru_access(blk, sizes, cap, prev, nxt, resident, headtail, used)
                    if hit and last_fill[blk] >= 0:
                        acc_fill[w, k, a] = last_fill[blk]
                    else:
                        fill_block[nf] = blk
                        last_fill[blk] = fill_base + nf
                        acc_fill[w, k, a] = fill_base + nf
                        acc_miss[w, k, a] = True
                        nf += 1
        if write_allocate:
            for w in range(w0, w1):
                blk = n_a + n_b + wg_chunk[w] * tpc + wg_l[w]
                _lru_access(blk, sizes, cap, prev, nxt, resident, headtail, used)
    return acc_fill, acc_miss, fill_block[:nf].copy()


def block_ranges(plan: GemmPlan) -> tuple[np.ndarray, np.ndarray]:
    """Byte offset and size of every L2 block id (A, B, output tiles)."""
    off = np.concatenate([plan.a_off.ravel(), plan.b_off.ravel(), plan.c_off.ravel()]).astype(np.int64)
    size = np.concatenate([plan.a_bytes.ravel(), plan.b_bytes.ravel(), np.tile(plan.c_bytes, plan.tp)]).astype(np.int64)
    return off, size


@dataclass
class GpuPrograms:
    """Per-GPU dispatch order and L2 decisions, concatenated over the simulated GPUs."""

    wg_chunk: np.ndarray     # [n_gpu, n_wg]
    wg_l: np.ndarray         # [n_gpu, n_wg]
    acc_fill: np.ndarray     # [n_gpu, n_wg, nk, 2]
    acc_miss: np.ndarray     # [n_gpu, n_wg, nk, 2]
    fill_b0: np.ndarray      # [n_fills] first burst
    fill_b1: np.ndarray      # [n_fills] end burst (exclusive)
    fill_bytes: np.ndarray   # [n_fills]


def raster(mtpc: int, nt: int, group_m: int) -> np.ndarray:
    """Dispatch order of the tiles of one chunk (tile id = i * nt + j): groups of `group_m` tile
    rows, column-major inside a group (the L2-friendly swizzle of CUTLASS / rocBLAS workgroup
    mapping); group_m = 1 gives row-major order."""
    order = []
    for i0 in range(0, mtpc, group_m):
        rows = range(i0, min(i0 + group_m, mtpc))
        for j in range(nt):
            order.extend(i * nt + j for i in rows)
    return np.array(order, dtype=np.int64)


def build_programs(plan: GemmPlan, gpus: list[int], *, l2_bytes: int, slots: int,
                   write_allocate: bool, group_m: int = 8) -> GpuPrograms:
    """Dispatch order (stage-major, staggered per GPU) and L2 hit/miss for each simulated GPU."""
    tpc = plan.tiles_per_chunk
    n_a = plan.a_bytes.size
    n_b = plan.b_bytes.size
    off, size = block_ranges(plan)
    wg_chunk, wg_l, fills, misses, blocks = [], [], [], [], []
    base = 0
    for g in gpus:
        ch = np.repeat(np.array([chunk_of(g, s, plan.tp) for s in range(plan.tp)], dtype=np.int64), tpc)
        ll = np.tile(raster(plan.mt_per_chunk, plan.nt, group_m), plan.tp)
        f, m, blk = l2_plan(ch, ll, plan.mt_per_chunk, plan.nt, plan.nk, n_a, n_b, size, int(l2_bytes),
                            int(slots), bool(write_allocate), base)
        base += len(blk)
        wg_chunk.append(ch)
        wg_l.append(ll)
        fills.append(f)
        misses.append(m)
        blocks.append(blk)
    blk = np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.int64)
    b0 = off[blk] // BURST
    b1 = -(-(off[blk] + size[blk]) // BURST)
    return GpuPrograms(np.stack(wg_chunk), np.stack(wg_l), np.stack(fills), np.stack(misses),
                       b0.astype(np.int64), b1.astype(np.int64), size[blk].astype(np.int64))
