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

A decision does not scan the queues. Requests not yet activated also sit in per-bank lists (age
order, with a count of those that hit the open row, and a per-channel total of the counts), so
step (3) times at most the oldest hit and the oldest other request of each bank, and skips the
hit pass when the channel has none; activated requests sit in a per-channel list for step (1).
An earliest tick is its rank's floor (the channel- and rank-level rules, kept per rank and command
and recomputed after each issue that may raise it: `_earliest`) and two bank-level loads on top;
each list keeps a lower bound on the earliest tick of its oldest request that is not a hit, so a
bank that cannot issue before the decision's next tick is passed over with one compare. The
decisions made are those of a scan of every queued request in age order
(tests/reference_scheduler.py; docs/performance.md §3.1).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from hwsim.dram_pim.commands import N_CMDS, ROW_KEEP, Cmd
from hwsim.dram_pim.device import (FLOOR_CMDS, H_ANC, H_BANKS_PER_CHANNEL, H_BANKS_PER_RANK, H_CHANNELS, H_FLOOR,
                                   H_META, H_NBANKS, H_OPEN, H_RANKS, META_WIDTH, bank_state_ok, earliest_from_floor,
                                   issue, rank_floor)
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
FLOOR_CMD_LIST = np.array([int(c) for c in FLOOR_CMDS], dtype=np.int64)


@njit(cache=True, inline="always")
def _pend(pend, n_pend, stamp, bank, c):
    """Note (bank, command c) as one to re-time after this decision's issue, once per decision;
    returns the new count. `pend` (one array: see _earliest) holds per (bank, command) the `stamp` of
    the last decision that noted it, and the noted (bank, command) pairs from its end backwards."""
    k = bank * N_CMDS + c
    if pend[k] == stamp:
        return n_pend
    pend[k] = stamp
    p = pend.shape[0] - 2 * (n_pend + 1)  # pairs fill the array from its end
    pend[p] = bank
    pend[p + 1] = c
    return n_pend + 1


@njit(cache=True, inline="always")
def _take_out(q, w, ch, n, i):
    """Remove request `i` from `q[w, ch, :n]`, keeping the others' order."""
    k = 0
    while q[w, ch, k] != i:
        k += 1
    for m in range(k, n - 1):
        q[w, ch, m] = q[w, ch, m + 1]


@njit(cache=True, inline="always")
def _earliest(st, f0, c, bank):
    """`earliest(st, c, bank)` of a command of device.FLOOR_CMDS: the floor of the bank's rank,
    kept at `f0` + rank node * N_CMDS + c (`_set_floor`), then the bank group's and the bank's
    ready ticks. Exact, with no cache to trust: six loads (three of them the bank's ancestors)
    where `earliest()` reads eight and walks the window rules.

    The helpers take the device state as their only array: numba's inlined helpers that take more
    than one array, or wrap a loop in branches, pay atomic reference counting on every call."""
    return earliest_from_floor(st, c, bank, st[f0 + st[st[H_ANC] + bank * 4 + 1] * N_CMDS + c])


@njit(cache=True, inline="always")
def _set_floor(st, f0, first_bank, c):
    """Recompute the floor of command `c` for the rank whose first bank is `first_bank`."""
    st[f0 + st[st[H_ANC] + first_bank * 4 + 1] * N_CMDS + c] = rank_floor(st, c, first_bank)


@njit(cache=True)
def _set_all_floors(st, f0, n_ranks, bpr):
    """Compute every rank's floors, at the start of a run. Compiled once, not inlined, so that the
    kernel holds one inlined copy of the floor walk (at its issue), not two: each copy costs
    compile time."""
    for k in range(n_ranks):
        for j in range(FLOOR_CMD_LIST.shape[0]):
            _set_floor(st, f0, k * bpr, FLOOR_CMD_LIST[j])


