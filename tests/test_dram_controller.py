"""Controller behaviour: hand-worked request-level cases, FR-FCFS ordering, refresh, tFAW,
closed-page policy, write draining, and the closed-form bandwidth / nRC checks."""

import numpy as np
import pytest

from hwsim.dram_pim.commands import Cmd
from hwsim.dram_pim.controller import simulate
from hwsim.dram_pim.spec import load_dram_spec
from hwsim.mapping.address import encode

from conftest import make_spec


def addr(spec, **fields):
    return int(encode(spec, {k: np.asarray(v) for k, v in fields.items()}))


def cmds(res):
    log = res.commands
    return [(int(t), Cmd(int(c)).name, int(b)) for t, c, b in zip(log.tick, log.cmd, log.bank)]


def run(spec, addresses, writes=None, arrive=None):
    n = len(addresses)
    writes = np.zeros(n, bool) if writes is None else np.asarray(writes, bool)
    return simulate(spec, np.asarray(addresses, dtype=np.uint64), writes, arrive, record=True)


def test_single_read_closed_bank():
    spec = make_spec(controller__refresh="none")
    res = run(spec, [addr(spec, row=5)])
    # ACT at 0, RD at nRCD_RD = 13, data done at 13 + nCL + nBL = 26.
    assert cmds(res) == [(0, "ACT", 0), (13, "RD", 0)]
    assert res.stats["cycles"] == 26
    assert res.stats["row_misses"] == 1


def test_row_hit_then_conflict():
    spec = make_spec(controller__refresh="none")
    res = run(spec, [addr(spec, row=5), addr(spec, row=5, column=1), addr(spec, row=6)])
    # hit RD at 13 + nCCD_L = 20; PRE at max(nRAS=29, RD 20 + nRTP=26) = 29; ACT at 29 + nRP = 41 < nRC 45 -> 45;
    # RD at 45 + 13 = 58.
    assert cmds(res) == [(0, "ACT", 0), (13, "RD", 0), (20, "RD", 0), (29, "PRE", 0), (45, "ACT", 0), (58, "RD", 0)]
    assert (res.stats["row_hits"], res.stats["row_misses"], res.stats["row_conflicts"]) == (1, 1, 1)


def test_frfcfs_serves_younger_hit_before_older_conflict():
    spec = make_spec(controller__refresh="none")
    a = [addr(spec, row=5), addr(spec, row=6), addr(spec, row=5, column=3)]
    res = run(spec, a)
    order = [c for c in cmds(res) if c[1] == "RD"]
    # The third request (a hit on row 5) is served before the second (a conflict on row 6).
    assert res.done_tick[2] < res.done_tick[1]
    assert len(order) == 3


def test_fcfs_keeps_order():
    spec = make_spec(controller__refresh="none", controller__scheduler="fcfs")
    a = [addr(spec, row=5), addr(spec, row=6), addr(spec, row=5, column=3)]
    res = run(spec, a)
    assert res.done_tick[0] < res.done_tick[1] < res.done_tick[2]


def test_tfaw_through_controller():
    spec = make_spec(controller__refresh="none")
    # Five reads to five different banks of rank 0: the fifth ACT waits for the tFAW window.
    a = [addr(spec, bankgroup=g, bank=b, row=1) for g, b in [(0, 0), (1, 0), (0, 1), (1, 1), (0, 2)]]
    res = run(spec, a)
    acts = [t for t, c, _ in cmds(res) if c == "ACT"]
    # ACTs at 0, 4 (nRRD_S), 8, 12, then the fifth at max(12 + nRRD_S, 8 + nRRD_L(same bg as bank 1)... , 0 + nFAW)
    assert acts[:4] == [0, 4, 8, 12]
    assert acts[4] == 37


