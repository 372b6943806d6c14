"""Handshake tests of the ring link and the DMA engines, driven by source/sink harnesses with
random stalls (the receiver drains late, memory answers late, the link back-pressures)."""

from __future__ import annotations

import heapq
import random

import numpy as np
import pytest

from hwsim.t3.dma import (D_CUR, D_OUT, count_sim_bursts, dma_busy, dma_next_read, dma_read_done, dma_trigger,
                          dma_try_start, make_dma, next_sim_burst)
from hwsim.t3.link import (LK_CREDIT, LK_QBYTES, LK_SENT, link_credit, link_free, link_push, link_start, make_lcfg,
                           make_links, serialise_ps)


def _run_link(seed, n_msgs=60, rxbuf=8192, lat_ps=500_000, mbps=150_000):
    rng = random.Random(seed)
    sizes = np.array([rng.choice([32, 1024, 4096, 8192]) for _ in range(n_msgs)], dtype=np.int64)
    offer = sorted(rng.randrange(0, 2_000_000) for _ in range(n_msgs))
    L = make_links(1, n_msgs, rxbuf)
    lcfg = make_lcfg(lat_ps, mbps, rxbuf)
    ev = []          # (time, order, kind, arg)
    seq = 0
    for m, t in enumerate(offer):
        heapq.heappush(ev, (t, seq, "offer", m))
        seq += 1
    starts, frees, arrivals, drained = {}, {}, [], {}
    min_credit = rxbuf

    def try_start(t):
        nonlocal seq
        m, t_free, t_arr = link_start(L, lcfg, 0, t, sizes)
        if m >= 0:
            starts[m] = t
            frees[m] = t_free
            heapq.heappush(ev, (t_free, seq, "free", m))
            heapq.heappush(ev, (t_arr, seq + 1, "arrive", m))
            seq += 2

    while ev:
        t, _, kind, m = heapq.heappop(ev)
        if kind == "offer":
            link_push(L, 0, m, sizes[m])
            try_start(t)
        elif kind == "free":
            link_free(L, 0, sizes)
            try_start(t)
        elif kind == "arrive":
            arrivals.append((t, m))
            # the receiver drains the message into DRAM in random-sized pieces after random stalls
            left = int(sizes[m])
            tt = t
            while left:
                piece = min(left, rng.choice([32, 512, 4096]))
                tt += rng.randrange(0, 200_000)
                heapq.heappush(ev, (tt, seq, "credit", piece))
                seq += 1
                left -= piece
            drained[m] = tt
        elif kind == "credit":
            link_credit(L, 0, m)
            try_start(t)
        min_credit = min(min_credit, int(L[LK_CREDIT][0]))
    return sizes, offer, starts, frees, arrivals, L, lcfg, min_credit, rxbuf, lat_ps


@pytest.mark.parametrize("seed", range(8))
def test_link_delivers_every_message_once_in_order_with_latency_and_bandwidth(seed):
    sizes, offer, starts, frees, arrivals, L, lcfg, min_credit, rxbuf, lat = _run_link(seed)
    n = len(sizes)
    assert [m for _, m in arrivals] == list(range(n))          # FIFO, each exactly once
    for m in range(n):
        assert starts[m] >= offer[m]
        assert frees[m] - starts[m] == serialise_ps(lcfg, sizes[m])
    for t, m in arrivals:
        assert t == frees[m] + lat
    order = sorted(starts, key=starts.get)
    for a, b in zip(order, order[1:]):
        assert starts[b] >= frees[a]                              # one message on the wire at a time
    assert min_credit >= 0                                        # never more in flight than the buffer
    assert int(L[LK_CREDIT][0]) == rxbuf and int(L[LK_QBYTES][0]) == 0
    assert int(L[LK_SENT][0]) == int(sizes.sum())


def test_an_oversized_message_waits_for_an_empty_receiver_buffer():
    sizes = np.array([4096, 10000], dtype=np.int64)
    L = make_links(1, 2, 8192)
    lcfg = make_lcfg(0, 150_000, 8192)
    link_push(L, 0, 0, 4096)
    link_push(L, 0, 1, 10000)
    m, t_free, _ = link_start(L, lcfg, 0, 0, sizes)
    assert m == 0
    link_free(L, 0, sizes)
    assert link_start(L, lcfg, 0, t_free, sizes)[0] == -1      # 4096 B still in the receiver
    link_credit(L, 0, 4096)
    assert link_start(L, lcfg, 0, t_free, sizes)[0] == 1       # empty buffer: the big one goes