# Per-bank candidate lists, all in one flat array `bl` (one array: see _earliest). List L = w *
# n_banks + b holds the requests of queue w (read 0, write 1) to bank b whose ACT has not issued:
# its header at h = 3 L (length; how many of them hit the bank's open row; a lower bound on the
# earliest tick of its oldest request that is not a hit, -1 when unknown: any change to the list,
# the bank's open row or its activated requests forgets it; the headers of all lists are
# together, so a pass over the banks reads few cache lines), its (request, row)
# pairs in age order from e = ent0 + L * 2 cap. After the entries, per (w, channel), the sum of
# the lists' hit counts (`tot`, an index into `bl`).
@njit(cache=True, inline="always")
def _list_append(bl, h, e, tot, i, row, open_row):
    """Append request `i` (row `row`) to the list at header h, entries e. The list's bound is
    forgotten only if the new request can be its candidate: the oldest request, or with the row
    open the oldest that is not a hit."""
    n = bl[h]
    bl[e + 2 * n] = i
    bl[e + 2 * n + 1] = row
    bl[h] = n + 1
    if n == 0 or (open_row != -1 and bl[h + 1] == n and row != open_row):
        bl[h + 2] = -1
    if row == open_row:
        bl[h + 1] += 1
        bl[tot] += 1


@njit(cache=True, inline="always")
def _list_drop(bl, h, e, tot, i, open_row):
    """Take request `i` out of the list at header h, entries e (it was activated or served)."""
    n = bl[h]
    k = 0
    while bl[e + 2 * k] != i:
        k += 1
    if bl[e + 2 * k + 1] == open_row:
        bl[h + 1] -= 1
        bl[tot] -= 1
    for m in range(e + 2 * k, e + 2 * n - 2):
        bl[m] = bl[m + 2]
    bl[h] = n - 1
    bl[h + 2] = -1


@njit(cache=True, inline="always")
def _list_recount(bl, h, e, tot, open_row):
    """Recount the list's hits after its bank's open row changed."""
    hits = 0
    if open_row != -1:
        for k in range(bl[h]):
            if bl[e + 2 * k + 1] == open_row:
                hits += 1
    bl[tot] += hits - bl[h + 1]
    bl[h + 1] = hits
    bl[h + 2] = -1


@njit(cache=True, inline="always")
def _list_has_row(bl, h, e, row, skip):
    """Whether a request other than `skip` in the list waits for `row`."""
    for k in range(bl[h]):
        if bl[e + 2 * k + 1] == row and bl[e + 2 * k] != skip:
            return True
    return False


class RequestState(NamedTuple):
    """The controller's working arrays, allocated in Python (each numpy allocation inside the kernel
    is a numba overload compiled on a cold start, about 0.3-0.5 s apiece)."""

    queue: np.ndarray        # [read 0 / write 1, channel, slot]: request indices in age order (under
    #                          fcfs only; the other schedulers take age order from the bank lists)
    queue_len: np.ndarray    # [read 0 / write 1, channel]
    write_mode: np.ndarray   # per channel, bool
    next_ref: np.ndarray     # per rank: tick the next refresh falls due
    req_accept: np.ndarray   # per request: tick it entered its queue (-1: not yet)
    req_done: np.ndarray     # per request: tick its data transfer ends
    req_class: np.ndarray    # per request: HIT, MISS or CONFLICT (int8, -1: unclassified)
    activated: np.ndarray    # per request, bool: its ACT issued, column command pending
    n_activated: np.ndarray  # per bank: requests awaiting their column command
    q_activated: np.ndarray  # [read 0 / write 1, channel]: the same, per queue
    act_list: np.ndarray     # [read 0 / write 1, channel, k]: those requests, in age order
    counts: np.ndarray       # per command: how many issued
    pend: np.ndarray         # (bank, command) pairs to re-time after a decision's issue (see _pend)
    bank_lists: np.ndarray   # the per-bank candidate lists (see _list_append), flat


