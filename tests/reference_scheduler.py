"""A plain reference of the request controller, for tests: a decision at every tick, and every
queued request scanned in age order, with no per-bank lists, cached bounds or skipped ticks.
It shares with the kernel only the device model (`earliest`, `issue`) and `due_refresh`, so it
checks the kernel's scheduling data structures against the policy they implement."""

import numpy as np

from hwsim.dram_pim.commands import Cmd
from hwsim.dram_pim.device import Device, earliest, issue
from hwsim.dram_pim.refresh import due_refresh
from hwsim.mapping.address import decode

ACT, PRE, RD, WR, RDA, WRA = (int(c) for c in (Cmd.ACT, Cmd.PRE, Cmd.RD, Cmd.WR, Cmd.RDA, Cmd.WRA))


def reference_schedule(spec, addresses, is_write, arrive_cycle=None, max_ticks=10_000_000):
    """(accept, done, row_class, [(tick, cmd, bank, row, column)]) as `controller.simulate`
    defines them (row_class 0 hit, 1 miss, 2 conflict)."""
    c, o = spec.controller, spec.organization
    n = len(addresses)
    f = decode(spec, addresses)
    dev = Device(spec)
    st, open_row = dev.state, dev.open_row
    bank = dev.bank_index(f["channel"], f["rank"], f["bankgroup"], f["bank"]).astype(np.int64)
    row, col, ch_of = f["row"].astype(np.int64), f["column"].astype(np.int64), f["channel"].astype(np.int64)
    is_write = np.asarray(is_write, dtype=bool)
    rd_lat, wr_lat = spec.timing.nCL + spec.timing.nBL, spec.timing.nCWL + spec.timing.nBL
    caps = (c.read_queue, c.write_queue)
    bpr = o.bankgroups * o.banks_per_group
    queues = [[[], []] for _ in range(o.channels)]       # [channel][read 0 / write 1]: age order
    write_mode = [False] * o.channels
    next_ref = np.full(o.channels * o.ranks, spec.timing.nREFI, dtype=np.int64)
    activated = np.zeros(n, dtype=bool)
    n_act = np.zeros(dev.n_banks, dtype=np.int64)
    accept, done = np.full(n, -1, dtype=np.int64), np.full(n, -1, dtype=np.int64)
    cls = np.full(n, -1, dtype=np.int8)
    log = []
    fe, mem = c.frontend_clock_ratio, c.memory_clock_ratio
    nxt, slot, last_accept, n_done, t = 0, 0, -1, 0, 0
    while n_done < n:
        assert t < max_ticks, "reference controller did not finish"
        # Admission, in trace order (as simulate's docstring and the kernel describe it).
        while nxt < n:
            if arrive_cycle is None:
                if t > 0:
                    slot = max(slot, ((t - 1) * fe) // mem + 1)
                avail = (slot * mem + fe - 1) // fe
            else:
                avail = max(last_accept + 1, int(arrive_cycle[nxt]))
            w = int(is_write[nxt])
            q = queues[ch_of[nxt]][w]
            if avail > t or len(q) >= caps[w]:
                break
            q.append(nxt)
            accept[nxt] = last_accept = t
            nxt += 1
            slot += 1
        for ch in range(o.channels):
            sel, cmd, sel_bank = -1, -1, -1
            # (1) The oldest activated request whose column command is ready.
            for w in (0, 1):
                for i in queues[ch][w]:
                    cc = WR if w else RD
                    if activated[i] and earliest(st, cc, bank[i]) <= t and (sel == -1 or i < sel):
                        sel, cmd, sel_bank = i, cc, bank[i]
            blocked = False
            if sel == -1 and c.refresh == "all_bank":
                rc, rb, blocked, _ = due_refresh(st, open_row, n_act, next_ref, ch, o.ranks, bpr, t,
                                                 spec.timing.nREFI)
                if rc != -1:
                    sel, cmd, sel_bank = -2, rc, rb
            if sel == -1 and not blocked:
                nr, nw = len(queues[ch][0]), len(queues[ch][1])
                if not write_mode[ch]:
                    write_mode[ch] = nw > c.write_high_watermark * caps[1] or nr == 0
                elif nw < c.write_low_watermark * caps[1] and nr != 0:
                    write_mode[ch] = False
                w = int(write_mode[ch])
                q = queues[ch][w][:1] if c.scheduler == "fcfs" else queues[ch][w]
                first_ready, first_hit = None, None
                for i in q:
                    if activated[i]:
                        continue
                    b = bank[i]
                    if open_row[b] == row[i]:
                        cc = WR if w else RD
                    elif open_row[b] == -1:
                        cc = ACT
                    elif n_act[b] == 0:
                        cc = PRE
                    else:
                        continue
                    if earliest(st, cc, b) > t:
                        continue
                    if first_ready is None:
                        first_ready = (i, cc, b)
                    if cc in (RD, WR) and first_hit is None:
                        first_hit = (i, cc, b)
                pick = first_hit if (c.scheduler == "frfcfs" and first_hit) else first_ready
                if pick:
                    sel, cmd, sel_bank = pick
            if sel == -1:
                continue
            r = int(row[sel]) if sel >= 0 else -1
            if sel >= 0 and cmd in (RD, WR) and c.page_policy != "open":
                others_on_bank = n_act[sel_bank] - int(activated[sel])
                if c.page_policy == "closed_always":
                    auto = others_on_bank == 0
                else:
                    auto = not any(j != sel and bank[j] == sel_bank and row[j] == r
                                   for qq in queues[ch] for j in qq)
                if auto:
                    cmd = RDA if cmd == RD else WRA
            issue(st, cmd, sel_bank, r, t)
            log.append((t, cmd, int(sel_bank), r, int(col[sel]) if sel >= 0 else -1))
            if sel < 0:
                continue
            if cls[sel] < 0:
                cls[sel] = 0 if cmd not in (ACT, PRE) else (1 if cmd == ACT else 2)
            if cmd == ACT:
                activated[sel] = True
                n_act[sel_bank] += 1
            elif cmd != PRE:
                if activated[sel]:
                    activated[sel] = False
                    n_act[sel_bank] -= 1
                done[sel] = t + (wr_lat if is_write[sel] else rd_lat)
                n_done += 1
                queues[ch][int(is_write[sel])].remove(sel)
        t += 1
    return accept, done, cls, log