def test_refresh_every_nrefi():
    spec = make_spec()
    n = 3000
    a = [addr(spec, row=i % 7, column=i % 16) for i in range(n)]
    res = run(spec, a, arrive=np.arange(n) * 3)
    refs = [t for t, c, b in cmds(res) if c == "REFab" and b < 8]  # rank 0 of channel 0
    assert len(refs) == res.stats["cycles"] // 2001
    assert refs[0] >= 2001
    # REFab at most once per nREFI on average and never two within nRFC.
    assert all(b - a >= 101 for a, b in zip(refs, refs[1:]))
    # After each REFab, the next ACT of that rank waits nRFC.
    log = cmds(res)
    for t_ref in refs:
        later = [t for t, c, b in log if c == "ACT" and b < 8 and t > t_ref]
        if later:
            assert later[0] >= t_ref + 101


def test_closed_page_auto_precharges():
    spec = make_spec(controller__refresh="none", controller__page_policy="closed")
    res = run(spec, [addr(spec, row=5), addr(spec, row=6)])
    names = [c for _, c, _ in cmds(res)]
    assert names == ["ACT", "RDA", "ACT", "RDA"]
    # RDA at 13; next ACT at max(nRC 45, 13 + nRTP + nRP = 31) = 45.
    assert cmds(res)[2][0] == 45


def test_write_drain_watermarks():
    spec = make_spec(controller__refresh="none", controller__write_queue=8, controller__read_queue=8)
    n = 64
    writes = np.array([i % 2 == 0 for i in range(n)])
    a = [addr(spec, row=i % 3, column=i % 16, bank=i % 4) for i in range(n)]
    res = run(spec, a, writes)
    assert res.stats["writes"] == 32 and res.stats["reads"] == 32
    assert (res.done_tick >= 0).all()


def test_row_hit_stream_reaches_bus_peak():
    base = load_dram_spec(preset="GDDR6_16Gbps_x16", overrides={
        "controller": {"refresh": "none"},
        # bank group in the lowest bits so consecutive bursts alternate bank groups (nCCD_S = nBL).
        "address_mapping": ["row", "column", "bank", "rank", "bankgroup", "channel"]})
    footprint = 16 * 64 * 32  # one row in each of the 16 banks
    n = 40000
    res = simulate(base, (np.arange(n, dtype=np.uint64) * 32) % footprint, np.zeros(n, bool))
    assert res.stats["row_hits"] >= n - 16
    assert res.stats["bandwidth_GBps"] == pytest.approx(base.peak_bandwidth_GBps, rel=0.01)


def test_same_bank_conflict_stream_takes_nrc_per_request():
    spec = load_dram_spec(preset="GDDR6_16Gbps_x16", overrides={"controller": {"refresh": "none"}})
    n = 2000
    rows = np.arange(n) % spec.organization.rows
    res = simulate(spec, encode(spec, {"row": rows}), np.zeros(n, bool))
    per_request = res.stats["cycles"] / n
    assert per_request == pytest.approx(spec.timing.nRC, rel=0.01)
    assert res.stats["row_conflicts"] == n - 1


def test_dramsim3_arrival_times_respected():
    spec = make_spec(controller__refresh="none")
    res = run(spec, [addr(spec, row=1), addr(spec, row=1, column=1)], arrive=[0, 500])
    assert res.accept_tick.tolist() == [0, 500]
    assert cmds(res)[-1] == (500, "RD", 0)  # row still open: a hit at its arrival cycle


def test_dramsim3_front_end_admits_one_request_per_cycle():
    # DRAMSim3's trace CPU adds at most one transaction per memory cycle, even when several
    # trace lines carry the same cycle; hwsim's front end does the same.
    spec = make_spec(controller__refresh="none")
    a = [addr(spec, bank=b, row=1) for b in range(3)] + [addr(spec, bank=3, row=1)]
    res = run(spec, a, arrive=[0, 0, 0, 10])
    assert res.accept_tick.tolist() == [0, 1, 2, 10]
    # ACTs follow the admissions: 0, then nRRD_L = 8 after it (same bank group), then 16.
    assert [t for t, c, _ in cmds(res) if c == "ACT"][:3] == [0, 8, 16]