def request_state(st: np.ndarray, n: int, cfg: np.ndarray) -> RequestState:
    """Fresh working arrays for `n` requests on device state `st` with config `cfg`."""
    n_ch, ranks, n_banks = int(st[H_CHANNELS]), int(st[H_RANKS]), int(st[H_NBANKS])
    cap = max(int(cfg[C_RQ]), int(cfg[C_WQ]))
    return RequestState(
        queue=np.zeros((2, n_ch, cap), dtype=np.int64), queue_len=np.zeros((2, n_ch), dtype=np.int64),
        write_mode=np.zeros(n_ch, dtype=np.bool_), next_ref=np.full(n_ch * ranks, cfg[C_NREFI], dtype=np.int64),
        req_accept=np.full(n, -1, dtype=np.int64), req_done=np.full(n, -1, dtype=np.int64),
        req_class=np.full(n, -1, dtype=np.int8), activated=np.zeros(n, dtype=np.bool_),
        n_activated=np.zeros(n_banks, dtype=np.int64), q_activated=np.zeros((2, n_ch), dtype=np.int64),
        act_list=np.zeros((2, n_ch, cap), dtype=np.int64), counts=np.zeros(16, dtype=np.int64),
        pend=np.full(n_banks * N_CMDS + 4 * (cfg[C_RQ] + cfg[C_WQ]), -1, dtype=np.int64),
        bank_lists=np.zeros(2 * n_banks * (3 + 2 * cap) + 2 * n_ch, dtype=np.int64))


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
    qs, qn, write_mode, next_ref = work.queue, work.queue_len, work.write_mode, work.next_ref
    req_accept, req_done, req_class, activated, n_activated, counts = (
        work.req_accept, work.req_done, work.req_class, work.activated, work.n_activated, work.counts)
    q_activated, act_list, pend = work.q_activated, work.act_list, work.pend
    bl = work.bank_lists
    bpc = st[H_BANKS_PER_CHANNEL]
    n_banks = st[H_NBANKS]
    es = 2 * max(rq_cap, wq_cap)   # one list's entries in `bl` (see _list_append)
    ent0 = 6 * n_banks             # the first list's entries
    tot0 = ent0 + 2 * n_banks * es  # the hit totals
    # The rank floors (see _earliest; header values read once: see issue()): per (rank, command), at
    # f0 + rank node * N_CMDS + command (rank nodes follow the channel nodes), then per command the
    # FLOOR_CMDS whose floors issuing it may raise (device.floor_raise_lists).
    f0 = st[H_FLOOR] - n_ch * N_CMDS
    lists = st[H_FLOOR] + n_ch * ranks * N_CMDS
    _set_all_floors(st, f0, n_ch * ranks, bpr)
    fcfs = cfg[C_FCFS] == SCHED_FCFS
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
            ch = req_channel[i]
            w = 1 if req_write[i] else 0
            full = qn[w, ch] >= (wq_cap if w else rq_cap)
            if full and not cfg[C_EXHAUSTIVE]:
                break  # (the offered front end's slot is brought up to date at the next try)
            if cfg[C_OFFERED]:
                if fe == mem:  # one slot per tick: the divisions below reduce to these
                    slot = max(slot, t)
                    avail = slot
                else:
                    if t > 0:
                        first = ((t - 1) * fe) // mem + 1  # the first slot falling on tick t or later
                        if first > slot:
                            slot = first
                    avail = (slot * mem + fe - 1) // fe
            else:
                avail = last_accept + 1
                if req_avail[i] > avail:
                    avail = req_avail[i]
            if avail > t:
                # A full queue frees only when a request completes, and every issue that completes
                # one is followed by a decision at the next tick: no wake-up is needed for it.
                if not full or cfg[C_EXHAUSTIVE]:
                    next_t = min(next_t, avail)
                break
            if full:
                break
            if fcfs:
                qs[w, ch, qn[w, ch]] = i
            qn[w, ch] += 1
            L = w * n_banks + req_bank[i]
            _list_append(bl, 3 * L, ent0 + L * es, tot0 + w * n_ch + ch, i, req_row[i], open_row[req_bank[i]])
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
            # (bank, command) of requests that were ready, or were not evaluated: noted with _pend.
            n_pend = 0
            stamp += 1
            # (1) column commands of activated requests, oldest first.
            for which in range(2):
                for k in range(q_activated[which, ch]):
                    i = act_list[which, ch, k]
                    c = WR if which else RD
                    e = _earliest(st, f0, c, req_bank[i])
                    if e <= t:
                        n_pend = _pend(pend, n_pend, stamp, req_bank[i], c)
                        if sel == -1 or i < sel:
                            sel, sel_cmd, sel_bank = i, c, req_bank[i]
                    elif e < next_t:
                        next_t = e
            refresh_blocks = False
            if sel == -1 and cfg[C_REFRESH]:
                # (2) refresh: PREA while any bank is open, then REFab.
                due_at = INF
                for r in range(ch * ranks, ch * ranks + ranks):
                    due_at = min(due_at, next_ref[r])
                if t < due_at:  # nothing due: what due_refresh would find, without its 4-array call
                    next_t = min(next_t, due_at)
                else:
                    c, b, refresh_blocks, e = due_refresh(st, open_row, n_activated, next_ref, ch, ranks, bpr, t,
                                                          cfg[C_NREFI])
                    if c != -1:
                        sel, sel_cmd, sel_bank = -2, c, b
                    next_t = min(next_t, e)
            if sel == -1 and not refresh_blocks:
                # (3) FR-FCFS over the read or the write queue.
                if not write_mode[ch]:
                    if qn[1, ch] > hi * wq_cap or qn[0, ch] == 0:
                        write_mode[ch] = True
                elif qn[1, ch] < lo * wq_cap and qn[0, ch] != 0:
                    write_mode[ch] = False
                w = 1 if write_mode[ch] else 0
                # Every queued request to a bank that is not activated needs the same command (its
                # column command if it hits the open row, else ACT or PRE), so the oldest hit and
                # the oldest other request of each bank are the only candidates.
                # (a) The oldest ready row hit (not under fcfs).
                c = WR if w else RD
                hits = not fcfs and bl[tot0 + w * n_ch + ch] > 0  # any queued hit in the channel
                for bank in range(ch * bpc, ch * bpc + bpc if hits else ch * bpc):
                    L = w * n_banks + bank
                    if bl[3 * L + 1] == 0:
                        continue
                    row = open_row[bank]
                    e0 = ent0 + L * es
                    for k in range(bl[3 * L]):
                        if bl[e0 + 2 * k + 1] == row:
                            i = bl[e0 + 2 * k]
                            if sel != -1 and i > sel:
                                # An older ready hit is chosen already: not evaluated.
                                n_pend = _pend(pend, n_pend, stamp, bank, c)
                                break
                            e = _earliest(st, f0, c, bank)
                            if e <= t:
                                n_pend = _pend(pend, n_pend, stamp, bank, c)
                                sel, sel_cmd, sel_bank = i, c, bank
                            elif e < next_t:
                                next_t = e
                            break
                # (b) Failing a ready hit (ready_oldest: in any case), the oldest ready ACT or PRE;
                # a PRE that would close a row an activated request waits for is never chosen.
                # Under fcfs only the oldest request, whatever its command (none once activated:
                # step 1 serves it).
                b_lo, b_hi = ch * bpc, ch * bpc + bpc
                if fcfs:
                    b_lo, b_hi = 0, 0
                    if qn[w, ch] > 0 and not activated[qs[w, ch, 0]]:
                        b_lo = req_bank[qs[w, ch, 0]]
                        b_hi = b_lo + 1
                elif sel != -1 and cfg[C_FCFS] != SCHED_READY_OLDEST:
                    b_hi = b_lo
                for bank in range(b_lo, b_hi):
                    row = open_row[bank]
                    i = -1
                    L = -1
                    if fcfs:
                        i = qs[w, ch, 0]
                        if row == req_row[i]:
                            c = WR if w else RD
                        elif row == -1:
                            c = ACT
                        elif n_activated[bank] == 0:
                            c = PRE
                        else:
                            i = -1
                    else:
                        L = w * n_banks + bank
                        e0 = ent0 + L * es
                        if bl[3 * L + 2] >= next_t:
                            continue  # its candidate cannot issue before a tick already found
                        if bl[3 * L] == 0:
                            i = -1
                        elif row == -1:
                            c, i = ACT, bl[e0]
                        elif n_activated[bank] == 0 and bl[3 * L + 1] < bl[3 * L]:
                            for k in range(bl[3 * L]):
                                if bl[e0 + 2 * k + 1] != row:
                                    c, i = PRE, bl[e0 + 2 * k]
                                    break
                    if i == -1:
                        if not fcfs:
                            bl[3 * L + 2] = INF  # no candidate until the list or the bank changes
                        continue
                    e = _earliest(st, f0, c, bank)
                    if not fcfs:
                        bl[3 * L + 2] = e
                    if e <= t:
                        n_pend = _pend(pend, n_pend, stamp, bank, c)
                        if sel == -1 or i < sel:
                            sel, sel_cmd, sel_bank = i, c, bank
                    elif e < next_t:
                        next_t = e
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
                    # Another request for the row: an activated one (its row is open: this one) or
                    # one in either queue's list of the bank.
                    L = n_banks + sel_bank
                    auto = not (n_activated[sel_bank] - (1 if activated[sel] else 0) > 0
                                or _list_has_row(bl, 3 * sel_bank, ent0 + sel_bank * es, row, sel)
                                or _list_has_row(bl, 3 * L, ent0 + L * es, row, sel))
                if auto:
                    c = RDA if c == RD else WRA
            if not bank_state_ok(st, c, sel_bank, row):
                status = 2
                return req_accept, req_done, req_class, counts, n_log, status
            issue(st, c, sel_bank, row, t)
            meta = st[H_META] + c * META_WIDTH
            r = lists + c * (1 + N_CMDS)
            for j in range(r + 1, r + 1 + st[r]):  # the floors the issue may have raised
                for rk in range(ch * ranks, ch * ranks + ranks):
                    _set_floor(st, f0, rk * bpr, st[j])
            issued_any = True
            bl[3 * sel_bank + 2] = -1  # its activated requests or lists may change: forget its bounds
            bl[3 * (n_banks + sel_bank) + 2] = -1
            if st[meta + 2] != ROW_KEEP:  # rows opened or closed: recount the hits of the banks' lists
                b_first = sel_bank - sel_bank % bpr if st[meta] != 0 else sel_bank
                for b in range(b_first, b_first + (bpr if st[meta] != 0 else 1)):
                    for which in range(2):
                        L = which * n_banks + b
                        _list_recount(bl, 3 * L, ent0 + L * es, tot0 + which * n_ch + ch, open_row[b])
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
            may_skip = sel >= 0 and (c == ACT or c == PRE)
            if may_skip:
                if c == PRE:
                    after_lo, after_hi = 0, 1
                else:
                    # A queued hit of the activated request's own kind has its command: only a hit
                    # in the other queue adds the other column command.
                    after_lo = 2 if req_write[sel] else 1
                    after_hi = after_lo + 1
                    L = (0 if req_write[sel] else 1) * n_banks + sel_bank
                    if _list_has_row(bl, 3 * L, ent0 + L * es, row, sel):
                        after_lo, after_hi = 1, 3
                # The noted pairs on other banks, then the used bank's next commands.
                end = pend.shape[0]
                for p in range(end - 2 * n_pend, end + 2 * (after_hi - after_lo), 2):
                    if p < end:
                        b, cc = pend[p], pend[p + 1]
                        if b == sel_bank:
                            continue
                    else:
                        b, cc = sel_bank, AFTER_CMDS[after_lo + (p - end) // 2]
                    e = _earliest(st, f0, cc, b)
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
                w = 1 if req_write[sel] else 0
                if c == ACT:
                    L = w * n_banks + sel_bank
                    _list_drop(bl, 3 * L, ent0 + L * es, tot0 + w * n_ch + ch, sel, open_row[sel_bank])
                    activated[sel] = True
                    n_activated[sel_bank] += 1
                    # Into the channel's list of activated requests, in age (= index) order.
                    k = q_activated[w, ch]
                    while k > 0 and act_list[w, ch, k - 1] > sel:
                        act_list[w, ch, k] = act_list[w, ch, k - 1]
                        k -= 1
                    act_list[w, ch, k] = sel
                    q_activated[w, ch] += 1
                elif c != PRE:
                    if activated[sel]:
                        activated[sel] = False
                        n_activated[sel_bank] -= 1
                        _take_out(act_list, w, ch, q_activated[w, ch], sel)
                        q_activated[w, ch] -= 1
                    else:
                        L = w * n_banks + sel_bank
                        _list_drop(bl, 3 * L, ent0 + L * es, tot0 + w * n_ch + ch, sel, open_row[sel_bank])
                    req_done[sel] = t + (cfg[C_WR_LAT] if req_write[sel] else cfg[C_RD_LAT])
                    done += 1
                    if fcfs:
                        _take_out(qs, w, ch, qn[w, ch], sel)
                    qn[w, ch] -= 1
        if issued_any:
            t = t + 1 if step else max(t + 1, min(next_t, skip_to))
        elif next_t >= INF:
            status = 2
            return req_accept, req_done, req_class, counts, n_log, status
        else:
            t = max(next_t, t + 1)
    return req_accept, req_done, req_class, counts, n_log, status
