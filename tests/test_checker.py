"""Independent protocol checker: one violating (by exactly one cycle) and one passing trace per
timing rule, bank-state rules, range checks, CSV parse errors, report/CLI glue and speed."""

from __future__ import annotations

import ast
import json
import time
from pathlib import Path

import pytest

from hwsim.dram_pim import checker as chk
from hwsim.dram_pim.checker import (CheckReport, TraceCmd, Violation, check_file, check_trace,
                                    read_command_trace, write_command_trace)
from hwsim.dram_pim.commands import Cmd
from hwsim.dram_pim.spec import dram_spec_from_dict
from hwsim.errors import InputError

ORG = {"channels": 2, "ranks": 2, "bankgroups": 2, "banks_per_group": 4, "rows": 64, "columns": 16,
       "burst_bytes": 32}
# Distinct values so that no rule masks another in the traces below.
TIMING = {"tCK_ps": 1000, "nBL": 2, "nCL": 11, "nCWL": 5, "nRCD_RD": 16, "nRCD_WR": 9, "nRP": 14,
          "nRAS": 30, "nRC": 47, "nWR": 15, "nRTP": 6, "nCCD_S": 3, "nCCD_L": 4, "nRRD_S": 5,
          "nRRD_L": 7, "nWTR_S": 3, "nWTR_L": 8, "nFAW": 40, "nRFC": 100, "nREFI": 1000,
          "nRFCpb": 60, "nRTW": 4, "nRCD_MAC": 17, "nMAC_RES": 19, "nGB_MAC": 21, "nRMW": 12,
          "nCLREG": 1, "nCWLREG": 2}
# Derived gaps: nWR 5+2+15=22, nWR_UPD 5+2+12+15=34, nRMW 5+2+12=19, nRTP+nRP 20, nWR+nRP 36,
# nWTR_L 5+2+8=15, nWTR_S 5+2+3=10, nRTW 11+2+4-5=12, nRES_MAC = nCCD_L = 4; the register path
# (RD_MAC: nCLREG 1, WR_GB/WR_BIAS: nCWLREG 2): nGB_MAC 2+2+21=25, nWTR_REG 2+2+3=7,
# nRTW_RD_REG 11+2+4-2=15, nRTW_REG_RD 1+2+4-5=2, nRTW_REG 1+2+4-2=5.


def make_spec(**timing):
    return dram_spec_from_dict({"organization": ORG, "timing": {**TIMING, **timing}, "name": "test"})


SPEC = make_spec()


def c(t, name, bg=-1, bank=-1, row=-1, col=-1, ch=0, rank=0):
    return TraceCmd(t, ch, rank, bg, bank, row, col, Cmd[name])


# Shorthands (bank-scope commands default to bank group 0, bank 0, row 5, column 0).
def ACT(t, bg=0, b=0, row=5, **kw): return c(t, "ACT", bg, b, row, **kw)
def PRE(t, bg=0, b=0, **kw): return c(t, "PRE", bg, b, **kw)
def COL(name, t, bg=0, b=0, row=5, col=0, **kw): return c(t, name, bg, b, row, col, **kw)
def RK(name, t, row=-1, col=-1, **kw): return c(t, name, row=row, col=col, **kw)


def rules(trace, spec=SPEC, **kw):
    return [v.rule for v in check_trace(spec, trace, **kw)]


