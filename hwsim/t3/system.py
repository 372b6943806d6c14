"""The T3 system kernel: one numba event loop that runs the GPU producer, the per-channel memory
controllers, the tracker, the DMA engines, the ring links and the collectives together.

Time is integer ps. DRAM commands issue on command-clock edges through the memory-controller
front end (`memctrl.mc_service`, which calls `hwsim.dram_pim.device.earliest/issue`). Events are
`(tick_ps, seq, kind, a, b)` on one heap; equal ticks run in scheduling order, so runs are
deterministic.

What one run simulates is chosen by `cfg[C_GEMM]` (no GEMM, the baseline GEMM whose stores are
plain writes through L2, or the T3 GEMM whose stores are remote stores / local near-memory
updates) and `cfg[C_COLL]` (none, ring reduce-scatter as a CU kernel, ring reduce-scatter with
near-memory updates, ring all-gather as a CU kernel). The T3 fused run is GEMM=T3, COLL=none: the
reduce-scatter happens through the tracker, DMA and link.

GPUs: `n_gpu` GPUs are simulated explicitly, GPU g's link going to GPU (g+1) mod n_gpu. With
n_gpu = 1 the single GPU is its own neighbour: by symmetry every GPU does the same thing at the
same time, so what GPU g-1 sends at stage s is what g sends at stage s, relabelled as stage s+1
(the paper's one-GPU methodology, section 5.1).

Channels: of the `ch_tot` channels of a GPU, the first `ch_sim` are simulated; burst b of the
GPU's address space lives on channel b mod ch_tot (channel-interleaved mapping), so with uniformly
interleaved traffic every channel sees the same load and one channel represents all (see
docs/t3.md for the agreement test).
"""

from __future__ import annotations

import heapq

import numpy as np
from numba import njit

from hwsim.t3.dma import (D_CUR, dma_busy, dma_next_read, dma_read_done, dma_trigger, dma_try_start,
                          next_sim_burst)
from hwsim.t3.link import LK_QBYTES, link_credit, link_free, link_push, link_start
from hwsim.t3.memctrl import (CLS_COMM, CLS_COMPUTE, F_REFRESH, INF, M_FLEN, M_NEXTREF, M_OCC, M_THR, OP_RD, OP_UPD,
                              OP_WR, mc_enqueue, mc_pending, mc_service, op_latency)
from hwsim.t3.tracker import K_FIRED_Q, tracker_count

# ---- configuration (cfg, int64) --------------------------------------------------------------
(C_NGPU, C_CHSIM, C_CHTOT, C_TCK, C_GEMM, C_COLL, C_NSLOTS, C_NCU, C_PREFETCH, C_NWG, C_NK, C_TPC, C_TP,
 C_COMP_PS, C_L2LAT, C_MEMLAT, C_LAUNCH, C_NENG, C_TXLIMIT, C_DMA_LAT, C_CWORKERS, C_NSLICES, C_CU_MBPS,
 C_NOMEM, C_THR_FIXED, C_THR_MIN, C_QCAP, C_NBL, C_RANKS, C_BG, C_BPG, C_CHUNK_BYTES, C_SLICE_BYTES,
 C_RECV_BASE, C_SAMPLE_PS, C_RD_UNLOADED, C_MCA, C_BANKS_PER_CH, C_NDEC, C_ROWS) = range(40)
N_CFG = 40

GEMM_NONE, GEMM_BASE, GEMM_T3 = 0, 1, 2
COLL_NONE, COLL_RS, COLL_RS_NMC, COLL_AG = 0, 1, 2, 3

# streams (byte accounting)
ST_GEMM, ST_RS, ST_AG, ST_DMA, ST_NMC = 0, 1, 2, 3, 4
STREAM_NAMES = ("gemm", "rs", "ag", "dma", "nmc")
# request owner kinds
K_FILL, K_STORE, K_DMA, K_NMC, K_CRD, K_CWR, K_CIN = 0, 1, 2, 3, 4, 5, 6
# events
EV_MC, EV_DONE, EV_KREADY, EV_COMP, EV_WGSTART, EV_LFREE, EV_LARRIVE, EV_DMATRIG, EV_CADD, EV_FILLNOCH, EV_SAMPLE = range(11)
# message kinds
MK_REMOTE, MK_DMAUPD, MK_RS, MK_RSNMC, MK_AG = 0, 1, 2, 3, 4

# ---- counters (cn, int64) --------------------------------------------------------------------
(N_REQ, N_OUT, N_MSGS, N_MSG_OUT, N_WG_LEFT, N_COLL_LEFT, N_T3_LEFT, N_DMA_PEND, N_OVF, N_ERR, N_IDLE,
 T_END, T_COMP_END, T_GEMM_END, T_COLL_END, T_T3_END, N_EVENTS, N_DMA_DONE, N_NSAMP, N_WAIT, N_STATUS,
 T_STAGE0_MEAS) = range(22)
