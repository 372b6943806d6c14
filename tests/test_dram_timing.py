"""One hand-worked case per timing rule, at the device level: after the setup commands, the
probe command's earliest legal tick is exactly the expected value (so it is not ready one cycle
earlier). Expected ticks are worked out by hand from TEST_TIMING in conftest.py.

Bank numbering in this spec: bank = ((channel*2 + rank)*2 + bankgroup)*4 + bank_in_group, so banks
0-3 are bank group 0 and banks 4-7 bank group 1 of rank 0, channel 0; 8-15 are rank 1.
"""

import pytest

from hwsim.dram_pim.commands import Cmd
from hwsim.dram_pim.constraints import RULES
from hwsim.dram_pim.device import Device, earliest, issue

from conftest import make_spec

A, P, PA, RD, WR, RDA, WRA = Cmd.ACT, Cmd.PRE, Cmd.PREA, Cmd.RD, Cmd.WR, Cmd.RDA, Cmd.WRA
CASES = {
    # rule: (setup [(cmd, bank, tick)], probe cmd, probe bank, expected tick, the arithmetic)
    "nRCD_RD": ([(A, 0, 0)], RD, 0, 13, "nRCD_RD"),
    "nRCD_WR": ([(A, 0, 0)], WR, 0, 9, "nRCD_WR"),
    "nRCD_MAC": ([(Cmd.ACT_AB, 0, 0)], Cmd.MAC_AB, 0, 17, "nRCD_MAC"),
    "nRAS": ([(A, 0, 0)], P, 0, 29, "nRAS"),
    "nRC": ([(A, 0, 0), (P, 0, 29)], A, 0, 45, "nRC=45 > PRE+nRP=41"),
    "nRP": ([(A, 0, 0), (P, 0, 100)], A, 0, 112, "100+nRP"),
    "nRTP": ([(A, 0, 0), (RD, 0, 30)], P, 0, 36, "30+nRTP"),
    "nWR": ([(A, 0, 0), (WR, 0, 9)], P, 0, 30, "9+nCWL+nBL+nWR"),
    "nWR_UPD": ([(A, 0, 0), (Cmd.UPD, 0, 9)], P, 0, 34, "9+nCWL+nBL+nRMW+nWR"),
    "nRMW": ([(A, 0, 0), (Cmd.UPD, 0, 9)], WR, 0, 20, "9+nCWL+nBL+nRMW > 9+nCCD_L"),
    "nRTP+nRP": ([(A, 0, 0), (RDA, 0, 40)], A, 0, 58, "40+nRTP+nRP"),
    "nWR+nRP": ([(A, 0, 0), (WRA, 0, 20)], A, 0, 53, "20+nCWL+nBL+nWR+nRP"),
    "nRFC": ([(Cmd.REFab, 0, 0)], A, 3, 101, "nRFC, any bank of the rank"),
    "nRFCpb": ([(Cmd.REFpb, 0, 0)], A, 0, 51, "nRFCpb"),
    "nCCD_L": ([(A, 0, 0), (A, 1, 8), (RD, 0, 30)], RD, 1, 37, "30+nCCD_L"),
    "nCCD_L_WR": ([(A, 0, 0), (A, 1, 8), (WR, 0, 30)], WR, 1, 37, "30+nCCD_L"),
    "nWTR_L": ([(A, 0, 0), (A, 1, 8), (WR, 0, 30)], RD, 1, 46, "30+nCWL+nBL+nWTR_L"),
    "nRRD_L": ([(A, 0, 0)], A, 1, 8, "nRRD_L"),
    "nCCD_S": ([(A, 0, 0), (A, 4, 4), (RD, 0, 30)], RD, 4, 33, "30+nCCD_S"),
    "nCCD_S_WR": ([(A, 0, 0), (A, 4, 4), (WR, 0, 30)], WR, 4, 33, "30+nCCD_S"),
    "nWTR_S": ([(A, 0, 0), (A, 4, 4), (WR, 0, 30)], RD, 4, 40, "30+nCWL+nBL+nWTR_S"),
    "nRTW": ([(A, 0, 0), (A, 4, 4), (RD, 0, 30)], WR, 4, 40, "30+nCL+nBL+nRTW-nCWL"),
    "nRRD_S": ([(A, 0, 0)], A, 4, 4, "nRRD_S"),
    "nFAW": ([(A, 0, 0), (A, 4, 4), (A, 1, 8), (A, 5, 12)], A, 2, 37, "first ACT + nFAW"),
    "nCCD_MAC": ([(Cmd.ACT_AB, 0, 0), (Cmd.MAC_AB, 0, 17)], Cmd.MAC_AB, 0, 24, "17+nCCD_L"),
    "nGB_MAC": ([(Cmd.ACT_AB, 0, 0), (Cmd.WR_GB, 0, 20)], Cmd.MAC_AB, 0, 25, "20+nCWLREG+nBL+nGB_MAC"),
    # The PIM register path: RD_MAC reads with nCLREG (1 here), WR_GB / WR_BIAS write with nCWLREG (2).
    "nWTR_REG": ([(A, 0, 0), (Cmd.WR_GB, 0, 20)], RD, 0, 27, "20+nCWLREG+nBL+nWTR_S"),
    "nRTW_RD_REG": ([(A, 0, 0), (RD, 0, 30)], Cmd.WR_GB, 0, 43, "30+nCL+nBL+nRTW-nCWLREG"),
    "nRTW_REG_RD": ([(A, 0, 0), (Cmd.RD_MAC, 0, 30)], WR, 0, 36, "30+nCLREG+nBL+nRTW-nCWL", {"nRTW": 8}),
    "nRTW_REG": ([(Cmd.RD_MAC, 0, 30)], Cmd.WR_GB, 0, 33, "30+nCLREG+nBL+nRTW-nCWLREG"),
    "nMAC_RES": ([(Cmd.ACT_AB, 0, 0), (Cmd.MAC_AB, 0, 17)], Cmd.RD_MAC, 0, 22, "17+nMAC_RES"),
    "nRES_MAC": ([(Cmd.ACT_AB, 0, 0), (Cmd.RD_MAC, 0, 30)], Cmd.MAC_AB, 0, 37, "30+nCCD_L"),
    "nBL_RD": ([(A, 0, 0), (A, 8, 0), (RD, 0, 30)], RD, 8, 32, "30+nBL on the other rank"),
    "nBL_WR": ([(A, 0, 0), (A, 8, 0), (WR, 0, 30)], WR, 8, 32, "30+nBL on the other rank"),
    # The data bus is shared by the ranks: RD -> WR turnaround holds across ranks too (rank 1 = bank 8).
    "nRTW/ranks": ([(A, 0, 0), (A, 8, 0), (RD, 0, 30)], WR, 8, 40, "30+nCL+nBL+nRTW-nCWL, other rank"),
    # ... and a read on another rank may not put its burst on the bus before a write burst has left:
    # with nCL = 3 the gap is nCWL + nBL - nCL = 4.
    "nWTR_BUS": ([(A, 0, 0), (A, 8, 0), (WR, 0, 20)], RD, 8, 24, "20+nCWL+nBL-nCL, other rank",
                 {"nCL": 3}),
    # Rank switching: a read burst of another rank waits nBL + nRTRS (= 3 here) ...
    "nRTRS": ([(A, 0, 0), (A, 8, 0), (RD, 0, 30)], RD, 8, 35, "30+nBL+nRTRS, other rank", {"nRTRS": 3}),
    # ... but not within the rank: bank 4 (other bank group, same rank) waits nCCD_S only.
    "nRTRS/same_rank": ([(A, 0, 0), (A, 4, 4), (RD, 0, 30)], RD, 4, 33, "30+nCCD_S", {"nRTRS": 3}),
    # ... and a write-to-read switch adds it too: 20 + nCWL + nBL + nRTRS - nCL = 20 + 5 + 2 + 3 - 3.
    "nWTR_BUS/nRTRS": ([(A, 0, 0), (A, 8, 0), (WR, 0, 20)], RD, 8, 27, "20+nCWL+nBL+nRTRS-nCL",
                       {"nCL": 3, "nRTRS": 3}),
    # JEDEC tRC is ACT to ACT or REF: REFab 45 after the ACT although PRE + nRP = 41.
    "nRC/REFab": ([(A, 0, 0), (P, 0, 29)], Cmd.REFab, 0, 45, "nRC > PRE+nRP=41"),
    "nRC/REFpb": ([(A, 0, 0), (P, 0, 29)], Cmd.REFpb, 0, 45, "nRC > PRE+nRP=41"),
    # tRAS lockout of an auto-precharge: with nRC = nRAS + nRP - 1 = 40 (allowed rounding slack),
    # RDA at 13 precharges at nRAS = 29, not at 13 + nRTP, so the bank reopens at 29 + nRP = 41.
    "nRAS+nRP": ([(A, 0, 0), (RDA, 0, 13)], A, 0, 41, "nRAS+nRP > nRC=40 > RDA+nRTP+nRP=31",
                 {"nRC": 40}),
    # An all-bank ACT and any ACT of the rank: nRRD_L (= 60 here, above nRC, so that it binds).
    "nRRD_AB": ([(Cmd.ACT_AB, 0, 0), (PA, 0, 29)], A, 5, 60, "nRRD_L after ACT_AB", {"nRRD_L": 60}),
    "nRRD_AB_ACT": ([(A, 0, 0), (P, 0, 29)], Cmd.ACT_AB, 0, 60, "nRRD_L after ACT", {"nRRD_L": 60}),
}


def test_every_rule_has_a_case():
    assert {r.name for r in RULES} == {k.split("/")[0] for k in CASES}


@pytest.mark.parametrize("rule", sorted(CASES))
def test_rule_exact(rule, small_spec):
    setup, probe, bank, expected, _why, *timing = CASES[rule]
    if timing:
        small_spec = make_spec(**{f"timing__{k}": v for k, v in timing[0].items()})
    dev = Device(small_spec)
    for cmd, b, tick in setup:
        assert earliest(dev.state, int(cmd), b) <= tick, f"setup command {cmd.name}@{tick} is itself illegal"
        issue(dev.state, int(cmd), b, 1, tick)
    assert earliest(dev.state, int(probe), bank) == expected


def test_rank_scope_expands_to_every_bank(small_spec):
    dev = Device(small_spec)
    issue(dev.state, int(A), 3, 1, 0)
    # PREA must respect nRAS of bank 3, even when addressed through bank 0 of the rank.
    assert earliest(dev.state, int(PA), 0) == 29
    # ... but not in the other rank.
    assert earliest(dev.state, int(PA), 8) == 0
