"""DRAM and PIM commands as data: an IntEnum plus one metadata row per command.

PIM commands (all-bank ACT, all-bank MAC, global-buffer write, MAC-result read, bias write and
near-memory update) are rows of the same table, timed by the same rules and seen by the checker.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np


class Cmd(IntEnum):
    ACT = 0      # activate one row in one bank
    PRE = 1      # precharge one bank
    PREA = 2     # precharge all banks of a rank (also the PIM all-bank PRE)
    RD = 3
    WR = 4
    RDA = 5      # read with auto-precharge
    WRA = 6      # write with auto-precharge
    REFab = 7    # all-bank refresh
    REFpb = 8    # per-bank refresh
    ACT_AB = 9   # PIM: activate the same row in every bank of a rank (AiM ACT16)
    MAC_AB = 10  # PIM: one column MAC in every bank against the global buffer (AiM MAC16)
    WR_GB = 11   # PIM: write one burst into the channel's global buffer
    RD_MAC = 12  # PIM: read the banks' MAC results (one burst)
    WR_BIAS = 13  # PIM: write one burst into the banks' MAC accumulators
    UPD = 14     # near-memory update: read-modify-write add at the bank (T3 NMC)


BANK, RANK = 0, 1          # scope of a command: one bank, or every bank of a rank
BUS_NONE, BUS_READ, BUS_WRITE = 0, 1, 2
NEED_ANY, NEED_OPEN, NEED_CLOSED, NEED_ALL_OPEN, NEED_ALL_CLOSED = 0, 1, 2, 3, 4
ROW_KEEP, ROW_OPEN, ROW_CLOSE = 0, 1, 2


@dataclass(frozen=True)
class CmdMeta:
    scope: int       # BANK or RANK
    need: int        # bank-state precondition (NEED_*)
    row_effect: int  # ROW_OPEN, ROW_CLOSE (after the command) or ROW_KEEP
    bus: int         # data on the channel bus: BUS_READ (device to host), BUS_WRITE, BUS_NONE
    is_refresh: bool = False


META: dict[Cmd, CmdMeta] = {
    Cmd.ACT: CmdMeta(BANK, NEED_CLOSED, ROW_OPEN, BUS_NONE),
    Cmd.PRE: CmdMeta(BANK, NEED_ANY, ROW_CLOSE, BUS_NONE),
    Cmd.PREA: CmdMeta(RANK, NEED_ANY, ROW_CLOSE, BUS_NONE),
    Cmd.RD: CmdMeta(BANK, NEED_OPEN, ROW_KEEP, BUS_READ),
    Cmd.WR: CmdMeta(BANK, NEED_OPEN, ROW_KEEP, BUS_WRITE),
    Cmd.RDA: CmdMeta(BANK, NEED_OPEN, ROW_CLOSE, BUS_READ),
    Cmd.WRA: CmdMeta(BANK, NEED_OPEN, ROW_CLOSE, BUS_WRITE),
    Cmd.REFab: CmdMeta(RANK, NEED_ALL_CLOSED, ROW_KEEP, BUS_NONE, True),
    Cmd.REFpb: CmdMeta(BANK, NEED_CLOSED, ROW_KEEP, BUS_NONE, True),
    Cmd.ACT_AB: CmdMeta(RANK, NEED_ALL_CLOSED, ROW_OPEN, BUS_NONE),
    Cmd.MAC_AB: CmdMeta(RANK, NEED_ALL_OPEN, ROW_KEEP, BUS_NONE),
    Cmd.WR_GB: CmdMeta(RANK, NEED_ANY, ROW_KEEP, BUS_WRITE),
    Cmd.RD_MAC: CmdMeta(RANK, NEED_ANY, ROW_KEEP, BUS_READ),
    Cmd.WR_BIAS: CmdMeta(RANK, NEED_ANY, ROW_KEEP, BUS_WRITE),
    Cmd.UPD: CmdMeta(BANK, NEED_OPEN, ROW_KEEP, BUS_WRITE),
}

N_CMDS = len(Cmd)
COLUMN_CMDS = (Cmd.RD, Cmd.WR, Cmd.RDA, Cmd.WRA, Cmd.UPD)


def meta_array() -> np.ndarray:
    """int64[N_CMDS, 5]: scope, need, row_effect, bus, is_refresh (for numba kernels)."""
    out = np.zeros((N_CMDS, 5), dtype=np.int64)
    for cmd, m in META.items():
        out[cmd] = (m.scope, m.need, m.row_effect, m.bus, int(m.is_refresh))
    return out


def parse_cmd(name: str) -> Cmd:
    """Command from its name (as written in command traces)."""
    return Cmd[name]