N_CN = 22

# request tuple indices (the first six are memctrl's R_*)
(RQ_BANK, RQ_ROW, RQ_COL, RQ_OP, RQ_CLS, RQ_ARRIVE, RQ_STREAM, RQ_KIND, RQ_OWNER, RQ_MSG, RQ_B, RQ_GPU,
 RQ_DONE) = range(13)
# producer tuple
(P_SLOT_WG, P_NLOAD, P_NCOMP, P_BUSY, P_PEND, P_RLB, P_CUFREE, P_NEXTWG, P_FILL_LEFT, P_FILL_DONE,
 P_FILL_WHEAD, P_W_SLOT, P_W_K, P_W_NEXT, P_W_N, P_STAGE_CNT, P_STAGE_T0, P_STAGE_T1, P_WG_CHUNK, P_WG_L,
 P_ACC_FILL, P_ACC_MISS, P_FILL_B0, P_FILL_B1, P_C_B0, P_C_B1, P_C_BYTES, P_COMP_BURSTS) = range(28)
# message tuple
MS_KIND, MS_SRC, MS_STEP, MS_IDX, MS_BYTES, MS_LEFT, MS_CREDIT, MS_T0, MS_T1, MS_T2 = range(10)
# collective tuple
CO_RD_LEFT, CO_IN_LEFT, CO_WR_LEFT, CO_HEAD, CO_TAIL, CO_NEXT, CO_FREE = range(7)
# stats tuple
SS_BURSTS, SS_SAMPLES, SS_DMA_T, SS_THR, SS_FIRE_T = range(5)


@njit(cache=True)
def _push(heap, seq, t, kind, a, b):
    heapq.heappush(heap, (t, seq[0], kind, a, b))
    seq[0] += 1


@njit(cache=True)
def _decode(lb, dec, nrows):
    """Channel-local burst index -> (column, rank, bankgroup, bank, row)."""
    col = 0
    rank = 0
    bg = 0
    bank = 0
    row = 0
    for i in range(dec.shape[0]):
        kind = dec[i, 0]
        nb = dec[i, 1]
        v = lb & ((np.int64(1) << nb) - 1)
        lb = lb >> nb
        if kind == 0:
            col = v
        elif kind == 1:
            rank = v
        elif kind == 2:
            bg = v
        elif kind == 3:
            bank = v
        else:
            row = v
    return col, rank, bg, bank, row % nrows


@njit(cache=True)
def _kick_mc(cfg, mc_wake, heap, seq, gch, t):
    tck = cfg[C_TCK]
    tc = (t + tck - 1) // tck * tck
    if tc < mc_wake[gch]:
        mc_wake[gch] = tc
        _push(heap, seq, tc, EV_MC, gch, 0)