# (rule, required gap, trace builder taking d = 0 (exactly the minimum) or -1 (one cycle short), spec)
CASES = {
    "nRCD_RD": ("nRCD_RD", 16, lambda d: [ACT(0), COL("RD", 16 + d)]),
    "nRCD_RD/RDA": ("nRCD_RD", 16, lambda d: [ACT(0), COL("RDA", 16 + d)]),
    "nRCD_RD/ACT_AB": ("nRCD_RD", 16, lambda d: [RK("ACT_AB", 0, row=5), COL("RD", 16 + d, bg=1, b=3)]),
    "nRCD_WR": ("nRCD_WR", 9, lambda d: [ACT(0), COL("WR", 9 + d)]),
    "nRCD_WR/UPD": ("nRCD_WR", 9, lambda d: [ACT(0), COL("UPD", 9 + d)]),
    "nRCD_WR/WRA": ("nRCD_WR", 9, lambda d: [ACT(0), COL("WRA", 9 + d)]),
    "nRCD_MAC": ("nRCD_MAC", 17, lambda d: [RK("ACT_AB", 0, row=5), RK("MAC_AB", 17 + d, col=0)]),
    "nRAS": ("nRAS", 30, lambda d: [ACT(0), PRE(30 + d)]),
    "nRAS/PREA": ("nRAS", 30, lambda d: [ACT(0, bg=1, b=3), RK("PREA", 30 + d)]),
    "nRAS/ACT_AB->PRE": ("nRAS", 30, lambda d: [RK("ACT_AB", 0, row=5), PRE(30 + d, bg=0, b=1)]),
    "nRC": ("nRC", 47, lambda d: [ACT(0), PRE(30), ACT(47 + d)]),
    "nRC/ACT_AB": ("nRC", 47, lambda d: [RK("ACT_AB", 0, row=5), RK("PREA", 30), RK("ACT_AB", 47 + d, row=6)]),
    "nRP": ("nRP", 14, lambda d: [ACT(0), PRE(40), ACT(54 + d)]),
    "nRP/PREA->REFab": ("nRP", 14, lambda d: [ACT(0), RK("PREA", 40), RK("REFab", 54 + d)]),
    "nRP/PRE->REFpb": ("nRP", 14, lambda d: [ACT(0), PRE(40), c(54 + d, "REFpb", 0, 0)]),
    "nRP/PRE->ACT_AB": ("nRP", 14, lambda d: [ACT(0, bg=1, b=2), PRE(40, bg=1, b=2), RK("ACT_AB", 54 + d, row=1)]),
    "nRTP": ("nRTP", 6, lambda d: [ACT(0), COL("RD", 30), PRE(36 + d)]),
    "nRTP/MAC_AB": ("nRTP", 6, lambda d: [RK("ACT_AB", 0, row=5), RK("MAC_AB", 30, col=1), RK("PREA", 36 + d)]),
    "nWR": ("nWR", 22, lambda d: [ACT(0), COL("WR", 30), PRE(52 + d)]),
    "nWR_UPD": ("nWR_UPD", 34, lambda d: [ACT(0), COL("UPD", 30), PRE(64 + d)]),
    "nRMW/WR": ("nRMW", 19, lambda d: [ACT(0), COL("UPD", 10), COL("WR", 29 + d)]),
    "nRMW/RD": ("nRMW", 19, lambda d: [ACT(0), COL("UPD", 10), COL("RD", 29 + d)]),
    "nRTP+nRP": ("nRTP+nRP", 20, lambda d: [ACT(0), COL("RDA", 30), ACT(50 + d)]),
    "nWR+nRP": ("nWR+nRP", 36, lambda d: [ACT(0), COL("WRA", 30), ACT(66 + d)]),
    "nRFC": ("nRFC", 100, lambda d: [RK("REFab", 0), ACT(100 + d, bg=1, b=1)]),
    "nRFC/ACT_AB": ("nRFC", 100, lambda d: [RK("REFab", 0), RK("ACT_AB", 100 + d, row=3)]),
    "nRFCpb": ("nRFCpb", 60, lambda d: [c(0, "REFpb", 0, 0), ACT(60 + d)]),
    # Same bank group.
    "nCCD_L/RD": ("nCCD_L", 4, lambda d: [ACT(0), ACT(7, b=1), COL("RD", 30), COL("RD", 34 + d, b=1)]),
    "nCCD_L/WR": ("nCCD_L", 4, lambda d: [ACT(0), ACT(7, b=1), COL("WR", 30), COL("WR", 34 + d, b=1)]),
    "nWTR_L": ("nWTR_L", 15, lambda d: [ACT(0), ACT(7, b=1), COL("WR", 30), COL("RD", 45 + d, b=1)]),
    "nRRD_L": ("nRRD_L", 7, lambda d: [ACT(0), ACT(7 + d, b=1)]),
    # Same rank.
    "nCCD_S/RD": ("nCCD_S", 3, lambda d: [ACT(0), ACT(7, bg=1), COL("RD", 30), COL("RD", 33 + d, bg=1)]),
    "nCCD_S/WR": ("nCCD_S", 3, lambda d: [ACT(0), ACT(7, bg=1), COL("WR", 30), COL("WR", 33 + d, bg=1)]),
    "nWTR_S": ("nWTR_S", 10, lambda d: [ACT(0), ACT(7, bg=1), COL("WR", 30), COL("RD", 40 + d, bg=1)]),
    "nWTR_S/RD_MAC": ("nWTR_S", 10, lambda d: [ACT(0), COL("WR", 30), RK("RD_MAC", 40 + d)]),
    "nRTW": ("nRTW", 12, lambda d: [ACT(0), ACT(7, bg=1), COL("RD", 30), COL("WR", 42 + d, bg=1)]),
    "nRTW_REG": ("nRTW_REG", 5, lambda d: [RK("RD_MAC", 0), RK("WR_GB", 5 + d)]),
    "nRTW_RD_REG": ("nRTW_RD_REG", 15, lambda d: [ACT(0), COL("RD", 30), RK("WR_GB", 45 + d)]),
    "nRTW_REG_RD": ("nRTW_REG_RD", 2, lambda d: [ACT(0), RK("RD_MAC", 20), COL("WR", 22 + d)]),
    "nWTR_REG": ("nWTR_REG", 7, lambda d: [ACT(0), RK("WR_GB", 20), COL("RD", 27 + d)]),
    "nWTR_REG/RD_MAC": ("nWTR_REG", 7, lambda d: [RK("WR_BIAS", 0), RK("RD_MAC", 7 + d)]),
    "nRRD_S": ("nRRD_S", 5, lambda d: [ACT(0), ACT(5 + d, bg=1)]),
    # The data bus is shared by the ranks of a channel: RD -> WR turnaround also across ranks.
    "nRTW/ranks": ("nRTW", 12, lambda d: [ACT(0), ACT(1, rank=1), COL("RD", 30), COL("WR", 42 + d, rank=1)]),
    # JEDEC tRC is ACT to ACT or REF (PRE at 30 + nRP = 44 < 47).
    "nRC/REFab": ("nRC", 47, lambda d: [ACT(0), PRE(30), RK("REFab", 47 + d)]),
    "nRC/REFpb": ("nRC", 47, lambda d: [ACT(0), PRE(30), c(47 + d, "REFpb", 0, 0)]),
    "nFAW": ("nFAW", 40, lambda d: [ACT(0), ACT(7, bg=1), ACT(14, b=1), ACT(21, bg=1, b=1),
                                    ACT(40 + d, b=2)]),
    "nCCD_MAC": ("nCCD_MAC", 4, lambda d: [RK("ACT_AB", 0, row=5), RK("MAC_AB", 17, col=0),
                                           RK("MAC_AB", 21 + d, col=1)]),
    "nGB_MAC/WR_GB": ("nGB_MAC", 25, lambda d: [RK("ACT_AB", 0, row=5), RK("WR_GB", 1), RK("MAC_AB", 26 + d, col=0)]),
    "nGB_MAC/WR_BIAS": ("nGB_MAC", 25, lambda d: [RK("ACT_AB", 0, row=5), RK("WR_BIAS", 1),
                                                  RK("MAC_AB", 26 + d, col=0)]),
    "nMAC_RES": ("nMAC_RES", 19, lambda d: [RK("ACT_AB", 0, row=5), RK("MAC_AB", 17, col=0), RK("RD_MAC", 36 + d)]),
    "nRES_MAC/MAC_AB": ("nRES_MAC", 4, lambda d: [RK("ACT_AB", 0, row=5), RK("RD_MAC", 20),
                                                  RK("MAC_AB", 24 + d, col=0)]),
    # Same channel (data bus), also across ranks.
    "nBL_RD": ("nBL_RD", 2, lambda d: [RK("RD_MAC", 0), RK("RD_MAC", 2 + d)]),
    "nBL_RD/ranks": ("nBL_RD", 2, lambda d: [ACT(0), ACT(1, rank=1), COL("RD", 30),
                                            COL("RD", 32 + d, rank=1)]),
    "nBL_WR": ("nBL_WR", 2, lambda d: [RK("WR_GB", 0), RK("WR_GB", 2 + d)]),
    "nBL_WR/ranks": ("nBL_WR", 2, lambda d: [ACT(0), ACT(1, rank=1), COL("WR", 30),
                                            COL("WR", 32 + d, rank=1)]),
    "one_command_per_cycle": ("one_command_per_cycle", 1,
                              lambda d: [ACT(5), RK("REFab", 6 + d, rank=1)]),
}

