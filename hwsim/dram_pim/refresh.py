"""All-bank refresh as a request-level controller issues it, shared by the DRAM controller
(`scheduler.py`) and T3's memory controller (`hwsim/t3/memctrl.py`): when a rank's refresh is due,
PREA while any of its banks is open (unless an activated request still waits for its column
command), then REFab; a due refresh blocks the rank's other requests."""

from __future__ import annotations

import numpy as np
from numba import njit

from hwsim.dram_pim.commands import Cmd
from hwsim.dram_pim.device import earliest

PREA, REFAB = int(Cmd.PREA), int(Cmd.REFab)
INF = np.int64(1) << 62


@njit(cache=True, inline="always")
def due_refresh(st, open_row, activated_per_bank, next_ref, ch, ranks, bpr, t, nrefi):
    """The refresh command channel `ch` issues at tick `t`, if any.

    Returns (cmd, bank, blocks, next_t): `cmd` PREA or REFAB to `bank` (-1: none now); `blocks`
    whether a refresh is due (other requests wait); `next_t` the earliest tick at which a refresh
    could issue or fall due (INF: none). Choosing a REFab advances that rank's `next_ref` by nrefi."""
    next_t = INF
    blocks = False
    for r in range(ranks):
        gr = ch * ranks + r
        if t < next_ref[gr]:
            next_t = min(next_t, next_ref[gr])
            continue
        blocks = True
        first = gr * bpr
        any_open, any_activated = False, False  # loops, not .sum(): each numpy call costs compile time
        for b in range(first, first + bpr):
            if open_row[b] != -1:
                any_open = True
            if activated_per_bank[b] > 0:
                any_activated = True
        c = PREA if any_open else REFAB
        if c == PREA and any_activated:
            continue
        e = earliest(st, c, first)
        if e <= t:
            if c == REFAB:
                next_ref[gr] += nrefi
            return c, first, blocks, next_t
        next_t = min(next_t, e)
    return -1, -1, blocks, next_t
