"""The request-level memory-controller loop (FR-FCFS or FCFS, open or closed page, write
draining with watermarks, all-bank refresh) as one numba kernel over numpy arrays.

Run with NUMBA_DISABLE_JIT=1 the same source executes as plain Python: that is the twin the
equivalence tests compare against.

Per channel and tick at most one command issues, chosen in this order (as Ramulator 2's
generic controller does): (1) the column command of the oldest request whose row was activated
for it; (2) refresh (PREA, then REFab) when due, which blocks (3) the read or write queue
(by write mode): ready row hits first, then other ready commands, oldest first (`frfcfs`), the
oldest ready command whatever it is (`ready_oldest`, Ramulator 2's FRFCFS), or only the oldest
request (`fcfs`). A precharge
that would close a row an activated request is waiting for is never issued.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from hwsim.dram_pim.commands import N_CMDS, Cmd
from hwsim.dram_pim.device import (H_BANKS_PER_RANK, H_CHANNELS, H_NBANKS, H_OPEN, H_RANKS, bank_state_ok,
                                   earliest, issue)
from hwsim.dram_pim.refresh import due_refresh

# cfg indices
(C_FCFS, C_CLOSED, C_RQ, C_WQ, C_REFRESH, C_NREFI, C_RD_LAT, C_WR_LAT, C_OFFERED, C_RECORD, C_FE_RATIO,
 C_MEM_RATIO, C_EXHAUSTIVE) = range(13)
N_CFG = 13
# cfg[C_FCFS]: the request scheduler
SCHED_FRFCFS, SCHED_FCFS, SCHED_READY_OLDEST = 0, 1, 2
# cfg[C_CLOSED]: the page policy
PAGE_OPEN, PAGE_CLOSED, PAGE_CLOSED_ALWAYS = 0, 1, 2
# counter indices (after the per-command counts)
INF = np.int64(1) << 62
HIT, MISS, CONFLICT = 0, 1, 2

ACT, PRE, RD, WR, RDA, WRA = (int(Cmd.ACT), int(Cmd.PRE), int(Cmd.RD), int(Cmd.WR), int(Cmd.RDA),
                              int(Cmd.WRA))


AFTER_CMDS = np.array([ACT, RD, WR], dtype=np.int64)   # a bank's next command: after PRE [0], after ACT [1:3]


@njit(cache=True, inline="always")
def _pend(pend, n_pend, seen, stamp, bank, c):
    """Note (bank, command c) as one to re-time after this decision's issue (once per decision:
    `seen` holds the decision's `stamp` for pairs already noted); returns the new count."""
    k = bank * N_CMDS + c
    if seen[k] == stamp:
        return n_pend
    seen[k] = stamp
    pend[n_pend, 0] = bank
    pend[n_pend, 1] = c
    return n_pend + 1


@njit(cache=True)
def _remove(q, qlen, ch, pos):
    for k in range(pos, qlen[ch] - 1):
        q[ch, k] = q[ch, k + 1]
    qlen[ch] -= 1


@njit(cache=True)
def _has_other_hit(q, qlen, ch, skip, bank, row, req_bank, req_row):
    for k in range(qlen[ch]):
        j = q[ch, k]
        if j != skip and req_bank[j] == bank and req_row[j] == row:
            return True
    return False


class RequestState(NamedTuple):
    """The controller's working arrays, allocated in Python (each numpy allocation inside the kernel
    is a numba overload compiled on a cold start, about 0.3-0.5 s apiece)."""

    rq: np.ndarray           # [channel, slot] request index, read queue (age order)
    wq: np.ndarray           # [channel, slot] write queue
    rq_len: np.ndarray       # per channel
    wq_len: np.ndarray
    write_mode: np.ndarray   # per channel, bool
    next_ref: np.ndarray     # per rank: tick the next refresh falls due
    req_accept: np.ndarray   # per request: tick it entered its queue (-1: not yet)
    req_done: np.ndarray     # per request: tick its data transfer ends
    req_class: np.ndarray    # per request: HIT, MISS or CONFLICT (int8, -1: unclassified)
    activated: np.ndarray    # per request, bool: its ACT issued, column command pending
    n_activated: np.ndarray  # per bank: requests awaiting their column command
    q_activated: np.ndarray  # [read 0 / write 1, channel]: the same, per queue
    counts: np.ndarray       # per command: how many issued
    pend: np.ndarray         # [k, (bank, command)]: pairs to re-time after a decision's issue
    pend_seen: np.ndarray    # per (bank * N_CMDS + command): the decision stamp that noted it