# nRRD_AB (ACT_AB with any ACT of the rank) always sits under nRC with the spec above, because
# ACT_AB needs every bank closed; give it its own spec where nRRD_L > nRC.
SPEC_RRD = make_spec(nRRD_L=60)
CASES_RRD = {
    "nRRD_AB/ACT->ACT_AB": ("nRRD_AB", 60, lambda d: [ACT(0), RK("PREA", 30), RK("ACT_AB", 60 + d, row=1)]),
    "nRRD_AB/ACT_AB->ACT": ("nRRD_AB", 60, lambda d: [RK("ACT_AB", 0, row=1), RK("PREA", 30), ACT(60 + d)]),
    "nRRD_AB/ACT_AB->ACT_AB": ("nRRD_AB", 60, lambda d: [RK("ACT_AB", 0, row=1), RK("PREA", 30),
                                                         RK("ACT_AB", 60 + d, row=2)]),
}
# Across ranks a read burst may not reach the bus before a write burst has left it: the gap
# nCWL + nBL - nCL is positive only for a small nCL (3 here: 5 + 2 - 3 = 4).
SPEC_CL = make_spec(nCL=3)
CASES_CL = {
    "nWTR_BUS": ("nWTR_BUS", 4, lambda d: [ACT(0), ACT(1, rank=1), COL("WR", 30), COL("RD", 34 + d, rank=1)]),
}
# tRAS lockout of an auto-precharge: with nRC = nRAS + nRP - 1 = 43 (the allowed rounding slack),
# RDA at 16 precharges at nRAS = 30, so the next ACT waits until 30 + nRP = 44.
SPEC_RC = make_spec(nRC=43)
CASES_RC = {
    "nRAS+nRP": ("nRAS+nRP", 44, lambda d: [ACT(0), COL("RDA", 16), ACT(44 + d)]),
}
# Rank switching: with nRTRS = 3 a read burst of another rank waits nBL + 3 = 5 after a read
# burst (the write-to-read switch: test_nrtrs_only_between_ranks).
SPEC_RTRS = make_spec(nRTRS=3)
CASES_RTRS = {
    "nRTRS": ("nRTRS", 5, lambda d: [ACT(0), ACT(1, rank=1), COL("RD", 30), COL("RD", 35 + d, rank=1)]),
}
ALL_CASES = {**{k: (*v, SPEC) for k, v in CASES.items()}, **{k: (*v, SPEC_RRD) for k, v in CASES_RRD.items()},
             **{k: (*v, SPEC_RTRS) for k, v in CASES_RTRS.items()},
             **{k: (*v, SPEC_CL) for k, v in CASES_CL.items()}, **{k: (*v, SPEC_RC) for k, v in CASES_RC.items()}}


