"""DMA engines (T3 paper section 4.2): pre-programmed descriptors, one per tracked output tile,
triggered by the tracker. A triggered descriptor reads the tile's reduced partial sum from local
DRAM (communication-class read requests) and hands it to the ring link as one message, which
arrives at the downstream GPU as near-memory updates.

Per GPU there are `engines` engines fed by one FIFO of triggered descriptors. An engine is
pipelined, as copy engines are: it keeps up to `max_outstanding` reads in flight across
descriptor boundaries. It takes the next descriptor once it has issued every read of the current
one, has fewer than `max_outstanding` reads in flight, and the link holds fewer than `tx_limit`
bytes not yet on the wire (so it does not read far ahead of the link). A descriptor whose reads
have all returned is pushed to the link as one message (descriptors of one engine may finish out
of start order when memory answers out of order).

Handshake (driven by the system kernel or a test harness):

* `dma_trigger(D, g, desc)`: the tracker fired `desc`;
* `dma_try_start(D, g, e, link_qbytes, tx_limit)`: engine `e` takes the next descriptor if its
  issue cursor is free and it is allowed (returns it, or -1);
* `dma_next_read(D, g, e)`: `(burst, desc)`, the next burst index to read and its descriptor
  (respecting the outstanding limit), or `(-1, -1)`; after the last burst of a descriptor the
  cursor is free again;
* `dma_read_done(D, g, e, desc)`: a read of `desc` came back; returns 1 when `desc` is fully read
  (the caller pushes its message);
* `dma_busy(D, g, e)`: the engine still issues or waits for reads.

Bursts of a descriptor are `[b0, b1)` in the GPU's burst address space restricted to the
simulated channels (`next_sim_burst`).
"""

from __future__ import annotations

import numpy as np
from numba import njit

# state tuple indices
(D_QHEAD, D_QTAIL, D_QNEXT, D_CUR, D_NEXTB, D_ENDB, D_OUT, D_LEFT, D_MAXOUT, D_DESC_B0, D_DESC_B1,
 D_STARTED, D_NCH, D_ACTIVE) = range(14)


def make_dma(engines: int, desc_b0: np.ndarray, desc_b1: np.ndarray, max_outstanding: int,
             ch_sim: int, ch_tot: int):
    """DMA state; `desc_b0[g, d]`/`desc_b1[g, d]` are the burst range of descriptor d (= tracker
    key) of GPU g."""
    desc_b0 = np.atleast_2d(np.asarray(desc_b0, dtype=np.int64))
    desc_b1 = np.atleast_2d(np.asarray(desc_b1, dtype=np.int64))
    n_gpus, n_desc = desc_b0.shape
    return (
        np.full(n_gpus, -1, dtype=np.int64),                  # D_QHEAD: FIFO of triggered descriptors
        np.full(n_gpus, -1, dtype=np.int64),                  # D_QTAIL
        np.full((n_gpus, max(n_desc, 1)), -1, dtype=np.int64),  # D_QNEXT
        np.full((n_gpus, engines), -1, dtype=np.int64),       # D_CUR: descriptor being issued
        np.zeros((n_gpus, engines), dtype=np.int64),          # D_NEXTB: next burst to read
        np.zeros((n_gpus, engines), dtype=np.int64),          # D_ENDB
        np.zeros((n_gpus, engines), dtype=np.int64),          # D_OUT: reads in flight (all descriptors)
        np.zeros((n_gpus, max(n_desc, 1)), dtype=np.int64),   # D_LEFT: reads of a descriptor not yet returned
        np.array([max_outstanding], dtype=np.int64),          # D_MAXOUT
        desc_b0.copy(),                                       # D_DESC_B0
        desc_b1.copy(),                                       # D_DESC_B1
        np.zeros(n_gpus, dtype=np.int64),                     # D_STARTED: descriptors started
        np.array([ch_sim, ch_tot], dtype=np.int64),           # D_NCH
        np.zeros((n_gpus, engines), dtype=np.int64),          # D_ACTIVE: started, not fully returned
    )


@njit(cache=True)
def next_sim_burst(b, ch_sim, ch_tot):
    """The first burst index >= b that lies on a simulated channel (channel = b mod ch_tot)."""
    r = b % ch_tot
    if r < ch_sim:
        return b
    return b - r + ch_tot


@njit(cache=True)
def count_sim_bursts(b0, b1, ch_sim, ch_tot):
    """Bursts in [b0, b1) on the simulated channels."""
    if b1 <= b0:
        return 0
    full = (b1 - b0) // ch_tot
    n = full * ch_sim
    b = b0 + full * ch_tot
    while b < b1:
        if b % ch_tot < ch_sim:
            n += 1
        b += 1
    return n


@njit(cache=True)
def dma_trigger(D, g, desc):
    head, tail, nxt = D[D_QHEAD], D[D_QTAIL], D[D_QNEXT]
    nxt[g, desc] = -1
    if tail[g] < 0:
        head[g] = desc
    else:
        nxt[g, tail[g]] = desc
    tail[g] = desc


@njit(cache=True)
def dma_try_start(D, g, e, link_qbytes, tx_limit):
    if D[D_CUR][g, e] >= 0 or D[D_OUT][g, e] >= D[D_MAXOUT][0]:
        return -1
    d = D[D_QHEAD][g]
    if d < 0 or link_qbytes >= tx_limit:
        return -1
    D[D_QHEAD][g] = D[D_QNEXT][g, d]
    if D[D_QHEAD][g] < 0:
        D[D_QTAIL][g] = -1
    ch_sim, ch_tot = D[D_NCH][0], D[D_NCH][1]
    b0, b1 = D[D_DESC_B0][g, d], D[D_DESC_B1][g, d]
    D[D_CUR][g, e] = d
    D[D_NEXTB][g, e] = next_sim_burst(b0, ch_sim, ch_tot)
    D[D_ENDB][g, e] = b1
    D[D_LEFT][g, d] = count_sim_bursts(b0, b1, ch_sim, ch_tot)
    D[D_ACTIVE][g, e] += 1
    D[D_STARTED][g] += 1
    return d


@njit(cache=True)
def dma_next_read(D, g, e):
    d = D[D_CUR][g, e]
    if d < 0 or D[D_OUT][g, e] >= D[D_MAXOUT][0]:
        return -1, -1
    b = D[D_NEXTB][g, e]
    if b >= D[D_ENDB][g, e]:
        D[D_CUR][g, e] = -1
        return -1, -1
    nb = next_sim_burst(b + 1, D[D_NCH][0], D[D_NCH][1])
    D[D_NEXTB][g, e] = nb
    D[D_OUT][g, e] += 1
    if nb >= D[D_ENDB][g, e]:
        D[D_CUR][g, e] = -1   # every read issued: the cursor may take the next descriptor
    return b, d


@njit(cache=True)
def dma_read_done(D, g, e, d):
    D[D_OUT][g, e] -= 1
    D[D_LEFT][g, d] -= 1
    if D[D_LEFT][g, d] == 0:
        D[D_ACTIVE][g, e] -= 1
        return 1
    return 0


@njit(cache=True)
def dma_busy(D, g, e):
    return D[D_CUR][g, e] >= 0 or D[D_ACTIVE][g, e] > 0