def test_last_accept_cycle_is_reported():
    spec = make_spec(controller__refresh="none")
    res = run(spec, [addr(spec, row=1), addr(spec, row=1, column=1)], arrive=[0, 500])
    assert res.stats["last_accept_cycle"] == 500
    assert res.stats["cycles"] == 500 + 11 + 2  # a hit RD at its arrival, + nCL + nBL


def test_cross_rank_read_to_write_turnaround():
    # A read on rank 0, then a write on rank 1 of the same channel (bank 8): the write burst may
    # not collide with the read burst on the shared data bus. nRCD_WR = 1 so that only the
    # turnaround binds: ACT 0, RD 13 (nRCD_RD), write mode once the read queue is empty, ACT 14,
    # WR at 13 + nCL + nBL + nRTW - nCWL = 23 (not at ACT + nRCD_WR = 15).
    spec = make_spec(controller__refresh="none", timing__nRCD_WR=1)
    a = [addr(spec, rank=0, row=1), addr(spec, rank=1, row=1)]
    res = run(spec, a, writes=[False, True], arrive=[0, 0])
    assert cmds(res) == [(0, "ACT", 0), (13, "RD", 0), (14, "ACT", 8), (23, "WR", 8)]
    assert res.stats["cycles"] == 23 + 5 + 2


def test_chrabaroco_matches_ramulator2_bit_order():
    # Ramulator 2's ChRaBaRoCo slices levels from the column up: column, row, bank, bankgroup,
    # rank, channel, so the bit just above the row is the bank's lowest bit, not the bank group's.
    from hwsim.dram_pim.spec import dram_spec_from_dict
    from hwsim.mapping.address import decode

    base = make_spec()
    spec = dram_spec_from_dict({"organization": vars(base.organization).copy(),
                                "timing": vars(base.timing).copy(), "address_mapping": "ChRaBaRoCo"})
    o = spec.organization
    above_row = 5 + (o.columns.bit_length() - 1) + (o.rows.bit_length() - 1)
    f = decode(spec, np.array([1 << above_row, 1 << (above_row + 2)], dtype=np.uint64))
    assert f["bank"].tolist() == [1, 0] and f["bankgroup"].tolist() == [0, 1]


def test_ready_oldest_scheduler_has_no_row_hit_preference():
    # r0 bank0 row1 @0, r1 bank3 row2 @0 (admitted at 1), r2 bank3 row1 @7 (a conflict), r3 bank0
    # row1 @37 (a hit), r4 bank0 row2 @41. At 37 both r2's PRE (ACT 8 + nRAS 29) and r3's RD
    # (last RD 21 + nCCD_L 7 = 28) are ready: frfcfs takes the younger hit, ready_oldest (Ramulator
    # 2's FRFCFS: ready first, then oldest) the older PRE. Then bank 0's PRE waits nRTP = 6 after
    # its RD; ACT bank 3 at nRC (8 + 45); ACT bank 0 at nRRD_L after it.
    spec = make_spec(controller__refresh="none")
    a = [addr(spec, bank=0, row=1, column=3), addr(spec, bank=3, row=2, column=3), addr(spec, bank=3, row=1),
         addr(spec, bank=0, row=1, column=3), addr(spec, bank=0, row=2, column=1)]
    arrive = [0, 0, 7, 37, 41]
    head = [(0, "ACT", 0), (8, "ACT", 3), (13, "RD", 0), (21, "RD", 3)]
    tail = [(53, "ACT", 3), (61, "ACT", 0), (66, "RD", 3), (74, "RD", 0)]
    assert cmds(run(spec, a, arrive=arrive)) == head + [(37, "RD", 0), (38, "PRE", 3), (43, "PRE", 0)] + tail
    spec = make_spec(controller__refresh="none", controller__scheduler="ready_oldest")
    assert cmds(run(spec, a, arrive=arrive)) == head + [(37, "PRE", 3), (38, "RD", 0), (44, "PRE", 0)] + tail


