"""Ring link between neighbouring GPUs: one per GPU (its egress to the downstream neighbour), a
FIFO of messages served at the per-direction bandwidth, each message arriving `latency` after its
last byte leaves, with credit-based flow control against the receiver's buffer.

A message is the unit the senders hand over: a GEMM tile's remote stores (T3 stage 1), a DMA'd
partial tile (T3 stages 2..N-1) or a collective slice (baseline ring RS/AG). Handshake:

* `link_push` enqueues a message (the sender never blocks: remote stores and DMA hand-offs are
  posted; the DMA engine itself limits how much it reads ahead, see `dma.py`);
* `link_start` starts the head message if the link is idle and the receiver has credits for all
  of its bytes; it returns the times its last byte leaves (`free`) and it arrives (`arrive`);
* `link_free` marks the wire idle again at `free`;
* `link_credit` returns receiver-buffer credits as the receiver drains the message into its DRAM
  queue.

Times are integer ps; serialisation of b bytes takes ceil(b * 1e6 / bandwidth_MBps) ps.
"""

from __future__ import annotations

import numpy as np
from numba import njit

# state tuple indices
LK_HEAD, LK_TAIL, LK_NEXT, LK_BUSY, LK_QBYTES, LK_CREDIT, LK_SENT, LK_CUR = range(8)
# lcfg indices
LC_LAT_PS, LC_MBPS, LC_RXBUF = range(3)


def make_links(n_links: int, n_msgs: int, rx_buffer_bytes: int):
    return (
        np.full(n_links, -1, dtype=np.int64),       # LK_HEAD
        np.full(n_links, -1, dtype=np.int64),       # LK_TAIL
        np.full(max(n_msgs, 1), -1, dtype=np.int64),  # LK_NEXT
        np.zeros(n_links, dtype=np.int64),          # LK_BUSY
        np.zeros(n_links, dtype=np.int64),          # LK_QBYTES: bytes queued, not yet on the wire
        np.full(n_links, rx_buffer_bytes, dtype=np.int64),  # LK_CREDIT: free receiver buffer
        np.zeros(n_links, dtype=np.int64),          # LK_SENT: bytes sent
        np.full(n_links, -1, dtype=np.int64),       # LK_CUR: message on the wire
    )


def make_lcfg(latency_ps: int, bandwidth_MBps: int, rx_buffer_bytes: int) -> np.ndarray:
    return np.array([latency_ps, bandwidth_MBps, rx_buffer_bytes], dtype=np.int64)


@njit(cache=True)
def serialise_ps(lcfg, nbytes):
    return (nbytes * 1000000 + lcfg[LC_MBPS] - 1) // lcfg[LC_MBPS]


@njit(cache=True)
def link_push(L, link, msg, nbytes):
    """Append message `msg` of `nbytes` to link `link`'s FIFO."""
    head, tail, nxt = L[LK_HEAD], L[LK_TAIL], L[LK_NEXT]
    nxt[msg] = -1
    if tail[link] < 0:
        head[link] = msg
    else:
        nxt[tail[link]] = msg
    tail[link] = msg
    L[LK_QBYTES][link] += nbytes


@njit(cache=True)
def link_start(L, lcfg, link, t, msg_bytes):
    """Start the head message at time t if possible. Returns (msg, t_free, t_arrive) or (-1, 0, 0)."""
    if L[LK_BUSY][link] != 0:
        return -1, 0, 0
    m = L[LK_HEAD][link]
    if m < 0:
        return -1, 0, 0
    nb = msg_bytes[m]
    # A message larger than the whole buffer may go once the buffer is empty.
    if L[LK_CREDIT][link] < min(nb, lcfg[LC_RXBUF]):
        return -1, 0, 0
    L[LK_HEAD][link] = L[LK_NEXT][m]
    if L[LK_HEAD][link] < 0:
        L[LK_TAIL][link] = -1
    L[LK_BUSY][link] = 1
    L[LK_CUR][link] = m
    L[LK_CREDIT][link] -= nb
    L[LK_SENT][link] += nb
    t_free = t + serialise_ps(lcfg, nb)
    return m, t_free, t_free + lcfg[LC_LAT_PS]


@njit(cache=True)
def link_free(L, link, msg_bytes):
    m = L[LK_CUR][link]
    L[LK_BUSY][link] = 0
    L[LK_CUR][link] = -1
    L[LK_QBYTES][link] -= msg_bytes[m]


@njit(cache=True)
def link_credit(L, link, nbytes):
    L[LK_CREDIT][link] += nbytes