@pytest.mark.parametrize("case", sorted(ALL_CASES))
def test_rule_one_cycle_short_is_reported_with_its_gap(case):
    rule, gap, build, spec = ALL_CASES[case]
    found = check_trace(spec, build(-1))
    assert [v.rule for v in found] == [rule], [str(v) for v in found]
    v = found[0]
    assert v.required_gap == gap
    assert v.actual_gap == gap - 1
    assert v.tick - v.prev_tick == v.actual_gap


@pytest.mark.parametrize("case", sorted(ALL_CASES))
def test_rule_at_exactly_the_minimum_gap_passes(case):
    rule, gap, build, spec = ALL_CASES[case]
    found = check_trace(spec, build(0))
    assert found == [], [str(v) for v in found]


def test_every_timing_rule_has_a_case():
    named = {name for name, *_ in chk.timing_rules(SPEC.timing)} | {"nFAW", "one_command_per_cycle"}
    covered = {rule for rule, *_ in ALL_CASES.values()}
    assert named <= covered


def test_nrtrs_only_between_ranks():
    # Same rank, other bank group: nCCD_S = 3 only, whatever nRTRS.
    assert rules([ACT(0), ACT(7, bg=1), COL("RD", 30), COL("RD", 33, bg=1)], SPEC_RTRS) == []
    # nRTRS also holds on a write-to-read rank switch: 5 + 2 + 3 - 3 = 7 with nCL = 3.
    spec = make_spec(nRTRS=3, nCL=3)
    trace = lambda d: [ACT(0), ACT(1, rank=1), COL("WR", 30), COL("RD", 37 + d, rank=1)]  # noqa: E731
    assert [(v.rule, v.required_gap) for v in check_trace(spec, trace(-1))] == [("nWTR_BUS", 7)]
    assert check_trace(spec, trace(0)) == []


def test_nrcd_mac_zero_falls_back_to_nrcd_rd():
    spec = make_spec(nRCD_MAC=0)
    trace = lambda d: [RK("ACT_AB", 0, row=5), RK("MAC_AB", 16 + d, col=0)]  # noqa: E731
    found = check_trace(spec, trace(-1))
    assert [(v.rule, v.required_gap) for v in found] == [("nRCD_MAC", 16)]
    assert check_trace(spec, trace(0)) == []


def test_nfaw_zero_disables_the_window():
    spec = make_spec(nFAW=0)
    assert rules(CASES["nFAW"][2](-1), spec) == []


def test_nfaw_is_per_rank():
    # Four ACTs in rank 0, the fifth in rank 1: no window violation.
    trace = [ACT(0), ACT(7, bg=1), ACT(14, b=1), ACT(21, bg=1, b=1), ACT(30, b=2, rank=1)]
    assert rules(trace) == []


def test_nfaw_counts_act_only_not_act_ab():
    spec = make_spec(nFAW=80)
    trace = [RK("ACT_AB", 0, row=1), RK("PREA", 30), ACT(47), ACT(54, bg=1), ACT(61, b=1), ACT(68, bg=1, b=1)]
    assert rules(trace, spec) == []  # 5 activations inside 80 cycles, but only 4 ACTs
    found = check_trace(spec, trace + [ACT(75, b=2)])
    assert [(v.rule, v.prev_tick, v.required_gap) for v in found] == [("nFAW", 47, 80)]


