"""Timing rules as records, compiled once into int64 tables for the scheduling kernels.

A rule says: after a command in `prev` is issued to a node at `level`, a command in `next` to any
bank under that same node must wait `latency` cycles (level OTHER_RANKS: to any bank of the
*other* ranks of the same channel). A rule with `window` > 1 says: a command in
`next` must wait `latency` after the `window`-th most recent `prev` at that node (tFAW).
Commands of RANK scope act on every bank of the rank, so bank- and bank-group-level rules apply
to each of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from hwsim.dram_pim.commands import N_CMDS, Cmd
from hwsim.dram_pim.spec import Timing

CHANNEL, RANK_LEVEL, BANKGROUP, BANK_LEVEL, OTHER_RANKS = 0, 1, 2, 3, 4
LEVEL_NAMES = ("channel", "rank", "bankgroup", "bank", "other ranks")
N_LEVELS = len(LEVEL_NAMES)

_ACTS = (Cmd.ACT, Cmd.ACT_AB)
_PRES = (Cmd.PRE, Cmd.PREA)
_COL_RD = (Cmd.RD, Cmd.RDA)
_COL_WR = (Cmd.WR, Cmd.WRA, Cmd.UPD)
_BUS_RD = (Cmd.RD, Cmd.RDA, Cmd.RD_MAC)
_BUS_WR = (Cmd.WR, Cmd.WRA, Cmd.UPD, Cmd.WR_GB, Cmd.WR_BIAS)
# The PIM register path: RD_MAC reads the MAC registers (latency nCLREG, not the array's nCL) and
# WR_GB / WR_BIAS write the global buffer or the accumulators (nCWLREG, not nCWL).
_ARRAY_RD, _REG_RD = (Cmd.RD, Cmd.RDA), (Cmd.RD_MAC,)
_ARRAY_WR, _REG_WR = (Cmd.WR, Cmd.WRA, Cmd.UPD), (Cmd.WR_GB, Cmd.WR_BIAS)
_OPENING = (Cmd.ACT, Cmd.ACT_AB, Cmd.REFab, Cmd.REFpb)


@dataclass(frozen=True)
class Rule:
    name: str
    level: int
    prev: tuple[Cmd, ...]
    next: tuple[Cmd, ...]
    latency: Callable[[Timing], int]
    window: int = 1


RULES: tuple[Rule, ...] = (
    # Same bank.
    Rule("nRCD_RD", BANK_LEVEL, _ACTS, _COL_RD, lambda t: t.nRCD_RD),
    Rule("nRCD_WR", BANK_LEVEL, _ACTS, _COL_WR, lambda t: t.nRCD_WR),
    Rule("nRCD_MAC", BANK_LEVEL, _ACTS, (Cmd.MAC_AB,), lambda t: t.rcd_mac),
    Rule("nRAS", BANK_LEVEL, _ACTS, _PRES, lambda t: t.nRAS),
    # JEDEC tRC is ACT to ACT *or REF* (Ramulator 2 DDR4/GDDR6/HBM2: ACT -> REFab nRC).
    Rule("nRC", BANK_LEVEL, _ACTS, _ACTS + (Cmd.REFab, Cmd.REFpb), lambda t: t.nRC),
    # tRAS lockout: a bank closes (PRE, or the auto-precharge of RDA/WRA) no earlier than nRAS
    # after its ACT, and reopens nRP after that; binds only where nRC < nRAS + nRP (rounding).
    Rule("nRAS+nRP", BANK_LEVEL, _ACTS, _OPENING, lambda t: t.nRAS + t.nRP),
    Rule("nRP", BANK_LEVEL, _PRES, _OPENING, lambda t: t.nRP),
    Rule("nRTP", BANK_LEVEL, (Cmd.RD, Cmd.MAC_AB), _PRES, lambda t: t.nRTP),
    Rule("nWR", BANK_LEVEL, (Cmd.WR,), _PRES, lambda t: t.nCWL + t.nBL + t.nWR),
    Rule("nWR_UPD", BANK_LEVEL, (Cmd.UPD,), _PRES, lambda t: t.nCWL + t.nBL + t.nRMW + t.nWR),
    Rule("nRMW", BANK_LEVEL, (Cmd.UPD,), _COL_RD + _COL_WR, lambda t: t.nCWL + t.nBL + t.nRMW),
    Rule("nRTP+nRP", BANK_LEVEL, (Cmd.RDA,), _OPENING, lambda t: t.nRTP + t.nRP),
    Rule("nWR+nRP", BANK_LEVEL, (Cmd.WRA,), _OPENING, lambda t: t.nCWL + t.nBL + t.nWR + t.nRP),
    Rule("nRFC", BANK_LEVEL, (Cmd.REFab,), _OPENING, lambda t: t.nRFC),
    Rule("nRFCpb", BANK_LEVEL, (Cmd.REFpb,), _OPENING, lambda t: t.nRFCpb),
    # Same bank group.
    Rule("nCCD_L", BANKGROUP, _COL_RD, _COL_RD, lambda t: t.nCCD_L),
    Rule("nCCD_L_WR", BANKGROUP, _COL_WR, _COL_WR, lambda t: t.nCCD_L),
    Rule("nWTR_L", BANKGROUP, _COL_WR, _COL_RD, lambda t: t.nCWL + t.nBL + t.nWTR_L),
    Rule("nRRD_L", BANKGROUP, (Cmd.ACT,), (Cmd.ACT,), lambda t: t.nRRD_L),
    # Same rank.
    Rule("nCCD_S", RANK_LEVEL, _COL_RD, _COL_RD, lambda t: t.nCCD_S),
    Rule("nCCD_S_WR", RANK_LEVEL, _COL_WR, _COL_WR, lambda t: t.nCCD_S),
    Rule("nWTR_S", RANK_LEVEL, _COL_WR, _COL_RD + (Cmd.RD_MAC,), lambda t: t.nCWL + t.nBL + t.nWTR_S),
    Rule("nRRD_S", RANK_LEVEL, (Cmd.ACT,), (Cmd.ACT,), lambda t: t.nRRD_S),
    # An all-bank ACT with any other ACT of the rank (the checker's nRRD_AB).
    Rule("nRRD_AB", RANK_LEVEL, (Cmd.ACT_AB,), _ACTS, lambda t: t.nRRD_L),
    Rule("nRRD_AB_ACT", RANK_LEVEL, (Cmd.ACT,), (Cmd.ACT_AB,), lambda t: t.nRRD_L),
    Rule("nFAW", RANK_LEVEL, (Cmd.ACT,), (Cmd.ACT,), lambda t: t.nFAW, window=4),
    Rule("nCCD_MAC", RANK_LEVEL, (Cmd.MAC_AB,), (Cmd.MAC_AB,), lambda t: t.nCCD_L),
    Rule("nGB_MAC", RANK_LEVEL, _REG_WR, (Cmd.MAC_AB,), lambda t: t.nCWLREG + t.nBL + t.nGB_MAC),
    Rule("nWTR_REG", RANK_LEVEL, _REG_WR, _COL_RD + (Cmd.RD_MAC,), lambda t: t.nCWLREG + t.nBL + t.nWTR_S),
    Rule("nMAC_RES", RANK_LEVEL, (Cmd.MAC_AB,), (Cmd.RD_MAC,), lambda t: t.nMAC_RES),
    # AiM reads the MAC registers with nCLREG = 0: the accumulator is free once RD_MAC has latched it;
    # one column slot (nCCD_L) is reserved before the next MAC accumulates.
    Rule("nRES_MAC", RANK_LEVEL, (Cmd.RD_MAC,), (Cmd.MAC_AB,), lambda t: t.nCCD_L),
    # Same channel: the data bus, shared by every rank of the channel. Read-to-write turnaround is
    # a bus rule (DRAMsim3 uses the same RL + BL - WL + tRTRS for other ranks), so it holds across
    # ranks too; write-to-read is nWTR_S/L within a rank and, across ranks, the write burst must
    # have left the bus before the read burst arrives (a gap <= 0, never binding, unless nCL is small).
    # Each pair with its own read and write latencies (aim_simulator's four RD/RDMAC16 -> WR/WRGB rules).
    Rule("nRTW", CHANNEL, _ARRAY_RD, _ARRAY_WR, lambda t: t.nCL + t.nBL + t.nRTW - t.nCWL),
    Rule("nRTW_RD_REG", CHANNEL, _ARRAY_RD, _REG_WR, lambda t: t.nCL + t.nBL + t.nRTW - t.nCWLREG),
    Rule("nRTW_REG_RD", CHANNEL, _REG_RD, _ARRAY_WR, lambda t: t.nCLREG + t.nBL + t.nRTW - t.nCWL),
    Rule("nRTW_REG", CHANNEL, _REG_RD, _REG_WR, lambda t: t.nCLREG + t.nBL + t.nRTW - t.nCWLREG),
    # Rank switching (DRAMsim3 read_to_read_o = BL + tRTRS, write_to_read_o = WL + BL + tRTRS - RL;
    # WR -> WR across ranks is nBL, as in DRAMsim3 and Ramulator 2).
    Rule("nRTRS", OTHER_RANKS, _BUS_RD, _BUS_RD, lambda t: t.nBL + t.nRTRS),
    Rule("nWTR_BUS", OTHER_RANKS, _BUS_WR, _BUS_RD, lambda t: t.nCWL + t.nBL + t.nRTRS - t.nCL),
    Rule("nBL_RD", CHANNEL, _BUS_RD, _BUS_RD, lambda t: t.nBL),
    Rule("nBL_WR", CHANNEL, _BUS_WR, _BUS_WR, lambda t: t.nBL),
)


@dataclass(frozen=True)
class CompiledTiming:
    """Rule tables for the kernels: `lat[level, prev, next]` (-1: no rule) and window rules."""

    lat: np.ndarray          # int64[N_LEVELS, N_CMDS, N_CMDS]
    win_level: np.ndarray    # int64[W]
    win_count: np.ndarray    # int64[W]
    win_lat: np.ndarray      # int64[W]
    win_prev: np.ndarray     # bool[W, N_CMDS]
    win_next: np.ndarray     # bool[W, N_CMDS]


def compile_timing(timing: Timing, rules: tuple[Rule, ...] = RULES) -> CompiledTiming:
    lat = np.full((N_LEVELS, N_CMDS, N_CMDS), -1, dtype=np.int64)
    windows = []
    for rule in rules:
        value = int(rule.latency(timing))
        if rule.window > 1:
            # per node, and at most at the rank level: the request scheduler's rank floors
            # (device.rank_floor) hold every window rule
            assert rule.level <= RANK_LEVEL, "window rules bind at the channel or rank level"
            if value > 0:
                windows.append((rule, value))
            continue
        for p in rule.prev:
            for n in rule.next:
                lat[rule.level, p, n] = max(lat[rule.level, p, n], value)
    w = max(len(windows), 1)
    win_level = np.zeros(w, dtype=np.int64)
    win_count = np.ones(w, dtype=np.int64)
    win_lat = np.zeros(w, dtype=np.int64)
    win_prev = np.zeros((w, N_CMDS), dtype=np.bool_)
    win_next = np.zeros((w, N_CMDS), dtype=np.bool_)
    for i, (rule, value) in enumerate(windows):
        win_level[i], win_count[i], win_lat[i] = rule.level, rule.window, value
        win_prev[i, list(rule.prev)] = True
        win_next[i, list(rule.next)] = True
    return CompiledTiming(lat, win_level, win_count, win_lat, win_prev, win_next)