def request_state(st: np.ndarray, n: int, cfg: np.ndarray) -> RequestState:
    """Fresh working arrays for `n` requests on device state `st` with config `cfg`."""
    n_ch, ranks, n_banks = int(st[H_CHANNELS]), int(st[H_RANKS]), int(st[H_NBANKS])
    return RequestState(
        rq=np.zeros((n_ch, cfg[C_RQ]), dtype=np.int64), wq=np.zeros((n_ch, cfg[C_WQ]), dtype=np.int64),
        rq_len=np.zeros(n_ch, dtype=np.int64), wq_len=np.zeros(n_ch, dtype=np.int64),
        write_mode=np.zeros(n_ch, dtype=np.bool_), next_ref=np.full(n_ch * ranks, cfg[C_NREFI], dtype=np.int64),
        req_accept=np.full(n, -1, dtype=np.int64), req_done=np.full(n, -1, dtype=np.int64),
        req_class=np.full(n, -1, dtype=np.int8), activated=np.zeros(n, dtype=np.bool_),
        n_activated=np.zeros(n_banks, dtype=np.int64), q_activated=np.zeros((2, n_ch), dtype=np.int64),
        counts=np.zeros(16, dtype=np.int64), pend=np.zeros((cfg[C_RQ] + cfg[C_WQ], 2), dtype=np.int64),
        pend_seen=np.full(n_banks * N_CMDS, -1, dtype=np.int64))