def test_link_serialisation_is_the_ceiling_of_bytes_over_bandwidth():
    lcfg = make_lcfg(500_000, 150_000, 1 << 20)
    assert serialise_ps(lcfg, 150) == 1000          # 150 B at 150 GB/s = 1 ns
    assert serialise_ps(lcfg, 151) == 1007          # ceil(151 / 0.15) ps
    assert serialise_ps(lcfg, 3 * 1024 * 1024) == -(-3 * 1024 * 1024 * 1_000_000 // 150_000)


def test_next_and_count_sim_bursts_agree_with_a_scan():
    for ch_sim, ch_tot in [(1, 64), (2, 8), (3, 3), (1, 1)]:
        for b0 in range(0, 40, 7):
            for b1 in (b0, b0 + 1, b0 + 63, b0 + 200):
                scan = [b for b in range(b0, b1) if b % ch_tot < ch_sim]
                assert count_sim_bursts(b0, b1, ch_sim, ch_tot) == len(scan)
                got = []
                b = next_sim_burst(b0, ch_sim, ch_tot)
                while b < b1:
                    got.append(b)
                    b = next_sim_burst(b + 1, ch_sim, ch_tot)
                assert got == scan


def _run_dma(seed, *, n_desc=20, engines=2, max_out=3, ch_sim=2, ch_tot=4, tx_limit=5000, size=(8, 60),
             trig_span=50_000):
    """Drive the DMA engines against a memory that answers late (random, out of order) and a link
    that drains late; returns what the harness saw."""
    rng = random.Random(seed)
    b0 = np.array([[i * 100 + rng.randrange(0, 5) for i in range(n_desc)]], dtype=np.int64)
    b1 = b0 + np.array([[rng.randrange(*size) for _ in range(n_desc)]], dtype=np.int64)
    D = make_dma(engines, b0, b1, max_out, ch_sim, ch_tot)
    ev, seq = [], 0
    trig = sorted(rng.randrange(0, trig_span) for _ in range(n_desc))
    for d, t in enumerate(trig):
        heapq.heappush(ev, (t, seq, "trigger", (d, -1)))
        seq += 1
    link_q = [0]          # bytes waiting on the (simulated) link
    reads = {}            # desc -> list of bursts read
    started, completed = [], []
    out = [0] * engines   # reads in flight per engine, counted by the harness
    peak = [0] * engines
    multi = [False]       # an engine had reads of two descriptors in flight at once

    def kick(t):
        nonlocal seq
        for e in range(engines):
            while True:
                if D[D_CUR][0, e] < 0:
                    d = dma_try_start(D, 0, e, link_q[0], tx_limit)
                    if d < 0:
                        break
                    assert link_q[0] < tx_limit
                    started.append(d)
                while True:
                    b, d = dma_next_read(D, 0, e)
                    if b < 0:
                        break
                    if any(x[1] == e and x[0] != d for x in pending):
                        multi[0] = True
                    out[e] += 1
                    peak[e] = max(peak[e], out[e])
                    assert out[e] == int(D[D_OUT][0, e]) <= max_out
                    reads.setdefault(d, []).append(b)
                    pending.append((d, e))
                    heapq.heappush(ev, (t + rng.randrange(50, 3000), seq, "read_done", (d, e)))   # memory stalls
                    seq += 1
                if D[D_CUR][0, e] >= 0:
                    break

    pending = []
    while ev:
        t, _, kind, (a, e) = heapq.heappop(ev)
        if kind == "trigger":
            dma_trigger(D, 0, a)
        elif kind == "read_done":
            pending.remove((a, e))
            out[e] -= 1
            if dma_read_done(D, 0, e, a):
                assert a not in completed
                completed.append(a)
                nbytes = int(b1[0, a] - b0[0, a]) * 32
                link_q[0] += nbytes
                heapq.heappush(ev, (t + rng.randrange(100, 4000), seq, "link_sent", (nbytes, -1)))   # link stalls
                seq += 1
        elif kind == "link_sent":
            link_q[0] -= a
        kick(t)
    assert not any(dma_busy(D, 0, e) for e in range(engines))
    return b0, b1, reads, started, completed, peak, multi[0]


@pytest.mark.parametrize("seed", range(8))
def test_dma_reads_every_burst_once_respects_limits_and_completes(seed):
    n_desc, ch_sim, ch_tot = 20, 2, 4
    b0, b1, reads, started, completed, peak, _ = _run_dma(seed, n_desc=n_desc, ch_sim=ch_sim, ch_tot=ch_tot)
    assert started == list(range(n_desc))                    # descriptors start in trigger order
    assert sorted(completed) == list(range(n_desc))          # each completes exactly once
    for d in range(n_desc):
        want = [b for b in range(int(b0[0, d]), int(b1[0, d])) if b % ch_tot < ch_sim]
        assert reads[d] == want                              # every burst once, in address order


@pytest.mark.parametrize("seed", range(4))
def test_dma_engine_pipelines_reads_across_descriptors(seed):
    """Descriptors smaller than the outstanding limit: an engine keeps reading the next one while
    the previous one's reads are still out, up to (and never beyond) the limit."""
    max_out = 12
    b0, b1, reads, started, completed, peak, multi = _run_dma(
        seed, n_desc=30, engines=1, max_out=max_out, ch_sim=1, ch_tot=1, tx_limit=1 << 30, size=(3, 5),
        trig_span=10)
    assert sorted(completed) == list(range(30))
    assert multi
    assert peak[0] == max_out