@njit(cache=True)
def _new_req(cfg, cn, RQ, M, dec, mc_wake, heap, seq, g, b, op, cls, stream, kind, owner, msg, t):
    r = cn[N_REQ]
    if r >= RQ[RQ_BANK].shape[0]:
        cn[N_OVF] = 1
        return -1
    chtot = cfg[C_CHTOT]
    ch = b % chtot
    gch = g * cfg[C_CHSIM] + ch
    col, rank, bg, bank, row = _decode(b // chtot, dec, cfg[C_ROWS])
    RQ[RQ_BANK][r] = gch * cfg[C_BANKS_PER_CH] + (rank * cfg[C_BG] + bg) * cfg[C_BPG] + bank
    RQ[RQ_ROW][r] = row
    RQ[RQ_COL][r] = col
    RQ[RQ_OP][r] = op
    RQ[RQ_CLS][r] = cls
    RQ[RQ_ARRIVE][r] = t
    RQ[RQ_STREAM][r] = stream
    RQ[RQ_KIND][r] = kind
    RQ[RQ_OWNER][r] = owner
    RQ[RQ_MSG][r] = msg
    RQ[RQ_B][r] = b
    RQ[RQ_GPU][r] = g
    RQ[RQ_DONE][r] = -1
    cn[N_REQ] += 1
    cn[N_OUT] += 1
    mc_enqueue(M, RQ, r, gch)
    _kick_mc(cfg, mc_wake, heap, seq, gch, t)
    return r


@njit(cache=True)
def _emit(cfg, cn, RQ, M, dec, mc_wake, heap, seq, g, b0, b1, op, cls, stream, kind, owner, msg, t):
    """Requests for every burst of [b0, b1) on the simulated channels; returns how many."""
    chsim, chtot = cfg[C_CHSIM], cfg[C_CHTOT]
    n = 0
    b = next_sim_burst(b0, chsim, chtot)
    while b < b1:
        _new_req(cfg, cn, RQ, M, dec, mc_wake, heap, seq, g, b, op, cls, stream, kind, owner, msg, t)
        n += 1
        b = next_sim_burst(b + 1, chsim, chtot)
    return n


# ---- producer --------------------------------------------------------------------------------
@njit(cache=True)
def _add_waiter(P, f, gs, k):
    i = P[P_W_N][0]
    P[P_W_SLOT][i] = gs
    P[P_W_K][i] = k
    P[P_W_NEXT][i] = P[P_FILL_WHEAD][f]
    P[P_FILL_WHEAD][f] = i
    P[P_W_N][0] = i + 1


@njit(cache=True)
def _issue_loads(cfg, cn, RQ, M, P, dec, mc_wake, heap, seq, gs, k, t):
    nslots = cfg[C_NSLOTS]
    g = gs // nslots
    w = P[P_SLOT_WG][gs]
    kb = k % (cfg[C_PREFETCH] + 1)
    pend = 0
    P[P_RLB][gs, kb] = t + cfg[C_L2LAT]
    for a in range(2):
        f = P[P_ACC_FILL][g, w, k, a]
        if P[P_ACC_MISS][g, w, k, a]:
            n = _emit(cfg, cn, RQ, M, dec, mc_wake, heap, seq, g, P[P_FILL_B0][f], P[P_FILL_B1][f], OP_RD,
                      CLS_COMPUTE, ST_GEMM, K_FILL, f, -1, t)
            P[P_FILL_LEFT][f] = n
            if n == 0:
                _push(heap, seq, t + cfg[C_MEMLAT] + cfg[C_RD_UNLOADED], EV_FILLNOCH, f, 0)
            _add_waiter(P, f, gs, k)
            pend += 1
        elif P[P_FILL_DONE][f] == 0:
            _add_waiter(P, f, gs, k)
            pend += 1
    P[P_PEND][gs, kb] = pend
    if pend == 0:
        _push(heap, seq, P[P_RLB][gs, kb], EV_KREADY, gs, k)


@njit(cache=True)
def _try_compute(cfg, cn, RQ, M, P, dec, mc_wake, heap, seq, gs, t):
    if P[P_BUSY][gs] != 0:
        return
    k = P[P_NCOMP][gs]
    nk = cfg[C_NK]
    if k >= nk or k >= P[P_NLOAD][gs]:
        return
    kb = k % (cfg[C_PREFETCH] + 1)
    if P[P_PEND][gs, kb] > 0 or P[P_RLB][gs, kb] > t:
        return
    nslots = cfg[C_NSLOTS]
    g = gs // nslots
    cu = g * cfg[C_NCU] + (gs % nslots) % cfg[C_NCU]
    start = max(t, P[P_CUFREE][cu])
    end = start + cfg[C_COMP_PS]
    P[P_CUFREE][cu] = end
    P[P_BUSY][gs] = 1
    _push(heap, seq, end, EV_COMP, gs, k)
    while P[P_NLOAD][gs] < nk and P[P_NLOAD][gs] <= k + cfg[C_PREFETCH]:
        _issue_loads(cfg, cn, RQ, M, P, dec, mc_wake, heap, seq, gs, P[P_NLOAD][gs], t)
        P[P_NLOAD][gs] += 1


@njit(cache=True)
def _fill_complete(cfg, cn, RQ, M, P, dec, mc_wake, heap, seq, f, t):
    P[P_FILL_DONE][f] = 1
    i = P[P_FILL_WHEAD][f]
    P[P_FILL_WHEAD][f] = -1
    depth = cfg[C_PREFETCH] + 1
    while i >= 0:
        gs = P[P_W_SLOT][i]
        k = P[P_W_K][i]
        kb = k % depth
        P[P_PEND][gs, kb] -= 1
        if P[P_PEND][gs, kb] == 0:
            if P[P_RLB][gs, kb] <= t:
                _try_compute(cfg, cn, RQ, M, P, dec, mc_wake, heap, seq, gs, t)
            else:
                _push(heap, seq, P[P_RLB][gs, kb], EV_KREADY, gs, k)
        i = P[P_W_NEXT][i]


@njit(cache=True)
def _wg_start(cfg, cn, RQ, M, P, dec, mc_wake, heap, seq, gs, w, t):
    g = gs // cfg[C_NSLOTS]
    P[P_SLOT_WG][gs] = w
    P[P_NLOAD][gs] = 0
    P[P_NCOMP][gs] = 0
    P[P_BUSY][gs] = 0
    s = w // cfg[C_TPC]
    if P[P_STAGE_T0][g, s] < 0:
        P[P_STAGE_T0][g, s] = t
    n0 = min(cfg[C_PREFETCH] + 1, cfg[C_NK])
    for k in range(n0):
        _issue_loads(cfg, cn, RQ, M, P, dec, mc_wake, heap, seq, gs, k, t)
    P[P_NLOAD][gs] = n0


# ---- link, messages --------------------------------------------------------------------------
@njit(cache=True)
def _try_link(cfg, L, lcfg, MS, heap, seq, g, t):
    m, t_free, t_arr = link_start(L, lcfg, g, t, MS[MS_BYTES])
    if m >= 0:
        MS[MS_T0][m] = t
        MS[MS_T1][m] = t_free
        MS[MS_T2][m] = t_arr
        _push(heap, seq, t_free, EV_LFREE, g, 0)
        _push(heap, seq, t_arr, EV_LARRIVE, m, 0)


@njit(cache=True)
def _send(cfg, cn, L, lcfg, MS, heap, seq, g, kind, step, idx, nbytes, t):
    m = cn[N_MSGS]
    if m >= MS[MS_KIND].shape[0]:
        cn[N_OVF] = 1
        return
    cn[N_MSGS] += 1
    cn[N_MSG_OUT] += 1
    MS[MS_KIND][m] = kind
    MS[MS_SRC][m] = g
    MS[MS_STEP][m] = step
    MS[MS_IDX][m] = idx
    MS[MS_BYTES][m] = nbytes
    link_push(L, g, m, nbytes)
    _try_link(cfg, L, lcfg, MS, heap, seq, g, t)


# ---- DMA -------------------------------------------------------------------------------------
@njit(cache=True)
def _dma_kick(cfg, cn, RQ, M, D, L, dec, mc_wake, heap, seq, SS, g, t):
    neng = cfg[C_NENG]
    nge = cfg[C_NGPU] * neng
    for e in range(neng):
        while True:
            if D[D_CUR][g, e] < 0:
                d = dma_try_start(D, g, e, L[LK_QBYTES][g], cfg[C_TXLIMIT])
                if d < 0:
                    break
                cn[N_DMA_PEND] -= 1
                SS[SS_DMA_T][g, d, 0] = t
            while True:
                b, d = dma_next_read(D, g, e)
                if b < 0:
                    break
                # owner: descriptor and engine (request -> descriptor on return)
                _new_req(cfg, cn, RQ, M, dec, mc_wake, heap, seq, g, b, OP_RD, CLS_COMM, ST_DMA, K_DMA,
                         d * nge + g * neng + e, -1, t)
            if D[D_CUR][g, e] >= 0:
                break   # the outstanding-read limit stops this engine for now


@njit(cache=True)
def _on_fire(cfg, cn, T, heap, seq, SS, g, nf, t):
    tp = cfg[C_TP]
    tpc = cfg[C_TPC]
    for i in range(nf):
        key = T[K_FIRED_Q][g, i]
        SS[SS_FIRE_T][g, key] = t
        if key // tpc < tp - 1:
            cn[N_DMA_PEND] += 1
            _push(heap, seq, t + cfg[C_DMA_LAT], EV_DMATRIG, g, key)
        else:
            cn[N_T3_LEFT] -= 1
            if t > cn[T_T3_END]:
                cn[T_T3_END] = t


# ---- collectives -----------------------------------------------------------------------------
@njit(cache=True)
def _slice_range(cfg, j):
    sb = cfg[C_SLICE_BYTES]
    lo = j * sb
    hi = min(lo + sb, cfg[C_CHUNK_BYTES])
    return lo, hi


@njit(cache=True)
def _chunk_b(P, cfg, c, lo, hi):
    base = P[P_C_B0][c, 0] * 32
    return (base + lo) // 32, (base + hi + 31) // 32


@njit(cache=True)
def _coll_ready(CO, g, op):
    CO[CO_NEXT][op] = -1
    if CO[CO_TAIL][g] < 0:
        CO[CO_HEAD][g] = op
    else:
        CO[CO_NEXT][CO[CO_TAIL][g]] = op
    CO[CO_TAIL][g] = op


@njit(cache=True)
def _coll_dispatch(cfg, cn, RQ, M, P, CO, dec, mc_wake, heap, seq, g, t):
    tp = cfg[C_TP]
    ns = cfg[C_NSLICES]
    coll = cfg[C_COLL]
    while CO[CO_FREE][g] > 0 and CO[CO_HEAD][g] >= 0:
        op = CO[CO_HEAD][g]
        CO[CO_HEAD][g] = CO[CO_NEXT][op]
        if CO[CO_HEAD][g] < 0:
            CO[CO_TAIL][g] = -1
        CO[CO_FREE][g] -= 1
        s = (op // ns) % tp
        j = op % ns
        lo, hi = _slice_range(cfg, j)
        n = 0
        if cfg[C_NOMEM] == 0:
            if coll == COLL_RS:
                c = (s - g) % tp
                b0, b1 = _chunk_b(P, cfg, c, lo, hi)
                n += _emit(cfg, cn, RQ, M, dec, mc_wake, heap, seq, g, b0, b1, OP_RD, CLS_COMM, ST_RS, K_CRD, op, -1, t)
                if s > 0:
                    rb = cfg[C_RECV_BASE] + s * cfg[C_CHUNK_BYTES]
                    n += _emit(cfg, cn, RQ, M, dec, mc_wake, heap, seq, g, (rb + lo) // 32, (rb + hi + 31) // 32, OP_RD,
                               CLS_COMM, ST_RS, K_CRD, op, -1, t)
            elif coll == COLL_RS_NMC:
                c = (s - g) % tp
                b0, b1 = _chunk_b(P, cfg, c, lo, hi)
                n += _emit(cfg, cn, RQ, M, dec, mc_wake, heap, seq, g, b0, b1, OP_RD, CLS_COMM, ST_RS, K_CRD, op, -1, t)
            else:  # AG: step 0 reads the own reduced chunk, step s the chunk that arrived at step s-1
                c = (tp - 1 - g) % tp if s == 0 else (s - 1 - g) % tp
                b0, b1 = _chunk_b(P, cfg, c, lo, hi)
                n += _emit(cfg, cn, RQ, M, dec, mc_wake, heap, seq, g, b0, b1, OP_RD, CLS_COMM, ST_AG, K_CRD, op, -1, t)
        CO[CO_RD_LEFT][op] = n
        if n == 0:
            _coll_reads_done(cfg, CO, heap, seq, op, t)


@njit(cache=True)
def _coll_reads_done(cfg, CO, heap, seq, op, t):
    ns = cfg[C_NSLICES]
    s = (op // ns) % cfg[C_TP]
    lo, hi = _slice_range(cfg, op % ns)
    nb = hi - lo
    touched = nb * 2 if (cfg[C_COLL] != COLL_RS or s == 0) else nb * 3
    cu_ps = 0 if cfg[C_NOMEM] != 0 else (touched * 1000000 + cfg[C_CU_MBPS] - 1) // cfg[C_CU_MBPS]
    _push(heap, seq, t + cu_ps, EV_CADD, op, 0)


@njit(cache=True)
def _coll_landed(cfg, cn, CO, op, t):
    """All incoming data of op (g, s, j) is in g's DRAM."""
    ns = cfg[C_NSLICES]
    tp = cfg[C_TP]
    g = op // (ns * tp)
    s = (op // ns) % tp
    coll = cfg[C_COLL]
    if coll != COLL_RS and s == tp - 1:
        cn[N_COLL_LEFT] -= 1
        if t > cn[T_COLL_END]:
            cn[T_COLL_END] = t
        return False
    _coll_ready(CO, g, op)
    return True


# ---- the loop --------------------------------------------------------------------------------
@njit(cache=True)
def run_system(cfg, st, mcfg, M, RQ, P, T, D, L, lcfg, MS, CO, SS, dec, cn):
    """Run to completion. cn[N_STATUS]: 0 ok, 1 capacity overflow (rerun larger), 2 deadlock,
    3 internal error."""
    ngpu = cfg[C_NGPU]
    chsim = cfg[C_CHSIM]
    nch = ngpu * chsim
    tck = cfg[C_TCK]
    nslots = cfg[C_NSLOTS]
    tpc = cfg[C_TPC]
    tp = cfg[C_TP]
    ns = cfg[C_NSLICES]
    gemm = cfg[C_GEMM]
    coll = cfg[C_COLL]
    mc_wake = np.full(nch, INF, dtype=np.int64)
    mc_free = np.zeros(nch, dtype=np.int64)  # first ps at which the channel may issue again (1 cmd/cycle)
    seq = np.zeros(1, dtype=np.int64)
    heap = [(np.int64(0), np.int64(0), np.int64(0), np.int64(0), np.int64(0))]
    heapq.heappop(heap)
    # start
    if gemm != GEMM_NONE:
        cn[N_WG_LEFT] = ngpu * cfg[C_NWG]
        for g in range(ngpu):
            for s in range(min(nslots, cfg[C_NWG])):
                _push(heap, seq, 0, EV_WGSTART, g * nslots + s, s)
            P[P_NEXTWG][g] = min(nslots, cfg[C_NWG])
        if gemm == GEMM_T3:
            cn[N_T3_LEFT] = ngpu * tpc
    if coll != COLL_NONE:
        cn[N_COLL_LEFT] = ngpu * ns
        for g in range(ngpu):
            for j in range(ns):
                _coll_ready(CO, g, (g * tp + 0) * ns + j)
            _coll_dispatch(cfg, cn, RQ, M, P, CO, dec, mc_wake, heap, seq, g, 0)
    if cfg[C_SAMPLE_PS] > 0:
        _push(heap, seq, 0, EV_SAMPLE, 0, 1)
        cn[N_IDLE] += 1
    for gch in range(nch):
        if mc_wake[gch] >= INF and mcfg[F_REFRESH] != 0:
            nr = M[M_NEXTREF][gch * cfg[C_RANKS]]
            mc_wake[gch] = nr * tck
            _push(heap, seq, nr * tck, EV_MC, gch, 1)
            cn[N_IDLE] += 1
    t = np.int64(0)
    while len(heap) > 0:
        t, _, kind, a, b = heapq.heappop(heap)
        cn[N_EVENTS] += 1
        if kind == EV_MC:
            if b == 1:
                cn[N_IDLE] -= 1
            if t != mc_wake[a]:
                continue
            if t < mc_free[a]:
                # A request that arrived in the cycle of an issued command woke the channel for that
                # same cycle; one command per channel per cycle, so try again next cycle.
                mc_wake[a] = mc_free[a]
                _push(heap, seq, mc_free[a], EV_MC, a, 0)
                continue
            mc_wake[a] = INF
            cyc = t // tck
            req, c, next_c = mc_service(st, M, RQ, mcfg, a, cyc)
            if req == -3:
                cn[N_STATUS] = 3
                return
            if req >= 0:
                op = RQ[RQ_OP][req]
                k = RQ[RQ_KIND][req]
                g = RQ[RQ_GPU][req]
                done = (cyc + op_latency(mcfg, op)) * tck
                if k == K_FILL or k == K_DMA or k == K_CRD:
                    done += cfg[C_MEMLAT]
                _push(heap, seq, done, EV_DONE, req, 0)
                SS[SS_BURSTS][g, RQ[RQ_STREAM][req], 0 if op == OP_RD else 1] += 1
                if RQ[RQ_CLS][req] == CLS_COMPUTE:
                    P[P_COMP_BURSTS][a] += 1
                if gemm == GEMM_T3 and op == OP_UPD and (k == K_STORE or k == K_NMC):
                    nf = tracker_count(T, g, RQ[RQ_OWNER][req], 1, k == K_NMC)
                    if nf < 0:
                        cn[N_STATUS] = 3
                        cn[N_ERR] = req
                        return
                    if nf > 0:
                        _on_fire(cfg, cn, T, heap, seq, SS, g, nf, t)
                m = RQ[RQ_MSG][req]
                if m >= 0:
                    give = MS[MS_CREDIT][m] // MS[MS_LEFT][m]
                    MS[MS_CREDIT][m] -= give
                    MS[MS_LEFT][m] -= 1
                    src = MS[MS_SRC][m]
                    link_credit(L, src, give)
                    _try_link(cfg, L, lcfg, MS, heap, seq, src, t)
            idle = 0
            if c >= 0:
                nxt = t + tck
                mc_free[a] = nxt
            elif next_c < INF:
                nxt = next_c * tck
            else:
                nxt = INF
            if mc_pending(M, a) == 0 and mcfg[F_REFRESH] != 0 and c < 0:
                nr = M[M_NEXTREF][a * cfg[C_RANKS]]
                for r in range(1, cfg[C_RANKS]):
                    nr = min(nr, M[M_NEXTREF][a * cfg[C_RANKS] + r])
                nxt = max(nr * tck, t + tck)
                idle = 1
            if nxt < INF:
                mc_wake[a] = nxt
                _push(heap, seq, nxt, EV_MC, a, idle)
                cn[N_IDLE] += idle
        elif kind == EV_DONE:
            req = a
            RQ[RQ_DONE][req] = t
            cn[N_OUT] -= 1
            k = RQ[RQ_KIND][req]
            owner = RQ[RQ_OWNER][req]
            if k == K_FILL:
                P[P_FILL_LEFT][owner] -= 1
                if P[P_FILL_LEFT][owner] == 0:
                    _fill_complete(cfg, cn, RQ, M, P, dec, mc_wake, heap, seq, owner, t)
            elif k == K_STORE:
                if t > cn[T_GEMM_END]:
                    cn[T_GEMM_END] = t
            elif k == K_DMA:
                nge = cfg[C_NGPU] * cfg[C_NENG]
                d = owner // nge
                g = (owner % nge) // cfg[C_NENG]
                e = owner % cfg[C_NENG]
                if dma_read_done(D, g, e, d) == 1:
                    SS[SS_DMA_T][g, d, 1] = t
                    cn[N_DMA_DONE] += 1
                    _send(cfg, cn, L, lcfg, MS, heap, seq, g, MK_DMAUPD, d // tpc, d % tpc,
                          P[P_C_BYTES][d % tpc], t)
                _dma_kick(cfg, cn, RQ, M, D, L, dec, mc_wake, heap, seq, SS, g, t)
            elif k == K_CRD:
                CO[CO_RD_LEFT][owner] -= 1
                if CO[CO_RD_LEFT][owner] == 0:
                    _coll_reads_done(cfg, CO, heap, seq, owner, t)
            elif k == K_CWR:
                CO[CO_WR_LEFT][owner] -= 1
                if CO[CO_WR_LEFT][owner] == 0:
                    cn[N_COLL_LEFT] -= 1
                    if t > cn[T_COLL_END]:
                        cn[T_COLL_END] = t
            elif k == K_CIN:
                CO[CO_IN_LEFT][owner] -= 1
                if CO[CO_IN_LEFT][owner] == 0:
                    g = RQ[RQ_GPU][req]
                    if _coll_landed(cfg, cn, CO, owner, t):
                        _coll_dispatch(cfg, cn, RQ, M, P, CO, dec, mc_wake, heap, seq, g, t)
        elif kind == EV_KREADY:
            _try_compute(cfg, cn, RQ, M, P, dec, mc_wake, heap, seq, a, t)
        elif kind == EV_COMP:
            gs = a
            P[P_BUSY][gs] = 0
            P[P_NCOMP][gs] = b + 1
            if b + 1 < cfg[C_NK]:
                _try_compute(cfg, cn, RQ, M, P, dec, mc_wake, heap, seq, gs, t)
            else:
                # the WG is done: store its output tile
                g = gs // nslots
                w = P[P_SLOT_WG][gs]
                s = w // tpc
                l = P[P_WG_L][g, w]
                c = P[P_WG_CHUNK][g, w]
                P[P_STAGE_CNT][g, s] += 1
                if t > P[P_STAGE_T1][g, s]:
                    P[P_STAGE_T1][g, s] = t
                cn[N_WG_LEFT] -= 1
                if t > cn[T_COMP_END]:
                    cn[T_COMP_END] = t
                if t > cn[T_GEMM_END]:
                    cn[T_GEMM_END] = t
                if gemm == GEMM_BASE:
                    _emit(cfg, cn, RQ, M, dec, mc_wake, heap, seq, g, P[P_C_B0][c, l], P[P_C_B1][c, l], OP_WR,
                          CLS_COMPUTE, ST_GEMM, K_STORE, -1, -1, t)
                elif s == 0:
                    _send(cfg, cn, L, lcfg, MS, heap, seq, g, MK_REMOTE, 0, l, P[P_C_BYTES][l], t)
                else:
                    _emit(cfg, cn, RQ, M, dec, mc_wake, heap, seq, g, P[P_C_B0][c, l], P[P_C_B1][c, l], OP_UPD,
                          CLS_COMPUTE, ST_GEMM, K_STORE, s * tpc + l, -1, t)
                if s == 0 and P[P_STAGE_CNT][g, 0] == tpc and cfg[C_MCA] != 0:
                    _mca_measure(cfg, cn, M, P, SS, g, t)
                P[P_SLOT_WG][gs] = -1
                if P[P_NEXTWG][g] < cfg[C_NWG]:
                    _push(heap, seq, t + cfg[C_LAUNCH], EV_WGSTART, gs, P[P_NEXTWG][g])
                    P[P_NEXTWG][g] += 1
        elif kind == EV_WGSTART:
            _wg_start(cfg, cn, RQ, M, P, dec, mc_wake, heap, seq, a, b, t)
        elif kind == EV_LFREE:
            link_free(L, a, MS[MS_BYTES])
            _try_link(cfg, L, lcfg, MS, heap, seq, a, t)
            if gemm == GEMM_T3:
                _dma_kick(cfg, cn, RQ, M, D, L, dec, mc_wake, heap, seq, SS, a, t)
        elif kind == EV_LARRIVE:
            m = a
            cn[N_MSG_OUT] -= 1
            src = MS[MS_SRC][m]
            dst = (src + 1) % ngpu
            mk = MS[MS_KIND][m]
            step = MS[MS_STEP][m]
            idx = MS[MS_IDX][m]
            n = 0
            if mk == MK_REMOTE or mk == MK_DMAUPD:
                s1 = step + 1
                c = P[P_WG_CHUNK][dst, s1 * tpc]
                n = _emit(cfg, cn, RQ, M, dec, mc_wake, heap, seq, dst, P[P_C_B0][c, idx], P[P_C_B1][c, idx],
                          OP_UPD, CLS_COMM, ST_NMC, K_NMC, s1 * tpc + idx, m, t)
            else:
                op = (dst * tp + step + 1) * ns + idx
                lo, hi = _slice_range(cfg, idx)
                if cfg[C_NOMEM] == 0:
                    if mk == MK_RS:
                        rb = cfg[C_RECV_BASE] + (step + 1) * cfg[C_CHUNK_BYTES]
                        n = _emit(cfg, cn, RQ, M, dec, mc_wake, heap, seq, dst, (rb + lo) // 32, (rb + hi + 31) // 32,
                                  OP_WR, CLS_COMM, ST_RS, K_CIN, op, m, t)
                    elif mk == MK_RSNMC:
                        c = (step + 1 - dst) % tp
                        b0, b1 = _chunk_b(P, cfg, c, lo, hi)
                        n = _emit(cfg, cn, RQ, M, dec, mc_wake, heap, seq, dst, b0, b1, OP_UPD, CLS_COMM, ST_NMC, K_CIN,
                                  op, m, t)
                    else:
                        c = (step - dst) % tp
                        b0, b1 = _chunk_b(P, cfg, c, lo, hi)
                        n = _emit(cfg, cn, RQ, M, dec, mc_wake, heap, seq, dst, b0, b1, OP_WR, CLS_COMM, ST_AG, K_CIN,
                                  op, m, t)
                CO[CO_IN_LEFT][op] = n
                if n == 0:
                    if _coll_landed(cfg, cn, CO, op, t):
                        _coll_dispatch(cfg, cn, RQ, M, P, CO, dec, mc_wake, heap, seq, dst, t)
            MS[MS_LEFT][m] = n
            MS[MS_CREDIT][m] = MS[MS_BYTES][m]
            if n == 0:
                link_credit(L, src, MS[MS_BYTES][m])
                MS[MS_CREDIT][m] = 0
                _try_link(cfg, L, lcfg, MS, heap, seq, src, t)
        elif kind == EV_DMATRIG:
            dma_trigger(D, a, b)
            _dma_kick(cfg, cn, RQ, M, D, L, dec, mc_wake, heap, seq, SS, a, t)
        elif kind == EV_CADD:
            op = a
            g = op // (ns * tp)
            s = (op // ns) % tp
            j = op % ns
            CO[CO_FREE][g] += 1
            lo, hi = _slice_range(cfg, j)
            if coll == COLL_RS and s == tp - 1:
                n = 0
                if cfg[C_NOMEM] == 0:
                    c = (tp - 1 - g) % tp
                    b0, b1 = _chunk_b(P, cfg, c, lo, hi)
                    n = _emit(cfg, cn, RQ, M, dec, mc_wake, heap, seq, g, b0, b1, OP_WR, CLS_COMM, ST_RS, K_CWR, op, -1, t)
                CO[CO_WR_LEFT][op] = n
                if n == 0:
                    cn[N_COLL_LEFT] -= 1
                    if t > cn[T_COLL_END]:
                        cn[T_COLL_END] = t
            else:
                mk = MK_RS if coll == COLL_RS else (MK_RSNMC if coll == COLL_RS_NMC else MK_AG)
                _send(cfg, cn, L, lcfg, MS, heap, seq, g, mk, s, j, hi - lo, t)
            _coll_dispatch(cfg, cn, RQ, M, P, CO, dec, mc_wake, heap, seq, g, t)
        elif kind == EV_FILLNOCH:
            _fill_complete(cfg, cn, RQ, M, P, dec, mc_wake, heap, seq, a, t)
        elif kind == EV_SAMPLE:
            cn[N_IDLE] -= 1
            i = cn[N_NSAMP]
            smp = SS[SS_SAMPLES]
            if i < smp.shape[0]:
                smp[i, 0] = t
                smp[i, 1] = M[M_OCC][0, 0]
                smp[i, 2] = M[M_OCC][0, 1]
                smp[i, 3] = M[M_FLEN][0, 0]
                smp[i, 4] = M[M_FLEN][0, 1]
                cn[N_NSAMP] = i + 1
                _push(heap, seq, t + cfg[C_SAMPLE_PS], EV_SAMPLE, 0, 1)
                cn[N_IDLE] += 1
        if cn[N_OVF] != 0:
            cn[N_STATUS] = 1
            return
        if (cn[N_WG_LEFT] == 0 and cn[N_OUT] == 0 and cn[N_MSG_OUT] == 0 and cn[N_COLL_LEFT] == 0
                and cn[N_T3_LEFT] == 0 and cn[N_DMA_PEND] == 0):
            busy = False
            if gemm == GEMM_T3:
                for g in range(ngpu):
                    for e in range(cfg[C_NENG]):
                        if dma_busy(D, g, e):
                            busy = True
            if not busy:
                cn[T_END] = t
                cn[N_STATUS] = 0
                return
        if len(heap) == cn[N_IDLE]:
            cn[N_STATUS] = 2
            cn[T_END] = t
            return
    cn[N_STATUS] = 2
    cn[T_END] = t


@njit(cache=True)
def _mca_measure(cfg, cn, M, P, SS, g, t):
    """Stage 1 is done on GPU g: set its channels' communication admission threshold from the
    compute stream's DRAM bandwidth utilisation during stage 1."""
    chsim = cfg[C_CHSIM]
    cyc = max(t // cfg[C_TCK], 1)
    u = 0.0
    for ch in range(chsim):
        u += P[P_COMP_BURSTS][g * chsim + ch] * cfg[C_NBL] / cyc
    u /= chsim
    q = cfg[C_QCAP]
    if cfg[C_THR_FIXED] >= 0:
        thr = cfg[C_THR_FIXED]
    else:
        thr = int(round(q * (1.0 - min(u, 1.0))))
    thr = max(cfg[C_THR_MIN], min(q, thr))
    for ch in range(chsim):
        M[M_THR][g * chsim + ch] = thr
    SS[SS_THR][g, 0] = thr
    SS[SS_THR][g, 1] = int(u * 1000000)
    SS[SS_THR][g, 2] = t
    cn[T_STAGE0_MEAS] = t