def test_gddr6_preset_read_to_write_gap_is_ramulator2s():
    # Ramulator 2 GDDR6: RD -> WR waits nCL + nBL + 3 - nCWL + 1 = 24 + 2 + 4 - 6 = 24 cycles.
    spec = load_dram_spec(preset="GDDR6_16Gbps_x16", overrides={"controller": {"refresh": "none"}})
    res = run(spec, [addr(spec, row=1), addr(spec, row=1, column=1)], writes=[False, True])
    assert cmds(res) == [(0, "ACT", 0), (26, "RD", 0), (50, "WR", 0)]
    assert res.stats["cycles"] == 50 + 6 + 2


def test_closed_always_auto_precharges_every_access():
    # Two reads of one row: `closed` keeps the row for the queued hit (ACT, RD, RDA); `closed_always`
    # (DRAMSim3 CLOSE_PAGE) auto-precharges each: RDA at 13, ACT again at nRC = 45 (> 13 + nRTP +
    # nRP = 31), RDA at 45 + nRCD_RD = 58.
    a = lambda spec: [addr(spec, row=5), addr(spec, row=5, column=1)]  # noqa: E731
    spec = make_spec(controller__refresh="none", controller__page_policy="closed")
    assert cmds(run(spec, a(spec))) == [(0, "ACT", 0), (13, "RD", 0), (20, "RDA", 0)]
    spec = make_spec(controller__refresh="none", controller__page_policy="closed_always")
    res = run(spec, a(spec))
    assert cmds(res) == [(0, "ACT", 0), (13, "RDA", 0), (45, "ACT", 0), (58, "RDA", 0)]
    assert (res.stats["row_misses"], res.stats["row_hits"]) == (2, 0)


def test_closed_always_never_closes_a_row_an_activated_request_waits_for():
    # A write opens row 5 (ACT 0; its WR waits nRCD_WR = 20); a read of the same row arrives at 1,
    # the controller returns to read mode and the read's RD is ready first (nRCD_RD = 13). It must
    # not auto-precharge, or the write's column command would find the bank closed: RD at 13, then
    # WRA at max(ACT + 20, RD + nCL + nBL + nRTW - nCWL = 23) = 23.
    spec = make_spec(controller__refresh="none", controller__page_policy="closed_always", timing__nRCD_WR=20)
    res = run(spec, [addr(spec, row=5), addr(spec, row=5, column=1)], writes=[True, False])
    assert cmds(res) == [(0, "ACT", 0), (13, "RD", 0), (23, "WRA", 0)]


@pytest.mark.parametrize("fe, mem, accept", [
    (1, 1, [0, 1, 2, 3, 4, 5, 6, 7, 8]),
    (2, 1, [0, 1, 1, 2, 2, 3, 3, 4, 4]),      # two offers per memory cycle
    (8, 3, [0, 1, 1, 2, 2, 2, 3, 3, 3]),      # Ramulator 2's example config: offer j on tick ceil(3j/8)
    (1, 2, [0, 2, 4, 6, 8, 10, 12, 14, 16]),  # one offer every two memory cycles
])
def test_load_store_front_end_clock_ratio(fe, mem, accept):
    # Ramulator 2's main loop ticks the front end every `mem` and the memory every `fe` iterations;
    # a request sent at front-end tick j is scheduled from the first memory tick at or after it.
    spec = make_spec(controller__refresh="none", controller__frontend_clock_ratio=fe,
                     controller__memory_clock_ratio=mem)
    a = [addr(spec, channel=0, rank=k % 2, bankgroup=(k // 2) % 2, bank=k // 4, row=1) for k in range(9)]
    assert run(spec, a).accept_tick.tolist() == accept
