"""T3 memory-controller front end: two request classes (compute, communication) sharing one DRAM
channel, with FR-FCFS or MCA arbitration, as numba functions over numpy arrays.

Every command goes through `hwsim.dram_pim.device.earliest/issue`, the same timing rules as the
rest of hwsim, and every issued command can be logged for the independent protocol checker.

Structure per channel (modelled on `hwsim.dram_pim.scheduler`):

* two upstream FIFOs (one per class, linked lists over request ids) hold requests that have
  left the L2/DMA/link but are not yet in the DRAM queue;
* one DRAM request queue of `queue_entries` (unified reads/writes/updates, as Accel-Sim's
  FR-FCFS queue) from which commands are scheduled;
* admission FIFO -> queue each time the channel is serviced:
  - FR-FCFS: oldest request first across both classes (arrival order);
  - MCA (T3 paper section 4.5): compute first; a communication request enters only while the
    queue holds fewer than `threshold` requests, unless it has waited `starvation` ps;
* command selection each cycle: (1) column command of an activated request, oldest first;
  (2) refresh when due (PREA then REFab), which blocks (3); (3) FR-FCFS: ready row hits first,
  then other ready commands, oldest first.  Under MCA, (3) ranks compute requests (and starving
  communication requests) above communication ones before applying the same rule.

Requests carry an op: RD, WR or UPD (near-memory read-modify-write update; `Cmd.UPD`).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from hwsim.dram_pim.commands import Cmd
from hwsim.dram_pim.device import H_BANKS_PER_RANK, H_NBANKS, H_OPEN, H_RANKS, bank_state_ok, earliest, issue
from hwsim.dram_pim.refresh import due_refresh

OP_RD, OP_WR, OP_UPD = 0, 1, 2
OP_NAMES = ("RD", "WR", "UPD")
CLS_COMPUTE, CLS_COMM = 0, 1
POL_FRFCFS, POL_MCA = 0, 1

ACT, PRE, RD, WR, UPD = int(Cmd.ACT), int(Cmd.PRE), int(Cmd.RD), int(Cmd.WR), int(Cmd.UPD)
INF = np.int64(1) << 62

# mcfg (int64) indices
F_POLICY, F_QCAP, F_REFRESH, F_NREFI, F_LAT_RD, F_LAT_WR, F_LAT_UPD, F_TCK, F_STARVE, F_CLASS_PRIO = range(10)
N_MCFG = 10

# MC state tuple indices
(M_Q, M_QLEN, M_FHEAD, M_FTAIL, M_FLEN, M_NEXT, M_ACT, M_BANK_ACT, M_NEXTREF, M_THR,
 M_OCC, M_OCC_INT, M_OCC_LAST, M_OCC_MAX, M_COUNTS, M_LOG, M_NLOG) = range(17)
# request tuple indices
R_BANK, R_ROW, R_COL, R_OP, R_CLS, R_ARRIVE = range(6)
# log columns
L_TICK, L_CMD, L_BANK, L_ROW, L_COL, L_REQ = range(6)


def make_mc_state(n_channels: int, n_banks: int, ranks_total: int, qcap: int, n_req_cap: int,
                  nrefi: int, log_cap: int = 0):
    """Fresh MC state arrays (see the M_* indices)."""
    return (
        np.zeros((n_channels, qcap), dtype=np.int64),        # M_Q: request ids, admission order
        np.zeros(n_channels, dtype=np.int64),                # M_QLEN
        np.full((n_channels, 2), -1, dtype=np.int64),        # M_FHEAD per class
        np.full((n_channels, 2), -1, dtype=np.int64),        # M_FTAIL
        np.zeros((n_channels, 2), dtype=np.int64),           # M_FLEN
        np.full(n_req_cap, -1, dtype=np.int64),              # M_NEXT (FIFO links)
        np.zeros(n_req_cap, dtype=np.bool_),                 # M_ACT: row activated for this request
        np.zeros(n_banks, dtype=np.int64),                   # M_BANK_ACT: activated requests per bank
        np.full(ranks_total, nrefi, dtype=np.int64),         # M_NEXTREF (cycles)
        np.full(n_channels, qcap, dtype=np.int64),           # M_THR (MCA admission threshold)
        np.zeros((n_channels, 2), dtype=np.int64),           # M_OCC: queue occupancy per class
        np.zeros((n_channels, 2), dtype=np.float64),         # M_OCC_INT: time integral (ps x entries)
        np.zeros(n_channels, dtype=np.int64),                # M_OCC_LAST: time of last change (ps)
        np.zeros((n_channels, 2), dtype=np.int64),           # M_OCC_MAX
        np.zeros((n_channels, 16), dtype=np.int64),          # M_COUNTS: commands issued per Cmd
        np.zeros((max(log_cap, 1), 6), dtype=np.int64),      # M_LOG
        np.zeros(2, dtype=np.int64),                         # M_NLOG: [n logged, capacity used flag]
    )


@njit(cache=True)
def _occ_change(M, ch, cls, delta, t_ps):
    occ, integ, last, mx = M[M_OCC], M[M_OCC_INT], M[M_OCC_LAST], M[M_OCC_MAX]
    dt = t_ps - last[ch]
    if dt > 0:
        integ[ch, 0] += occ[ch, 0] * dt
        integ[ch, 1] += occ[ch, 1] * dt
        last[ch] = t_ps
    occ[ch, cls] += delta
    if occ[ch, cls] > mx[ch, cls]:
        mx[ch, cls] = occ[ch, cls]


@njit(cache=True)
def mc_enqueue(M, R, req, ch):
    """Append request `req` to its class FIFO of channel `ch`."""
    cls = R[R_CLS][req]
    head, tail, flen, nxt = M[M_FHEAD], M[M_FTAIL], M[M_FLEN], M[M_NEXT]
    nxt[req] = -1
    if tail[ch, cls] < 0:
        head[ch, cls] = req
    else:
        nxt[tail[ch, cls]] = req
    tail[ch, cls] = req
    flen[ch, cls] += 1


@njit(cache=True)
def _pop(M, ch, cls):
    head, tail, flen, nxt = M[M_FHEAD], M[M_FTAIL], M[M_FLEN], M[M_NEXT]
    r = head[ch, cls]
    head[ch, cls] = nxt[r]
    if head[ch, cls] < 0:
        tail[ch, cls] = -1
    flen[ch, cls] -= 1
    return r


@njit(cache=True)
def mc_pending(M, ch):
    """Requests of channel `ch` in its queue or FIFOs."""
    return M[M_QLEN][ch] + M[M_FLEN][ch, 0] + M[M_FLEN][ch, 1]


@njit(cache=True)
def _admit(M, R, mcfg, ch, t_ps):
    """Move requests from the class FIFOs into the DRAM queue. Returns the earliest future time (ps)
    at which a waiting communication request starves (MCA), or INF."""
    q, qlen, head = M[M_Q], M[M_QLEN], M[M_FHEAD]
    arrive, cls_of = R[R_ARRIVE], R[R_CLS]
    qcap = mcfg[F_QCAP]
    wake = INF
    while qlen[ch] < qcap:
        h0 = head[ch, 0]
        h1 = head[ch, 1]
        if h0 < 0 and h1 < 0:
            break
        take = -1
        if mcfg[F_POLICY] == POL_FRFCFS:
            if h1 < 0 or (h0 >= 0 and (arrive[h0] < arrive[h1] or (arrive[h0] == arrive[h1] and h0 < h1))):
                take = 0
            else:
                take = 1
        else:  # MCA
            starving = h1 >= 0 and t_ps - arrive[h1] >= mcfg[F_STARVE]
            if starving:
                take = 1
            elif h0 >= 0:
                take = 0
            elif qlen[ch] < M[M_THR][ch]:
                take = 1
            else:
                wake = arrive[h1] + mcfg[F_STARVE]
                break
        r = _pop(M, ch, take)
        q[ch, qlen[ch]] = r
        qlen[ch] += 1
        _occ_change(M, ch, cls_of[r], 1, t_ps)
    return wake


@njit(cache=True)
def _col_cmd(op):
    if op == OP_RD:
        return RD
    if op == OP_WR:
        return WR
    return UPD


@njit(cache=True)
def mc_service(st, M, R, mcfg, ch, cyc):
    """Service channel `ch` at command-clock cycle `cyc`: admit, then issue at most one command.

    Returns (req, cmd, next_cyc): `req` >= 0 is the request whose column command was issued
    (it is then out of the queue), -1 otherwise; `cmd` the command issued (-1: none);
    `next_cyc` the earliest cycle at which something may be issued if nothing was (INF: nothing
    queued)."""
    tck = mcfg[F_TCK]
    t_ps = cyc * tck
    starve_wake = _admit(M, R, mcfg, ch, t_ps)
    open_row = st[st[H_OPEN]:st[H_OPEN] + st[H_NBANKS]]  # a view: updated by issue()
    bpr = st[H_BANKS_PER_RANK]
    ranks = st[H_RANKS]
    q, qlen, activated = M[M_Q], M[M_QLEN], M[M_ACT]
    bank_act = M[M_BANK_ACT]
    r_bank, r_row, r_op, r_cls, r_arrive = R[R_BANK], R[R_ROW], R[R_OP], R[R_CLS], R[R_ARRIVE]
    next_c = INF
    if starve_wake < INF:
        next_c = (starve_wake + tck - 1) // tck
    sel = -1
    sel_pos = -1
    sel_cmd = -1
    sel_bank = -1
    n = qlen[ch]
    # (1) column commands of activated requests, oldest first.
    for k in range(n):
        i = q[ch, k]
        if not activated[i]:
            continue
        c = _col_cmd(r_op[i])
        e = earliest(st, c, r_bank[i])
        if e <= cyc:
            sel, sel_pos, sel_cmd, sel_bank = i, k, c, r_bank[i]
            break
        if e < next_c:
            next_c = e
    refresh_blocks = False
    if sel == -1 and mcfg[F_REFRESH] != 0:
        # (2) refresh: PREA while a bank is open (and no activated request waits on it), then REFab.
        c, b, refresh_blocks, e = due_refresh(st, open_row, bank_act, M[M_NEXTREF], ch, ranks, bpr, cyc,
                                              mcfg[F_NREFI])
        if c != -1:
            sel, sel_cmd, sel_bank = -2, c, b
        if e < next_c:
            next_c = e
    if sel == -1 and not refresh_blocks:
        # (3) FR-FCFS (MCA: class priority first).
        mca = mcfg[F_POLICY] == POL_MCA and mcfg[F_CLASS_PRIO] != 0
        best_prio = 99
        best_hit = False
        t_now = t_ps
        for k in range(n):
            i = q[ch, k]
            if activated[i]:
                continue
            prio = 0
            if mca and r_cls[i] == CLS_COMM and t_now - r_arrive[i] < mcfg[F_STARVE]:
                prio = 1
            if sel != -1:
                # Only a better-ranked candidate can replace the current choice.
                if prio > best_prio:
                    continue
                if prio == best_prio and best_hit:
                    continue
            bank = r_bank[i]
            orow = open_row[bank]
            if orow == r_row[i]:
                c = _col_cmd(r_op[i])
            elif orow == -1:
                c = ACT
            else:
                c = PRE
                if bank_act[bank] > 0:
                    continue
            is_hit = orow == r_row[i]
            if sel != -1 and prio == best_prio and not is_hit:
                continue  # an older non-hit of the same rank already chosen
            e = earliest(st, c, bank)
            if e > cyc:
                if e < next_c:
                    next_c = e
                continue
            sel, sel_pos, sel_cmd, sel_bank = i, k, c, bank
            best_prio, best_hit = prio, is_hit
            if is_hit and prio == 0:
                break
    if sel == -1:
        return -1, -1, next_c
    c = sel_cmd
    row = r_row[sel] if sel >= 0 else -1
    col = R[R_COL][sel] if sel >= 0 else -1
    if not bank_state_ok(st, c, sel_bank, row):
        return -3, c, INF  # internal error: the caller reports it
    issue(st, c, sel_bank, row, cyc)
    M[M_COUNTS][ch, c] += 1
    log = M[M_LOG]
    nlog = M[M_NLOG]
    if nlog[0] < log.shape[0] and log.shape[0] > 1:
        j = nlog[0]
        log[j, L_TICK] = cyc
        log[j, L_CMD] = c
        log[j, L_BANK] = sel_bank
        log[j, L_ROW] = row
        log[j, L_COL] = col
        log[j, L_REQ] = sel
    elif log.shape[0] > 1:
        nlog[1] = 1  # overflow
    nlog[0] += 1
    if sel < 0:
        return -1, c, INF
    if c == ACT:
        activated[sel] = True
        bank_act[sel_bank] += 1
        return -1, c, INF
    if c == PRE:
        return -1, c, INF
    # Column command: the request leaves the queue.
    if activated[sel]:
        activated[sel] = False
        bank_act[sel_bank] -= 1
    for k in range(sel_pos, n - 1):
        q[ch, k] = q[ch, k + 1]
    qlen[ch] -= 1
    _occ_change(M, ch, r_cls[sel], -1, t_ps)
    return sel, c, INF


@njit(cache=True)
def op_latency(mcfg, op):
    """Cycles from a column command to its data being complete."""
    if op == OP_RD:
        return mcfg[F_LAT_RD]
    if op == OP_WR:
        return mcfg[F_LAT_WR]
    return mcfg[F_LAT_UPD]


def make_mcfg(dspec, *, policy: int, qcap: int, starvation_ps: int, class_priority: bool = True,
              refresh: bool | None = None) -> np.ndarray:
    t = dspec.timing
    cfg = np.zeros(N_MCFG, dtype=np.int64)
    cfg[F_POLICY] = policy
    cfg[F_QCAP] = qcap
    cfg[F_REFRESH] = (dspec.controller.refresh == "all_bank") if refresh is None else bool(refresh)
    cfg[F_NREFI] = t.nREFI
    cfg[F_LAT_RD] = t.nCL + t.nBL
    cfg[F_LAT_WR] = t.nCWL + t.nBL
    cfg[F_LAT_UPD] = t.nCWL + t.nBL + t.nRMW
    cfg[F_TCK] = t.tCK_ps
    cfg[F_STARVE] = starvation_ps
    cfg[F_CLASS_PRIO] = int(class_priority)
    return cfg


# ---------------------------------------------------------------------------------------------
# A standalone driver: a timed two-class request stream through the front end (tests, studies).
# ---------------------------------------------------------------------------------------------
@njit(cache=True)
def run_stream(st, M, R, mcfg, req_channel, n_channels):
    """Serve requests that arrive at R[R_ARRIVE] (ps, non-decreasing); return their done ticks
    (ps; -1 if never) and a status (0 ok, 2 stuck)."""
    n = req_channel.shape[0]
    tck = mcfg[F_TCK]
    done = np.full(n, -1, dtype=np.int64)
    nxt = 0
    cyc = np.int64(0)
    n_done = 0
    wake = np.full(n_channels, np.int64(0), dtype=np.int64)
    while n_done < n:
        while nxt < n and R[R_ARRIVE][nxt] <= cyc * tck:
            mc_enqueue(M, R, nxt, req_channel[nxt])
            wake[req_channel[nxt]] = min(wake[req_channel[nxt]], cyc)
            nxt += 1
        best = INF
        for ch in range(n_channels):
            if wake[ch] > cyc:
                if wake[ch] < best:
                    best = wake[ch]
                continue
            if mc_pending(M, ch) == 0:
                wake[ch] = INF
                continue
            req, c, nc = mc_service(st, M, R, mcfg, ch, cyc)
            if req == -3:
                return done, 3
            if req >= 0:
                done[req] = (cyc + op_latency(mcfg, R[R_OP][req])) * tck
                n_done += 1
            if c >= 0:
                wake[ch] = cyc + 1
            else:
                wake[ch] = nc
            if wake[ch] < best:
                best = wake[ch]
        if nxt < n:
            a = (R[R_ARRIVE][nxt] + tck - 1) // tck
            if a < best:
                best = a
        if best >= INF:
            return done, 2
        cyc = max(best, cyc + 1) if best <= cyc else best
    return done, 0