def test_prev_command_is_the_latest_of_the_rule_set():
    # RD, then RDA, then RD in the same bank group: nCCD_L is measured from the (later) RDA.
    trace = [ACT(0), ACT(7, b=1), COL("RD", 30, b=1), COL("RDA", 40), COL("RD", 43, b=1)]
    (v,) = check_trace(SPEC, trace)
    assert (v.rule, v.prev_command, v.prev_tick, v.actual_gap) == ("nCCD_L", "RDA", 40, 3)


def test_both_short_and_long_rules_reported_when_both_broken():
    trace = [ACT(0), ACT(4, b=1)]  # same bank group, 4 < nRRD_S=5 < nRRD_L=7
    assert sorted(rules(trace)) == ["nRRD_L", "nRRD_S"]


# ------------------------------------------------------------------------------------------
# Refresh interval
# ------------------------------------------------------------------------------------------
def test_refresh_gap_over_nine_refi_is_reported():
    ok = [RK("REFab", 100), RK("REFab", 101, rank=1), RK("REFab", 9100), RK("REFab", 9101, rank=1)]
    bad = [RK("REFab", 100), RK("REFab", 101, rank=1), RK("REFab", 9101), RK("REFab", 9102, rank=1)]
    assert rules(ok) == []
    found = check_trace(SPEC, bad)[:1]
    assert [(v.rule, v.required_gap, v.actual_gap, v.prev_command) for v in found] == [("nREFI", 9000, 9001, "REFab")]


def test_refresh_first_gap_from_tick_zero():
    assert rules([RK("REFab", 8999, rank=1), RK("REFab", 9000)]) == []
    found = check_trace(SPEC, [RK("REFab", 8999, rank=1), RK("REFab", 9001)])
    assert [(v.rule, v.prev_tick, v.prev_command) for v in found] == [("nREFI", 0, None)]


def test_refresh_check_is_per_rank_and_covers_the_trace_end():
    trace = [RK("REFab", 10), RK("REFab", 20, rank=1), ACT(9011), RK("REFab", 9020, rank=1)]
    found = check_trace(SPEC, trace)
    assert [(v.rule, v.command, v.rank, v.actual_gap) for v in found] == [("nREFI", "END", 0, 9010)]


def test_refresh_check_off_by_default_without_refab_and_forced_on():
    trace = [ACT(0), PRE(9500)]
    assert rules(trace) == []
    assert rules(trace, check_refresh=True) == ["nREFI", "nREFI"]  # both ranks of channel 0
    assert rules([RK("REFab", 0), RK("REFab", 20000)], check_refresh=False) == []


