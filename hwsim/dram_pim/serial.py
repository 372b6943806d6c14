"""A serial PIM-GPT token program as one compiled loop: the same timing and totals as the
controller's event-driven serial policy (`hwsim.asic.controller.Executor`) over
`PimSystemPort`, without Python objects per instruction.

The program is a list of items. A fixed item (ASIC vector work, a link fetch) only takes its
duration. A PIM item (a VMM or a KV append) takes `pre_ps` (instruction issue and the command
path's link latency), then, exactly as `PimSystemPort.vmm` -> `PimSystem.vmm`: the REFab owed at
the boundary (`_flush_refresh`), those owed at the instruction's start after them, and the
instruction itself replayed from the memo (`hwsim.dram_pim.memo`); then `back_ps` (the result's
return). A memo miss returns to Python (`run_serial`), which replays a run stored for the
instruction's start phase (`PimSystem.phased_replay`: one with refreshes forced into it) or times
it with `PimSystem._run` and stores it, and resumes the loop, which then accounts it from a result
row. Where REFab are owed at a boundary, the flush and the instruction after it replay as one
boundary entry when one was stored (`run_items`).

Totals kept per program (what the controller's accumulator and the energy counts of its port
would hold): time per category and per op, the PIM phases, row hits and misses, bytes, commands,
and the energy-count terms in the order the port's per-result sums would add them (the float sum
of standby time depends on the order).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from hwsim.asic.controller import CATEGORIES
from hwsim.dram_pim.commands import N_CMDS, Cmd
from hwsim.dram_pim.memo import (B_ACTIVE, B_END, B_SWITCHES, L_BOUNDARY, L_CHANNEL_TICK, L_COUNTS, L_CYCLES,
                                 L_HIST, L_LAST_DECISION, L_MODE, L_OPEN, L_READY, L_SCALARS, M_STAMP, N_PHASES,
                                 S_ACTIVE, S_BYTES_IN, S_BYTES_OUT, S_END, S_LAST_DECISION, S_MACS, S_MODE_SWITCHES,
                                 S_ROW_HITS, S_ROW_MISSES, find, key_hash, trans_find, trans_put)
from hwsim.dram_pim.pim import CLOSED_REL, PHASES, _flush_refresh, _memo_key, _restore, memo_valid

FIXED, VMM, KV_APPEND = 0, 1, 2
# loop state
(LS_ITEM, LS_PHASE, LS_NOW, LS_TICK, LS_REFRESH_FROM, LS_T, LS_T_PS, LS_T2, LS_START, LS_HAS_P, LS_HAS_Q,
 LS_KEY_LEN, LS_HASH, LS_HITS, LS_NEED, LS_BOUNDARY_LEN, LS_BOUNDARY_HASH, LS_BOUNDARY_SIG,
 LS_SOURCE) = range(19)
N_LS = 19
# a boundary entry's signature id: the instruction's plus this
BOUNDARY_SIG = 1 << 40
# where an item resumes: from its start, after a miss (Python timed it), after its boundary flush
PHASE_START, PHASE_ACCOUNT, PHASE_FLUSHED = 0, 1, 2
# parameters, the controller's category indices among them (run-time values: numba's cache of this
# kernel is keyed on the kernel packages' sources, and the categories are the controller's)
(PR_TCK, PR_NREFI, PR_MAX_POST, PR_NMODCH, PR_REF_ON, PR_FLOOR, PR_NCCD_L, PR_ISSUE_PS, PR_LAT_PS, PR_CAT_PIM_VMM,
 PR_CAT_KV_WRITE, PR_CAT_TRANSFER, PR_CAT_OTHER) = range(13)
# per-program integer totals
(T_ROW_HITS, T_ROW_MISSES, T_OFFCHIP, T_REFRESH_PS, T_IO_BITS, T_SEEN,
 # the system's own counters (PimSystem._account) not kept in shared arrays
 T_SYS_ROW_HITS, T_SYS_ROW_MISSES, T_SYS_BYTES_IN, T_SYS_BYTES_OUT, T_SYS_MACS, T_SYS_ACTIVE,
 T_SYS_MODE_SWITCHES) = range(13)
N_TOTALS = 13
# pending boundary flushes: pend[p or q] = commands per Cmd, then start, end, row-open cycles, mode switches
PD_START, PD_END, PD_ACTIVE, PD_SWITCHES = N_CMDS, N_CMDS + 1, N_CMDS + 2, N_CMDS + 3
# energy keys after the commands: pim_io, pim_standby_active, pim_standby_precharged
E_KEYS = N_CMDS + 3
# statuses
DONE, MISS, GROW, ILLEGAL_REFRESH, STORE = 0, 1, 2, 3, 4
_REFRESH_PHASE = PHASES.index("refresh")


@njit(cache=True)
def _flush(st, start, prm, ref_issued, channel_tick, mode, fbuf, switches, ref_scratch, done_off, scr, pend, which,
           sys_counts, tot):
    """`PimSystem.flush_refresh` at `start` (known to owe a REFab): issue, account into the system
    counters, keep the result in pend[which]. Returns (status, n, end): status 0 (done), GROW
    (`fbuf` [cmd, bank, row, tick, mode switch] shorter than the n commands: nothing issued) or
    ILLEGAL_REFRESH (command n breaks its bank-state precondition)."""
    status, n, active = _flush_refresh(st, start, prm[PR_NREFI], ref_issued, channel_tick, mode, prm[PR_NMODCH],
                                       switches, fbuf[0], fbuf[1], fbuf[2], fbuf[3], fbuf[4], ref_scratch, done_off,
                                       prm[PR_NCCD_L], scr[0], scr[1], scr[2], scr[3], scr[4])
    if status == 1:
        return GROW, n, 0
    if status == 2:
        return ILLEGAL_REFRESH, n, 0
    end = start
    for c in range(scr[0].shape[0]):
        end = max(end, scr[0][c])
    counts = scr[2]
    n_switches = 0
    for c in range(switches.shape[0]):
        n_switches += switches[c]
    for c in range(N_CMDS):
        pend[which, c] = counts[c]
        sys_counts[c] += counts[c]
    active = max(active, 0)
    pend[which, PD_START] = start
    pend[which, PD_END] = end
    pend[which, PD_ACTIVE] = active
    pend[which, PD_SWITCHES] = n_switches
    tot[T_SYS_ACTIVE] += active
    tot[T_SYS_MODE_SWITCHES] += n_switches
    return DONE, n, end


@njit(cache=True, inline="always")
def _first_seen(seen, key, tot):
    if seen[key] < 0:
        seen[key] = tot[T_SEEN]
        tot[T_SEEN] += 1


@njit(cache=True, inline="always")
def _energy_tail(seen, tot, e_active, io_bits, active, tck):
    """The non-command terms of one result's energy counts (`_add_energy_counts`)."""
    for k in range(N_CMDS, E_KEYS):
        _first_seen(seen, k, tot)
    tot[T_IO_BITS] += io_bits
    e_active[0] += active * tck / 1000.0