@njit(cache=True)
def simulate_requests(st, req_avail, req_write, req_channel, req_bank, req_row, req_col, cfg, hi, lo,
                      log_tick, log_cmd, log_bank, log_row, log_col, work):
    """Serve every request, `work` fresh from `request_state`; return (req_accept, req_done,
    req_class, cmd_counts, n_logged, status).

    status: 0 ok, 1 command log overflow (rerun with a larger log), 2 deadlock (a bug)."""
    open_row = st[st[H_OPEN]:st[H_OPEN] + st[H_NBANKS]]  # a view: updated by issue()
    n = req_avail.shape[0]
    n_ch = st[H_CHANNELS]
    bpr = st[H_BANKS_PER_RANK]
    ranks = st[H_RANKS]
    rq_cap, wq_cap = cfg[C_RQ], cfg[C_WQ]
    rq, wq, rq_len, wq_len, write_mode, next_ref = (work.rq, work.wq, work.rq_len, work.wq_len, work.write_mode,
                                                    work.next_ref)
    req_accept, req_done, req_class, activated, n_activated, counts = (
        work.req_accept, work.req_done, work.req_class, work.activated, work.n_activated, work.counts)
    q_activated, pend, pend_seen = work.q_activated, work.pend, work.pend_seen
    stamp = np.int64(0)
    log_cap = log_tick.shape[0]
    n_log = 0
    status = 0
    t = np.int64(0)
    next_req = 0
    last_accept = np.int64(-1)
    slot = np.int64(0)  # the offered front end's next slot
    done = 0
    while done < n:
        next_t = INF
        # Admit requests in trace order while their channel's queue has room. DRAMSim3 front end:
        # at most one per cycle, none before its trace cycle. Offered (Ramulator 2) front end: one
        # offer per front-end tick, slot j falling on memory tick ceil(j * M / F) (clock ratios F
        # front end, M memory; F = M: one per cycle); a refused offer is retried at the next slot,
        # so a request admitted at tick t takes the first slot falling on t or later.
        fe, mem = cfg[C_FE_RATIO], cfg[C_MEM_RATIO]
        while next_req < n:
            i = next_req
            if cfg[C_OFFERED]:
                if t > 0:
                    first = ((t - 1) * fe) // mem + 1  # the first slot falling on tick t or later
                    if first > slot:
                        slot = first
                avail = (slot * mem + fe - 1) // fe
            else:
                avail = last_accept + 1
                if req_avail[i] > avail:
                    avail = req_avail[i]
            ch = req_channel[i]
            full = wq_len[ch] >= wq_cap if req_write[i] else rq_len[ch] >= rq_cap
            if avail > t:
                # A full queue frees only when a request completes, and every issue that completes
                # one is followed by a decision at the next tick: no wake-up is needed for it.
                if not full or cfg[C_EXHAUSTIVE]:
                    next_t = min(next_t, avail)
                break
            if full:
                break
            if req_write[i]:
                wq[ch, wq_len[ch]] = i
                wq_len[ch] += 1
            else:
                rq[ch, rq_len[ch]] = i
                rq_len[ch] += 1
            req_accept[i] = t
            last_accept = t
            next_req += 1
            slot += 1
        issued_any = False
        # After an issue the next decision is normally at t + 1; `skip_to` is a lower bound on the
        # next tick at which anything can issue when that is provable (see `may_skip` below).
        skip_to = INF
        step = cfg[C_EXHAUSTIVE] != 0   # exhaustive: no skipping (the reference the tests compare with)
        for ch in range(n_ch):
            sel = -1
            sel_cmd = -1
            sel_bank = -1
            # (bank, command) of requests that were ready, or were not evaluated: `pend[:n_pend]`.
            n_pend = 0
            stamp += 1
            cut_short = False
            # (1) column commands of activated requests, oldest first.
            for which in range(2):
                q = rq if which == 0 else wq
                qlen = rq_len if which == 0 else wq_len
                left = q_activated[which, ch]  # stop the scan once every activated request is seen
                for k in range(qlen[ch]):
                    if left == 0:
                        break
                    i = q[ch, k]
                    if not activated[i]:
                        continue
                    left -= 1
                    c = WR if req_write[i] else RD
                    e = earliest(st, c, req_bank[i])
                    if e <= t:
                        n_pend = _pend(pend, n_pend, pend_seen, stamp, req_bank[i], c)
                        if sel == -1 or i < sel:
                            sel, sel_cmd, sel_bank = i, c, req_bank[i]
                    elif e < next_t:
                        next_t = e
            refresh_blocks = False
            if sel == -1 and cfg[C_REFRESH]:
                # (2) refresh: PREA while any bank is open, then REFab.
                c, b, refresh_blocks, e = due_refresh(st, open_row, n_activated, next_ref, ch, ranks, bpr, t,
                                                      cfg[C_NREFI])
                if c != -1:
                    sel, sel_cmd, sel_bank = -2, c, b
                next_t = min(next_t, e)
            if sel == -1 and not refresh_blocks:
                # (3) FR-FCFS over the read or the write queue.
                if not write_mode[ch]:
                    if wq_len[ch] > hi * wq_cap or rq_len[ch] == 0:
                        write_mode[ch] = True
                elif wq_len[ch] < lo * wq_cap and rq_len[ch] != 0:
                    write_mode[ch] = False
                q = wq if write_mode[ch] else rq
                qlen = wq_len if write_mode[ch] else rq_len
                sel_hit = False
                last_bank, last_c, last_e = -1, -1, 0  # reuse earliest() for runs of one bank and command
                limit = min(qlen[ch], 1) if cfg[C_FCFS] == SCHED_FCFS else qlen[ch]
                for k in range(limit):
                    i = q[ch, k]
                    if activated[i]:
                        continue
                    bank = req_bank[i]
                    if open_row[bank] == req_row[i]:
                        c = WR if req_write[i] else RD
                    elif sel != -1:
                        # An older ready command is chosen; only a ready hit could beat this one.
                        if open_row[bank] == -1:
                            n_pend = _pend(pend, n_pend, pend_seen, stamp, bank, ACT)
                        elif n_activated[bank] == 0:
                            n_pend = _pend(pend, n_pend, pend_seen, stamp, bank, PRE)
                        continue
                    elif open_row[bank] == -1:
                        c = ACT
                    else:
                        c = PRE
                        if n_activated[bank] > 0:
                            continue
                    if bank != last_bank or c != last_c:
                        last_bank, last_c, last_e = bank, c, earliest(st, c, bank)
                    e = last_e
                    if e > t:
                        if e < next_t:
                            next_t = e
                        continue
                    is_hit = c == RD or c == WR
                    n_pend = _pend(pend, n_pend, pend_seen, stamp, bank, c)
                    if sel == -1 or (is_hit and not sel_hit):
                        sel, sel_cmd, sel_bank, sel_hit = i, c, bank, is_hit
                        if is_hit or cfg[C_FCFS] == SCHED_READY_OLDEST:
                            cut_short = k < limit - 1
                            break  # the oldest ready hit (or, ready_oldest: the oldest ready): nothing ranks higher
            if sel == -1:
                continue
            # Issue the chosen command.
            c = sel_cmd
            row = req_row[sel] if sel >= 0 else -1
            col = req_col[sel] if sel >= 0 else -1
            if sel >= 0 and (c == RD or c == WR) and cfg[C_CLOSED]:
                if cfg[C_CLOSED] == PAGE_CLOSED_ALWAYS:
                    # Every access auto-precharges, except that it never closes the row under another
                    # request whose ACT was issued for it (that one's column command is still due).
                    auto = n_activated[sel_bank] - (1 if activated[sel] else 0) == 0
                else:
                    auto = not (_has_other_hit(rq, rq_len, ch, sel, sel_bank, row, req_bank, req_row)
                                or _has_other_hit(wq, wq_len, ch, sel, sel_bank, row, req_bank, req_row))
                if auto:
                    c = RDA if c == RD else WRA
            if not bank_state_ok(st, c, sel_bank, row):
                status = 2
                return req_accept, req_done, req_class, counts, n_log, status
            issue(st, c, sel_bank, row, t)
            issued_any = True
            # May the decision at t + 1 be skipped? Issuing only raises ready ticks, so every earliest
            # tick computed above is still a lower bound, except for requests to the bank just used
            # (their command may change) and those that were ready or not evaluated. An ACT or PRE
            # completes no request (queue lengths, write mode and admission are as before), so
            # nothing issues before the smallest of: those bounds; the earliest tick, now, of each
            # (bank, command) noted as ready or not evaluated on another bank (their commands are
            # unchanged: only the bank just used changed state); and that bank's next possible
            # command: ACT after a PRE; after an ACT, the activated request's RD or WR, or either if
            # another queued request hits the new row (a PRE would close the row an activated
            # request waits for, and is never chosen).
            may_skip = sel >= 0 and (c == ACT or c == PRE) and not cut_short
            if may_skip:
                for p in range(n_pend):
                    if pend[p, 0] != sel_bank:
                        e = earliest(st, pend[p, 1], pend[p, 0])
                        if e < skip_to:
                            skip_to = e
                if c == PRE:
                    after_lo, after_hi = 0, 1
                else:
                    # A queued hit of the activated request's own kind has its command: only a hit
                    # in the other queue adds the other column command.
                    after_lo = 2 if req_write[sel] else 1
                    after_hi = after_lo + 1
                    if (_has_other_hit(rq, rq_len, ch, sel, sel_bank, row, req_bank, req_row) if req_write[sel]
                            else _has_other_hit(wq, wq_len, ch, sel, sel_bank, row, req_bank, req_row)):
                        after_lo, after_hi = 1, 3
                for cc in range(after_lo, after_hi):
                    e = earliest(st, AFTER_CMDS[cc], sel_bank)
                    if e < skip_to:
                        skip_to = e
            else:
                step = True
            counts[c] += 1
            if n_log < log_cap:
                log_tick[n_log] = t
                log_cmd[n_log] = c
                log_bank[n_log] = sel_bank
                log_row[n_log] = row
                log_col[n_log] = col
            elif cfg[C_RECORD]:
                status = 1
            n_log += 1
            if sel >= 0:
                if req_class[sel] < 0:
                    req_class[sel] = HIT if (c != ACT and c != PRE) else (MISS if c == ACT else CONFLICT)
                if c == ACT:
                    activated[sel] = True
                    n_activated[sel_bank] += 1
                    q_activated[1 if req_write[sel] else 0, ch] += 1
                elif c != PRE:
                    if activated[sel]:
                        activated[sel] = False
                        n_activated[sel_bank] -= 1
                        q_activated[1 if req_write[sel] else 0, ch] -= 1
                    req_done[sel] = t + (cfg[C_WR_LAT] if req_write[sel] else cfg[C_RD_LAT])
                    done += 1
                    q = wq if req_write[sel] else rq
                    qlen = wq_len if req_write[sel] else rq_len
                    for k in range(qlen[ch]):
                        if q[ch, k] == sel:
                            _remove(q, qlen, ch, k)
                            break
        if issued_any:
            t = t + 1 if step else max(t + 1, min(next_t, skip_to))
        elif next_t >= INF:
            status = 2
            return req_accept, req_done, req_class, counts, n_log, status
        else:
            t = max(next_t, t + 1)
    return req_accept, req_done, req_class, counts, n_log, status