# ------------------------------------------------------------------------------------------
# Bank-state rules
# ------------------------------------------------------------------------------------------
STATE_CASES = {
    "act_to_open_bank": ([ACT(0), ACT(47, row=6)], ["bank_closed"]),
    "refpb_to_open_bank": ([ACT(0), c(50, "REFpb", 0, 0)], ["bank_closed"]),
    "rd_to_closed_bank": ([COL("RD", 0)], ["row_not_open"]),
    "wr_to_other_row": ([ACT(0, row=5), COL("WR", 20, row=6)], ["row_not_open"]),
    "upd_to_closed_bank": ([COL("UPD", 0)], ["row_not_open"]),
    "rda_closes": ([ACT(0), COL("RDA", 30), COL("RD", 40)], ["row_not_open"]),
    "wra_closes": ([ACT(0), COL("WRA", 30), COL("WR", 40)], ["row_not_open"]),
    "pre_closes": ([ACT(0), PRE(30), COL("RD", 50)], ["row_not_open"]),
    "pre_to_closed_bank_is_noop": ([PRE(0), PRE(10), ACT(30)], []),
    "prea_closes_all": ([ACT(0), ACT(7, bg=1, b=3), RK("PREA", 40), RK("ACT_AB", 60, row=2)], []),
    "prea_closes_all_then_rd": ([ACT(0, bg=1, b=3), RK("PREA", 40), COL("RD", 60, bg=1, b=3)], ["row_not_open"]),
    "act_ab_with_open_bank": ([ACT(0, bg=1, b=2), RK("ACT_AB", 60, row=2)], ["all_banks_closed"]),
    "act_ab_opens_every_bank": ([RK("ACT_AB", 0, row=9), COL("RD", 16, bg=1, b=3, row=9),
                                 COL("WR", 40, bg=0, b=2, row=9)], []),
    "act_ab_opens_that_row_only": ([RK("ACT_AB", 0, row=9), COL("RD", 16, bg=1, b=3, row=5)], ["row_not_open"]),
    "refab_with_open_bank": ([ACT(0), RK("REFab", 60)], ["all_banks_closed"]),
    "mac_with_closed_bank": ([RK("ACT_AB", 0, row=5), PRE(30, bg=1, b=2), RK("MAC_AB", 50, col=0)],
                             ["all_banks_open"]),
    "mac_with_no_bank_open": ([RK("MAC_AB", 0, col=0)], ["all_banks_open"]),
    "mac_after_single_acts": ([ACT(11 * i, bg=i // 4, b=i % 4) for i in range(8)] + [RK("MAC_AB", 100, col=0)], []),
    "gb_rdmac_bias_need_nothing": ([RK("WR_GB", 0), RK("RD_MAC", 20), RK("WR_BIAS", 40)], []),
    "other_rank_independent": ([ACT(0), ACT(1, rank=1, row=7), COL("RD", 20, rank=1, row=7)], []),
    "other_channel_independent": ([ACT(0), ACT(0, ch=1), COL("RD", 16), COL("RD", 16, ch=1)], []),
}


@pytest.mark.parametrize("case", sorted(STATE_CASES))
def test_state_rules(case):
    trace, expected = STATE_CASES[case]
    assert rules(trace) == expected


def test_state_violation_names_the_command_that_set_the_state():
    (v,) = check_trace(SPEC, [ACT(0, row=5), COL("RD", 20, row=6)])
    assert (v.rule, v.prev_command, v.prev_tick) == ("row_not_open", "ACT", 0)
    assert "row 5 open" in v.detail


def test_rank_scope_expansion_act_bank3_then_early_prea():
    trace = [ACT(0, bg=0, b=3), RK("PREA", 29)]
    (v,) = check_trace(SPEC, trace)
    assert (v.rule, v.command, v.prev_command, v.required_gap, v.actual_gap) == ("nRAS", "PREA", "ACT", 30, 29)
    assert v.bankgroup == v.bank == -1
    # ... and PREA -> ACT to any bank of the rank waits nRP; the other rank does not.
    trace = [ACT(0, bg=1, b=3), RK("PREA", 30), ACT(43, bg=0, b=1), ACT(43, bg=0, b=1, rank=1, ch=1)]
    assert rules(trace) == ["nRP"]


def test_rank_scope_timing_is_literal_even_for_closed_banks():
    # PREA after ACT+RDA to bank 0: bank 0 is already closed, the table still asks nRAS.
    assert rules([ACT(0), COL("RDA", 16), RK("PREA", 20)]) == ["nRAS"]


OOR_CASES = {
    "row": ([ACT(0, row=64)], "row 64"),
    "row_negative_in_rd": ([ACT(0), COL("RD", 16, row=-1)], "row -1"),
    "column": ([ACT(0), COL("RD", 16, col=16)], "column 16"),
    "mac_column": ([RK("ACT_AB", 0, row=1), RK("MAC_AB", 17, col=16)], "column 16"),
    "act_ab_row": ([RK("ACT_AB", 0, row=100)], "row 100"),
    "bank": ([ACT(0, b=4)], "address"),
    "bankgroup": ([ACT(0, bg=2)], "address"),
    "channel": ([ACT(0, ch=2)], "address"),
    "rank": ([ACT(0, rank=2)], "address"),
    "bank_scope_without_bank": ([c(0, "PRE")], "address"),
}


@pytest.mark.parametrize("case", sorted(OOR_CASES))
def test_out_of_range(case):
    trace, text = OOR_CASES[case]
    found = check_trace(SPEC, trace)
    assert "out_of_range" in [v.rule for v in found]
    assert any(text in v.detail for v in found if v.rule == "out_of_range")


def test_row_out_of_range_only_reported_once():
    assert rules([ACT(0, row=64)]) == ["out_of_range"]


def test_rows_may_be_plain_tuples_with_names_or_values():
    trace = [(0, 0, 0, 0, 0, 5, -1, "ACT"), (15, 0, 0, 0, 0, 5, 0, int(Cmd.RD))]
    assert rules(trace) == ["nRCD_RD"]


def test_unknown_command_in_rows_raises_input_error():
    with pytest.raises(InputError, match="rows\\[0\\].command"):
        check_trace(SPEC, [(0, 0, 0, 0, 0, 5, -1, "NOP")])
    with pytest.raises(InputError, match="rows\\[0\\].command"):
        check_trace(SPEC, [(0, 0, 0, 0, 0, 5, -1, 99)])


def test_decreasing_ticks_in_rows_raise_input_error():
    with pytest.raises(InputError, match="rows\\[1\\].tick"):
        check_trace(SPEC, [ACT(10), PRE(5)])


def test_violation_str_is_one_readable_line():
    (v,) = check_trace(SPEC, [ACT(0), COL("RD", 15)])
    s = str(v)
    assert "\n" not in s
    for part in ("tick 15", "RD", "nRCD_RD", "16", "ACT", "tick 0", "got 15", "ch0", "bg0", "bank0"):
        assert part in s, s


# ------------------------------------------------------------------------------------------
# CSV and report
# ------------------------------------------------------------------------------------------
HEADER = "tick,channel,rank,bankgroup,bank,row,column,command\n"


def write(tmp_path, text, name="t.csv"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_read_roundtrip(tmp_path):
    trace = CASES["nGB_MAC/WR_GB"][2](-1) + [PRE(100, bg=1, b=2)]
    p = tmp_path / "t.csv"
    write_command_trace(p, trace)
    assert p.read_text().splitlines()[0] == HEADER.strip()
    back = read_command_trace(p)
    assert back == trace
    assert all(isinstance(r.command, Cmd) for r in back)


def test_read_allows_crlf_and_trailing_blank_line(tmp_path):
    p = write(tmp_path, HEADER.replace("\n", "\r\n") + "0,0,0,0,0,5,-1,ACT\r\n16,0,0,0,0,5,0,RD\r\n\n")
    assert [r.command for r in read_command_trace(p)] == [Cmd.ACT, Cmd.RD]


PARSE_ERRORS = {
    "missing_header_field": ("tick,channel,rank,bankgroup,bank,row,command\n0,0,0,0,0,5,ACT\n",
                             "line 1.header", "missing column"),
    "extra_header_field": (HEADER.strip() + ",extra\n", "line 1.header", "unexpected 'extra'"),
    "reordered_header": ("channel,tick,rank,bankgroup,bank,row,column,command\n", "line 1.header", "order"),
    "empty_file": ("", "line 1.header", "missing"),
    "missing_field": (HEADER + "0,0,0,0,0,5,ACT\n", "line 2", "got 7 fields"),
    "extra_field": (HEADER + "0,0,0,0,0,5,-1,ACT,9\n", "line 2", "got 9 fields"),
    "unknown_command": (HEADER + "0,0,0,0,0,5,-1,ACT\n3,0,0,0,0,-1,-1,NOP\n", "line 3.command", "'NOP'"),
    "non_integer_tick": (HEADER + "x,0,0,0,0,5,-1,ACT\n", "line 2.tick", "'x'"),
    "non_integer_row": (HEADER + "0,0,0,0,0,5.5,-1,ACT\n", "line 2.row", "'5.5'"),
    "non_integer_column": (HEADER + "0,0,0,0,0,5,,RD\n", "line 2.column", "expected an integer"),
    "decreasing_tick": (HEADER + "10,0,0,0,0,5,-1,ACT\n9,0,0,0,0,-1,-1,PRE\n", "line 3.tick", "must not decrease"),
    "negative_tick": (HEADER + "-1,0,0,0,0,5,-1,ACT\n", "line 2.tick", ">= 0"),
}


@pytest.mark.parametrize("case", sorted(PARSE_ERRORS))
def test_parse_errors(tmp_path, case):
    text, where, msg = PARSE_ERRORS[case]
    p = write(tmp_path, text)
    with pytest.raises(InputError) as ei:
        read_command_trace(p)
    assert ei.value.file == str(p)
    assert ei.value.path == where
    assert msg in ei.value.message


def test_missing_file_is_input_error(tmp_path):
    with pytest.raises(InputError):
        read_command_trace(tmp_path / "nope.csv")


def test_check_file_report(tmp_path):
    p = tmp_path / "t.csv"
    write_command_trace(p, [ACT(0), COL("RD", 15), COL("RD", 16), PRE(18)])
    rep = check_file(p, SPEC)
    assert isinstance(rep, CheckReport)
    assert rep.n_commands == 4 and not rep.ok
    d = rep.to_dict()
    assert d["counts"] == {"nBL_RD": 1, "nCCD_L": 1, "nCCD_S": 1, "nRAS": 1, "nRCD_RD": 1, "nRTP": 1}
    assert d["n_violations"] == 6 and d["ok"] is False and not d["truncated"]
    assert d["violations"][0]["rule"] == "nRCD_RD" and "message" in d["violations"][0]
    json.dumps(d)
    write_command_trace(p, [ACT(0), COL("RD", 16)])
    assert check_file(p, SPEC).ok


def test_report_keeps_first_100_violations(tmp_path):
    trace = [RK("RD_MAC", t) for t in range(0, 300)]  # 299 nBL_RD violations
    rep = CheckReport(check_trace(SPEC, trace), len(trace))
    d = rep.to_dict()
    assert d["counts"] == {"nBL_RD": 299} and len(d["violations"]) == 100 and d["truncated"]


def test_cli(tmp_path, capsys):
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(json.dumps({"organization": ORG, "timing": TIMING}))
    good, bad, broken = tmp_path / "good.csv", tmp_path / "bad.csv", tmp_path / "broken.csv"
    write_command_trace(good, [ACT(0), COL("RD", 16)])
    write_command_trace(bad, [ACT(0), COL("RD", 15)])
    broken.write_text(HEADER + "0,0,0,0,0,5,-1,NOPE\n")
    assert chk.main([str(good), "--spec", str(spec_file)]) == 0
    assert chk.main([str(bad), "--spec", str(spec_file)]) == 1
    assert "nRCD_RD" in capsys.readouterr().out
    assert chk.main([str(bad), "--spec", str(spec_file), "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["counts"] == {"nRCD_RD": 1}
    assert chk.main([str(broken), "--spec", str(spec_file)]) == 2
    assert "line 2.command" in capsys.readouterr().err


def test_shipped_presets_build_rule_tables():
    from hwsim.dram_pim.spec import load_dram_spec
    for name in ("GDDR6_AiM", "HBM2_2Gbps"):
        spec = load_dram_spec(preset=name)
        assert check_trace(spec, []) == []
        assert chk.timing_rules(spec.timing)


# ------------------------------------------------------------------------------------------
# Independence from the scheduler
# ------------------------------------------------------------------------------------------
def test_checker_imports_no_scheduling_code():
    src = Path(chk.__file__).read_text()
    imported = set()
    for node in ast.walk(ast.parse(src)):
        if isinstance(node, ast.ImportFrom):
            imported |= {f"{node.module}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            imported |= {a.name for a in node.names}
    allowed_hwsim = {"hwsim.dram_pim.commands.Cmd", "hwsim.dram_pim.spec.DramSpec",
                     "hwsim.dram_pim.spec.load_dram_spec", "hwsim.errors.InputError"}
    assert {m for m in imported if m.startswith("hwsim")} <= allowed_hwsim
    for banned in ("constraints", "device", "scheduler", "controller", "META"):
        assert banned not in {part for m in imported for part in m.split(".")}


# ------------------------------------------------------------------------------------------
# A long legal trace, and speed
# ------------------------------------------------------------------------------------------
def legal_trace(n_commands: int, gap: int = 50) -> list[TraceCmd]:
    """State-legal traffic on both channels, every command `gap` cycles after the previous one on
    its channel (gap > every pairwise rule of SPEC except nRFC, which gets extra room)."""
    out: list[TraceCmd] = []
    t = 0
    k = 0
    while len(out) < n_commands:
        rk, bg, b, row = k % 2, (k // 2) % 2, (k // 4) % 4, k % 64
        if k % 8 == 7:
            seq = [RK("ACT_AB", 0, row=row, rank=rk), RK("WR_GB", 0, rank=rk)]
            seq += [RK("MAC_AB", 0, col=i, rank=rk) for i in range(4)]
            seq += [RK("RD_MAC", 0, rank=rk), RK("PREA", 0, rank=rk)]
        else:
            seq = [ACT(0, bg, b, row, rank=rk), COL("RD", 0, bg, b, row, 1, rank=rk),
                   COL("UPD", 0, bg, b, row, 2, rank=rk), COL("WRA", 0, bg, b, row, 3, rank=rk)]
        if k % 20 == 19:
            seq += [RK("REFab", 0, rank=0), RK("REFab", 0, rank=1)]
        for cmd in seq:
            for ch in (0, 1):
                out.append(cmd._replace(tick=t, channel=ch))
            t += 2 * gap + SPEC.timing.nRFC if cmd.command == Cmd.REFab else gap
        k += 1
    return out[:n_commands]


def test_long_legal_trace_has_no_violations(tmp_path):
    trace = legal_trace(20_000)
    assert check_trace(SPEC, trace) == []
    p = tmp_path / "legal.csv"
    write_command_trace(p, trace)
    rep = check_file(p, SPEC)
    assert rep.ok and rep.n_commands == 20_000


def test_legal_trace_tightened_is_caught():
    trace = legal_trace(2_000, gap=10)
    assert set(rules(trace)) == {"nRCD_RD", "nRMW", "nRTW", "nGB_MAC", "nMAC_RES"}


@pytest.mark.slow
def test_speed_one_million_commands(tmp_path):
    trace = legal_trace(1_000_000)
    p = tmp_path / "big.csv"
    write_command_trace(p, trace)
    t0 = time.perf_counter()
    rep = check_file(p, SPEC)
    elapsed = time.perf_counter() - t0
    assert rep.ok and rep.n_commands == 1_000_000
    assert elapsed < 10.0, elapsed