@njit(cache=True, inline="always")
def _boundary_valid(row, lay, s1, prm):
    """A boundary entry replays exactly from boundary `s1` (its key: the state and the REFab owed
    per channel there) iff its flush ends before the next tREFI (so nothing is owed at the
    instruction's start) and the instruction then forces no refresh (`memo_valid` with every
    channel having issued floor(s1 / nREFI) after the flush)."""
    nrefi = prm[PR_NREFI]
    start = s1 + row[lay[L_BOUNDARY] + B_END]
    if start >= (s1 // nrefi + 1) * nrefi:
        return False
    return (start + row[lay[L_SCALARS] + S_LAST_DECISION]) // nrefi - s1 // nrefi < prm[PR_MAX_POST]


@njit(cache=True, inline="always")
def _key(v_e, v_start, v_base, data, hot, lay, ready, open_row, win_hist, channel_tick, mode, start, base, win_count,
         floor, out):
    """`_memo_key` of the state at `start` (rows at `base`): the device's, or, while the replay of
    entry v_e at v_start (rows at v_base) is not restored (v_e >= 0), that entry's end state, whose
    ready ticks after `start` are among its hot ones (`MemoTable.hot`) when `start` is not before
    its end, and are none when `start` is not before the latest of them."""
    if v_e < 0:   # (hot[0, 2:] is not read; it has the row call's type, so _memo_key compiles once for both)
        return _memo_key(ready, hot[0, 2:], -1, open_row, -1, win_hist, channel_tick, mode, start, base, win_count,
                         floor, out)
    row = data[v_e]
    delta = start - v_start
    n_hot = 0 if delta >= hot[v_e, 1] else hot[v_e, 0] if delta >= row[lay[L_SCALARS] + S_END] else -1
    return _memo_key(row[lay[L_READY]:lay[L_OPEN]], hot[v_e, 2:], n_hot, row[lay[L_OPEN]:lay[L_HIST]], CLOSED_REL,
                     row[lay[L_HIST]:lay[L_HIST] + win_hist.size].reshape(win_hist.shape),
                     row[lay[L_CHANNEL_TICK]:lay[L_MODE]], row[lay[L_MODE]:lay[L_LAST_DECISION]], delta,
                     base - v_base, win_count, floor, out)


@njit(cache=True)
def _item_key(v_e, v_start, v_base, data, hot, lay, ready, open_row, win_hist, channel_tick, mode, start, base,
              win_count, floor, out, sig):
    """(length, hash) of an instruction's key at `start` written to `out` (`_key`)."""
    n = _key(v_e, v_start, v_base, data, hot, lay, ready, open_row, win_hist, channel_tick, mode, start, base,
             win_count, floor, out)
    return n, key_hash(sig, out, n)


@njit(cache=True)
def _boundary_key(v_e, v_start, v_base, data, hot, lay, ready, open_row, win_hist, channel_tick, mode, s1, base,
                  win_count, prm, out, ref_issued, sb):
    """(length, hash) of the key of a boundary entry at boundary s1 written to `out`: the state's
    (`_key`), then the REFab each channel owes."""
    nb = _key(v_e, v_start, v_base, data, hot, lay, ready, open_row, win_hist, channel_tick, mode, s1, base,
              win_count, prm[PR_FLOOR], out)
    for c in range(ref_issued.shape[0]):
        out[nb + c] = s1 // prm[PR_NREFI] - ref_issued[c]
    nb += ref_issued.shape[0]
    return nb, key_hash(sb, out, nb)


@njit(cache=True, inline="always")
def _restore_entry(v_e, v_start, v_base, data, lay, ready, open_row, win_hist, channel_tick, mode):
    """Restore the end state of entry v_e replayed at v_start (rows at v_base), if v_e >= 0; returns
    -1 (no replay left unrestored)."""
    if v_e >= 0:
        row = data[v_e]
        _restore(ready, row[lay[L_READY]:lay[L_OPEN]], open_row, row[lay[L_OPEN]:lay[L_HIST]], win_hist,
                 row[lay[L_HIST]:lay[L_HIST] + win_hist.size].reshape(win_hist.shape), channel_tick,
                 row[lay[L_CHANNEL_TICK]:lay[L_MODE]], mode, row[lay[L_MODE]:lay[L_LAST_DECISION]], v_start, v_base)
    return -1


@njit(cache=True, inline="always")
def _account_replay(row, lay, macs, sys_counts, tot):
    """Add the result of the entry in `row` to the system counters (`PimSystem._replay`,
    `_account`; useful MACs `macs` if >= 0)."""
    s = lay[L_SCALARS]
    for c in range(N_CMDS):
        sys_counts[c] += row[lay[L_COUNTS] + c]
    tot[T_SYS_ROW_HITS] += row[s + S_ROW_HITS]
    tot[T_SYS_ROW_MISSES] += row[s + S_ROW_MISSES]
    tot[T_SYS_BYTES_IN] += row[s + S_BYTES_IN]
    tot[T_SYS_BYTES_OUT] += row[s + S_BYTES_OUT]
    tot[T_SYS_MACS] += row[s + S_MACS] if macs < 0 else macs
    tot[T_SYS_ACTIVE] += row[s + S_ACTIVE]
    tot[T_SYS_MODE_SWITCHES] += row[s + S_MODE_SWITCHES]


@njit(cache=True)
def run_items(kind, pre_ps, back_ps, sig, base, macs, op, ls, prm, lay, st, ready, open_row, win_hist, channel_tick,
              mode, ref_issued, sys_counts, slots, meta, keys, data, hot, counter, trans, key_buf, boundary_key,
              win_count, result_row, done_off, fbuf, switches, ref_scratch, scr, pend, cat, op_ps, phases, pim_counts,
              tot, seen, e_counts, e_active):
    """Run items ls[LS_ITEM]... (item ls[LS_ITEM] from phase ls[LS_PHASE]; PHASE_ACCOUNT takes its
    result from `result_row`). Returns DONE, or, with the item's state in ls for the resumption:
    MISS (Python times the item), STORE (Python stores the boundary entry of the item just run,
    whose instruction replayed entry ls[LS_SOURCE]), GROW (a flush needs ls[LS_NEED] commands of
    `fbuf`) or ILLEGAL_REFRESH (flush command ls[LS_NEED] breaks its precondition).

    Where REFab are owed at an item's boundary, a boundary entry (the flush and the instruction
    after it, keyed by the state and the owed counts before the flush, `boundary_key`) replays
    both in one step; without one, the flush is issued and the instruction looked up as usual,
    and the pair is then stored as a boundary entry.

    A replay's end state is restored only when something needs the device state (a flush, a
    return to Python): until then the next key is taken from the entry's end state (`_key`), and
    the entry that key found is cached by (entry, signature, ticks and rows from the replay's start)
    in `trans` (`memo.trans_find`), so that a run of hits mostly skips the keys."""
    tck = prm[PR_TCK]
    nrefi = prm[PR_NREFI]
    ref_on = prm[PR_REF_ON] != 0
    n_ch = ref_issued.shape[0]
    i = ls[LS_ITEM]
    now = ls[LS_NOW]
    tick = ls[LS_TICK]
    refresh_from = ls[LS_REFRESH_FROM]
    v_e, v_start, v_base = -1, 0, 0   # the replay not yet restored: entry, start, first row
    while i < kind.shape[0]:
        if kind[i] == FIXED:
            now += pre_ps[i]
            i += 1
            continue
        phase = ls[LS_PHASE]
        ls[LS_PHASE] = PHASE_START
        t, t_ps, t2, start = ls[LS_T], ls[LS_T_PS], ls[LS_T2], ls[LS_START]
        has_p, has_q = ls[LS_HAS_P], ls[LS_HAS_Q]
        source = -1   # the entry the instruction replayed (-1: Python ran it, or a boundary entry)
        if phase == PHASE_START:
            t_ps = now + pre_ps[i]
            t = -(-t_ps // tck)
            has_p = 0
            t2 = t
            s1 = max(tick, t)
            ls[LS_BOUNDARY_LEN] = 0
            if ref_on and s1 >= refresh_from:
                sb = sig[i] + BOUNDARY_SIG
                owed = s1 // nrefi - ref_issued[0]   # the REFab every channel owes, or -1 if they differ
                for c in range(1, n_ch):
                    if s1 // nrefi - ref_issued[c] != owed:
                        owed = -1
                eb, nb, hb, ts = -1, -1, 0, -1
                if v_e >= 0 and owed >= 0:
                    ts, eb = trans_find(trans, v_e, sb, s1 - v_start, base[i] - v_base, owed)
                if eb < 0:
                    nb, hb = _boundary_key(v_e, v_start, v_base, data, hot, lay, ready, open_row, win_hist,
                                           channel_tick, mode, s1, base[i], win_count, prm, boundary_key, ref_issued, sb)
                    eb = find(slots, meta, keys, sb, boundary_key, nb, hb)
                    if eb >= 0 and ts >= 0:
                        trans_put(trans, ts, v_e, sb, s1 - v_start, base[i] - v_base, owed, eb)
                if eb >= 0:
                    counter[1] += 1
                    meta[eb, M_STAMP] = counter[1]
                if eb >= 0 and _boundary_valid(data[eb], lay, s1, prm):
                    row = data[eb]
                    b = lay[L_BOUNDARY]
                    for c in range(N_CMDS):
                        pend[0, c] = row[b + c]
                        sys_counts[c] += row[b + c]
                    pend[0, PD_START] = s1
                    pend[0, PD_END] = s1 + row[b + B_END]
                    pend[0, PD_ACTIVE] = row[b + B_ACTIVE]
                    pend[0, PD_SWITCHES] = row[b + B_SWITCHES]
                    tot[T_SYS_ACTIVE] += row[b + B_ACTIVE]
                    tot[T_SYS_MODE_SWITCHES] += row[b + B_SWITCHES]
                    for c in range(n_ch):
                        ref_issued[c] = s1 // nrefi
                    refresh_from = (s1 // nrefi + 1) * nrefi
                    has_p, has_q = 1, 0
                    start = s1 + row[b + B_END]
                    ls[LS_HITS] += 1
                    _account_replay(row, lay, macs[i], sys_counts, tot)
                    v_e, v_start, v_base = eb, start, base[i]
                    tick = max(tick, start + row[lay[L_SCALARS] + S_END])
                    phase = PHASE_ACCOUNT   # accounted below, like a resumed item
                else:
                    if nb < 0:   # found through `trans`: the boundary entry to store needs the key
                        nb, hb = _boundary_key(v_e, v_start, v_base, data, hot, lay, ready, open_row, win_hist,
                                               channel_tick, mode, s1, base[i], win_count, prm, boundary_key,
                                               ref_issued, sb)
                    ls[LS_BOUNDARY_LEN], ls[LS_BOUNDARY_HASH], ls[LS_BOUNDARY_SIG] = nb, hb, sb
                    v_e = _restore_entry(v_e, v_start, v_base, data, lay, ready, open_row, win_hist, channel_tick, mode)
                    status, n, t2 = _flush(st, s1, prm, ref_issued, channel_tick, mode, fbuf, switches, ref_scratch,
                                           done_off, scr, pend, 0, sys_counts, tot)
                    if status != DONE:
                        ls[LS_ITEM], ls[LS_PHASE], ls[LS_NOW], ls[LS_NEED] = i, PHASE_START, now, n
                        ls[LS_TICK], ls[LS_REFRESH_FROM] = tick, refresh_from
                        return status
                    has_p = 1
                    tick = max(tick, t2)
                    refresh_from = (ref_issued.min() + 1) * nrefi
                    phase = PHASE_FLUSHED
            else:
                phase = PHASE_FLUSHED
        else:
            row = result_row
        if phase == PHASE_FLUSHED:
            start = max(tick, t2)
            has_q = 0
            if ref_on and start >= refresh_from:
                v_e = _restore_entry(v_e, v_start, v_base, data, lay, ready, open_row, win_hist, channel_tick, mode)
                status, n, q_end = _flush(st, start, prm, ref_issued, channel_tick, mode, fbuf, switches,
                                          ref_scratch, done_off, scr, pend, 1, sys_counts, tot)
                if status != DONE:
                    ls[LS_ITEM], ls[LS_PHASE], ls[LS_NOW], ls[LS_NEED] = i, PHASE_FLUSHED, now, n
                    ls[LS_TICK], ls[LS_REFRESH_FROM] = tick, refresh_from
                    ls[LS_T], ls[LS_T_PS], ls[LS_T2], ls[LS_HAS_P] = t, t_ps, t2, has_p
                    return status
                has_q = 1
                ls[LS_BOUNDARY_LEN] = 0   # two flushes: no boundary entry
                tick = max(tick, q_end)
                refresh_from = (ref_issued.min() + 1) * nrefi
                start = q_end
            e, n, h, ts = -1, -1, 0, -1
            if v_e >= 0:
                ts, e = trans_find(trans, v_e, sig[i], start - v_start, base[i] - v_base, -1)
            if e < 0:
                n, h = _item_key(v_e, v_start, v_base, data, hot, lay, ready, open_row, win_hist, channel_tick, mode,
                                 start, base[i], win_count, prm[PR_FLOOR], key_buf, sig[i])
                e = find(slots, meta, keys, sig[i], key_buf, n, h)
                if e >= 0 and ts >= 0:
                    trans_put(trans, ts, v_e, sig[i], start - v_start, base[i] - v_base, -1, e)
            ok = False
            if e >= 0:
                counter[1] += 1
                meta[e, M_STAMP] = counter[1]
                ok = memo_valid(data[e], lay, start, ref_on, nrefi, prm[PR_MAX_POST], ref_issued, refresh_from)
            if not ok and n < 0:   # found through `trans`: Python needs the key
                n, h = _item_key(v_e, v_start, v_base, data, hot, lay, ready, open_row, win_hist, channel_tick, mode,
                                 start, base[i], win_count, prm[PR_FLOOR], key_buf, sig[i])
            if not ok:   # counted by Python (`PimSystem.time_missed`: a phase-interval replay is a hit)
                v_e = _restore_entry(v_e, v_start, v_base, data, lay, ready, open_row, win_hist, channel_tick, mode)
                ls[LS_ITEM], ls[LS_PHASE], ls[LS_NOW], ls[LS_TICK], ls[LS_REFRESH_FROM] = (i, PHASE_ACCOUNT, now, tick,
                                                                                         refresh_from)
                ls[LS_T], ls[LS_T_PS], ls[LS_T2], ls[LS_START], ls[LS_HAS_P], ls[LS_HAS_Q] = (t, t_ps, t2, start,
                                                                                            has_p, has_q)
                ls[LS_KEY_LEN], ls[LS_HASH] = n, h
                return MISS
            ls[LS_HITS] += 1
            row = data[e]
            source = e
            _account_replay(row, lay, macs[i], sys_counts, tot)
            v_e, v_start, v_base = e, start, base[i]
            tick = max(tick, start + row[lay[L_SCALARS] + S_END])
        # The controller's view (PimSystemPort._wrap, Executor._execute, _Accumulator.pim): the result
        # merged with the flush at its start (q), the boundary flush (p) before it as `other` time.
        s = lay[L_SCALARS]
        end_ps = (start + row[s + S_END]) * tck
        other_ps = (pend[0, PD_END] - t) * tck if has_p else 0
        o = op[i]
        c_pim = prm[PR_CAT_PIM_VMM] if kind[i] == VMM else prm[PR_CAT_KV_WRITE]
        pim_ps = end_ps - (t_ps + other_ps)
        cat[prm[PR_CAT_OTHER]] += prm[PR_ISSUE_PS] + other_ps
        cat[prm[PR_CAT_TRANSFER]] += prm[PR_LAT_PS] + back_ps[i]
        cat[c_pim] += pim_ps
        op_ps[o] += prm[PR_ISSUE_PS] + prm[PR_LAT_PS] + other_ps + pim_ps + back_ps[i]
        tot[T_REFRESH_PS] += other_ps
        tot[T_ROW_HITS] += row[s + S_ROW_HITS]
        tot[T_ROW_MISSES] += row[s + S_ROW_MISSES]
        io = row[s + S_BYTES_IN] + row[s + S_BYTES_OUT]
        tot[T_OFFCHIP] += io
        for k in range(N_PHASES):
            phases[k] += row[lay[L_CYCLES] + k] * tck
        if has_q:
            phases[_REFRESH_PHASE] += (pend[1, PD_END] - pend[1, PD_START]) * tck
        if has_p:   # energy: the boundary flush's result, then the instruction's
            for c in range(N_CMDS):
                if pend[0, c] > 0:
                    _first_seen(seen, c, tot)
                    e_counts[c] += pend[0, c]
                    pim_counts[c] += pend[0, c]
            _energy_tail(seen, tot, e_active, 0, pend[0, PD_ACTIVE], tck)
        active = row[s + S_ACTIVE]
        for c in range(N_CMDS):
            v = row[lay[L_COUNTS] + c]
            if v > 0:
                _first_seen(seen, c, tot)
                e_counts[c] += v
                pim_counts[c] += v
        if has_q:
            active += pend[1, PD_ACTIVE]
            for c in range(N_CMDS):
                if pend[1, c] > 0:
                    _first_seen(seen, c, tot)
                    e_counts[c] += pend[1, c]
                    pim_counts[c] += pend[1, c]
        _energy_tail(seen, tot, e_active, io * 8, active, tck)
        now = end_ps + back_ps[i]
        i += 1
        if source >= 0 and ls[LS_BOUNDARY_LEN] > 0:   # flush + replay without a boundary entry: store one
            ls[LS_SOURCE] = source
            ls[LS_ITEM], ls[LS_NOW], ls[LS_TICK], ls[LS_REFRESH_FROM] = i, now, tick, refresh_from
            _restore_entry(v_e, v_start, v_base, data, lay, ready, open_row, win_hist, channel_tick, mode)
            return STORE
    ls[LS_ITEM], ls[LS_NOW], ls[LS_TICK], ls[LS_REFRESH_FROM] = i, now, tick, refresh_from
    _restore_entry(v_e, v_start, v_base, data, lay, ready, open_row, win_hist, channel_tick, mode)
    return DONE


class SerialRun:
    """Totals of one program run by `run_serial` (ps; per category index, op index, phase index)."""

    def __init__(self, now_ps: int, cat: np.ndarray, op_ps: np.ndarray, phases: np.ndarray, pim_counts: np.ndarray,
                 tot: np.ndarray, seen: np.ndarray, e_counts: np.ndarray, e_active: float):
        self.now_ps = now_ps
        self.cat, self.op_ps, self.phases, self.pim_counts, self.tot = cat, op_ps, phases, pim_counts, tot
        self._seen, self._e_counts, self._e_active = seen, e_counts, e_active

    @property
    def category_ps(self) -> dict[str, int]:
        return dict(zip(CATEGORIES, self.cat.tolist()))

    @property
    def phases_ps(self) -> dict[str, int]:
        return {k: v for k, v in zip(PHASES, self.phases.tolist()) if v}

    @property
    def commands(self) -> dict[str, int]:
        return {Cmd(c).name: v for c, v in enumerate(self.pim_counts.tolist()) if v}

    row_hits = property(lambda self: int(self.tot[T_ROW_HITS]))
    row_misses = property(lambda self: int(self.tot[T_ROW_MISSES]))
    bytes_io = property(lambda self: int(self.tot[T_OFFCHIP]))
    refresh_ps = property(lambda self: int(self.tot[T_REFRESH_PS]))

    def energy_counts(self, channels: int, elapsed_ns: float) -> dict[str, float]:
        """`pim_energy_counts` of the program's results (standby over `elapsed_ns`), keys in the
        order it would first see them."""
        out: dict[str, float] = {}
        for k in np.argsort(self._seen, kind="stable").tolist():
            if self._seen[k] < 0:
                continue
            if k < N_CMDS:
                out[Cmd(k).name] = float(self._e_counts[k])
            elif k == N_CMDS:
                out["pim_io"] = float(self.tot[T_IO_BITS])
            elif k == N_CMDS + 1:
                out["pim_standby_active"] = self._e_active
            else:
                out["pim_standby_precharged"] = max(channels * elapsed_ns - self._e_active, 0.0)
        return out


def run_serial(system, kind: np.ndarray, pre_ps: np.ndarray, back_ps: np.ndarray, op: np.ndarray, n_ops: int,
               payloads: list, sig: np.ndarray, base: np.ndarray, macs: np.ndarray, now_ps: int, issue_ps: int,
               lat_ps: int) -> SerialRun:
    """Run a serial program on `system` (a `PimSystem` with memoisation on and no command log).
    Item i: `payloads[i]` its Placement (VMM) or (layer, token) (KV_APPEND), `op[i]` its op index,
    (sig, base, macs)[i] its `vmm_key` or `kv_append_key`."""
    t = system.dram.timing
    sp = system.spec
    prm = np.array([system.tCK_ps, t.nREFI, sp.max_postponed_refreshes, sp.mode_switch_cycles,
                    sp.refresh == "deferred", system._hist_floor, t.nCCD_L, issue_ps, lat_ps,
                    *(CATEGORIES.index(c) for c in ("pim_vmm", "kv_write", "transfer", "other"))], np.int64)
    memo = system.memo
    lay = memo.offsets
    d = system.device
    ls = np.zeros(N_LS, np.int64)
    ls[LS_NOW] = now_ps
    cat = np.zeros(len(CATEGORIES), np.int64)
    op_ps = np.zeros(n_ops, np.int64)
    phases = np.zeros(N_PHASES, np.int64)
    pim_counts = np.zeros(N_CMDS, np.int64)
    tot = np.zeros(N_TOTALS, np.int64)
    seen = np.full(E_KEYS, -1, np.int64)
    e_counts = np.zeros(N_CMDS, np.int64)
    e_active = np.zeros(1, np.float64)
    pend = np.zeros((2, N_CMDS + 4), np.int64)
    result_row = np.zeros(memo.layout.width, np.int64)
    fbuf = system._flush_buf
    boundary_key = np.zeros(system._key_buf.size + sp.channels, np.int64)
    while True:
        ls[LS_TICK] = system.tick
        ls[LS_REFRESH_FROM] = system._refresh_from
        status = run_items(kind, pre_ps, back_ps, sig, base, macs, op, ls, prm, lay, d.state, d.ready.reshape(-1),
                           d.open_row, d.win_hist, system.issuer.channel_tick, system.mode, system.ref_issued,
                           system.counts, memo.slots, memo.meta, memo.keys, memo.data, memo.hot, memo.counter,
                           memo.trans, system._key_buf,
                           boundary_key, system._win_count, result_row, system._done, fbuf, system._flush_switches,
                           system._flush_ref_scratch, system._scratch, pend, cat, op_ps, phases, pim_counts, tot, seen,
                           e_counts, e_active)
        _sync(system, ls, tot)
        if status == DONE:
            break
        if status == GROW:
            fbuf = system._flush_buf = np.zeros((5, 2 * int(ls[LS_NEED])), np.int64)
        elif status == MISS:
            i = int(ls[LS_ITEM])
            p = payloads[i]
            name, _, b, _, lower = system.vmm_instruction(p) if kind[i] == VMM else system.kv_append_instruction(*p)
            _, row, stored = system.time_missed(int(sig[i]), int(ls[LS_KEY_LEN]), int(ls[LS_HASH]), name,
                                                int(ls[LS_START]), b, int(macs[i]), lower)
            if stored and ls[LS_BOUNDARY_LEN] > 0:
                _store_boundary(memo, ls, boundary_key, row, pend[0])
            result_row[:] = row
            ls[LS_BOUNDARY_LEN] = 0
        elif status == STORE:
            _store_boundary(memo, ls, boundary_key, memo.data[int(ls[LS_SOURCE])], pend[0])
            ls[LS_BOUNDARY_LEN] = 0
        else:
            k = int(ls[LS_NEED])
            raise RuntimeError(f"illegal refresh stream: {Cmd(int(fbuf[0, k])).name} to bank {int(fbuf[1, k])} "
                               "breaks its bank-state precondition (internal error)")
    return SerialRun(int(ls[LS_NOW]), cat, op_ps, phases, pim_counts, tot, seen, e_counts, float(e_active[0]))


def _store_boundary(memo, ls: np.ndarray, boundary_key: np.ndarray, row: np.ndarray, flush: np.ndarray) -> None:
    """Store the boundary entry the loop asked for: the instruction's entry `row` plus the boundary
    flush `flush` (a `pend` row) before it."""
    out = row.copy()
    b = memo.layout.boundary
    out[b:b + N_CMDS] = flush[:N_CMDS]
    out[b + B_END] = flush[PD_END] - flush[PD_START]
    out[b + B_ACTIVE] = flush[PD_ACTIVE]
    out[b + B_SWITCHES] = flush[PD_SWITCHES]
    memo.insert(int(ls[LS_BOUNDARY_SIG]), boundary_key, int(ls[LS_BOUNDARY_LEN]), int(ls[LS_BOUNDARY_HASH]), out, None)


def _sync(system, ls: np.ndarray, tot: np.ndarray) -> None:
    """Hand what the loop changed to `system`'s Python counters (and clear the loop's copies)."""
    system.tick = int(ls[LS_TICK])
    system.row_hits += int(tot[T_SYS_ROW_HITS])
    system.row_misses += int(tot[T_SYS_ROW_MISSES])
    system.bytes_in += int(tot[T_SYS_BYTES_IN])
    system.bytes_out += int(tot[T_SYS_BYTES_OUT])
    system.macs += int(tot[T_SYS_MACS])
    system.active_channel_cycles += int(tot[T_SYS_ACTIVE])
    system.mode_switches += int(tot[T_SYS_MODE_SWITCHES])
    tot[T_SYS_ROW_HITS:] = 0
    system.memo_hits += int(ls[LS_HITS])
    ls[LS_HITS] = 0
    system._note_refreshes()
