"""PIM hardware model: hand-worked VMM timing, protocol-checker replay, exact memoisation, the
MAC-bound floor, refresh, KV append, the PimSpec loader and the energy counts."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hwsim.dram_pim.commands import Cmd
from hwsim.dram_pim.pim import PimSystem, load_pim, pim_energy_counts
from hwsim.energy import load_energy_table
from hwsim.errors import InputError
from hwsim.mapping.partition import place_matrix, place_model, stream_origin
from hwsim.models import load_model

HAVE_CHECKER = importlib.util.find_spec("hwsim.dram_pim.checker") is not None


def pim(**over):
    return load_pim({"preset": "pim_gpt", **over})


def check(dspec, rows, **kw):
    if not HAVE_CHECKER:
        pytest.skip("hwsim.dram_pim.checker not available")
    from hwsim.dram_pim.checker import check_trace
    v = check_trace(dspec, rows, **kw)
    assert not v, "\n".join(str(x) for x in v[:10])


# GDDR6_AiM numbers used below (hwsim/presets/dram/GDDR6_AiM.yaml, tCK = 500 ps):
# nBL 2, nCL 50, nCWL 6, nRCD_MAC 56, nRP 32, nRAS 54, nRC 89, nRTP 12, nCCD_L 2, nGB_MAC 0, nMAC_RES 2,
# register path nCLREG 0 (RD_MAC) and nCWLREG 1 (WR_GB), nRTW 4; pim_gpt preset: mode change nMODCH 32
# (aim_simulator TMOD).
NBL, NCL, NCWL, NRCD_MAC, NRP, NRAS, NRC, NRTP, NCCD, NGB, NRES = 2, 50, 6, 56, 32, 54, 89, 12, 2, 0, 2
NMODCH, NCLREG, NCWLREG, NRTW = 32, 0, 1, 4


def _ticks(rows):
    return {c: [t for t, *_, cc in rows if cc == c] for c in Cmd}


def test_hand_worked_vmm_1024x16_one_channel():
    """d_in = 1024, d_out = 16 on one channel: one 1024-element column per bank = one row per bank.
    WR_GB and RD_MAC run in register mode, the rest in normal mode; every change of mode takes a
    TMOD slot at the command's first legal tick and the command issues nMODCH = 32 later
    (aim_simulator's AiM controller).

    ACT_AB  @0     (hoisted before the broadcast, pim.overlap_activate; channel in normal mode)
    TMOD    @1     -> WR_GB x64 @33, 35, ..., 159 (64 bursts of 32 B, nBL = 2 apart)
    MAC_AB  legal @ max(ACT + nRCD_MAC = 56, last WR_GB + nCWLREG + nBL + nGB_MAC = 162) = 162:
            TMOD @162 -> MAC x64 @194, 196, ..., 320 (nCCD_L = 2)
    RD_MAC  legal @ last MAC + nMAC_RES = 322: TMOD @322 -> RD_MAC @354
    PREA    legal @ max(last MAC + nRTP = 332, ACT + nRAS, 355) = 355: TMOD @355 -> PREA @387
    end     = max(RD_MAC + nCLREG + nBL = 356, PREA + 1 = 388) = 388 cycles = 194 ns; 4 mode changes."""
    ps = pim(channels=1, refresh="none")
    t = ps.dram_spec.timing
    assert (ps.mode_switch_cycles, t.nCLREG, t.nCWLREG, t.nGB_MAC) == (NMODCH, NCLREG, NCWLREG, NGB)
    s = PimSystem(ps, record=True)
    r = s.vmm(place_matrix("w", 1024, 16, ps))
    first_wr = 1 + NMODCH
    last_wr = first_wr + 63 * NBL
    first_mac = max(NRCD_MAC, last_wr + NCWLREG + NBL + NGB) + NMODCH
    last_mac = first_mac + 63 * NCCD
    rd = last_mac + NRES + NMODCH
    prea = max(last_mac + NRTP, NRAS, rd + 1) + NMODCH
    assert (first_wr, last_wr, first_mac, last_mac, rd, prea) == (33, 159, 194, 320, 354, 387)
    assert r.start_tick == 0 and r.end_tick == max(rd + NCLREG + NBL, prea + 1) == 388
    assert r.latency_ps == 388 * 500 and r.mode_switches == 4
    assert r.commands == {"ACT_AB": 1, "WR_GB": 64, "MAC_AB": 64, "RD_MAC": 1, "PREA": 1}
    assert (r.bytes_in, r.bytes_out, r.macs) == (64 * 32, 32, 1024 * 16)
    assert (r.row_hits, r.row_misses) == (63 * 16, 16)
    assert sum(r.cycles.values()) == r.latency_cycles
    rows = r.trace_rows(s.dram)
    ticks = _ticks(rows)
    assert ticks[Cmd.ACT_AB] == [0]
    assert ticks[Cmd.WR_GB] == list(range(33, 160, 2))
    assert ticks[Cmd.MAC_AB] == list(range(194, 321, 2))
    assert ticks[Cmd.RD_MAC] == [354] and ticks[Cmd.PREA] == [387]
    assert [col for *_, col, cc in rows if cc == Cmd.MAC_AB] == list(range(64))
    check(s.dram, s.trace_rows())


def test_hand_worked_vmm_1024x16_without_mode_changes():
    """The same VMM with mode_switch_cycles = 0: ACT_AB @0, WR_GB @1..127, first MAC @ max(56,
    127 + nCWLREG + nBL) = 130, last @256, RD_MAC @258, PREA @ max(256 + nRTP, 259) = 268; end = PREA + 1
    = 269 (RD_MAC's data is back at 258 + nCLREG + nBL = 260)."""
    ps = pim(channels=1, refresh="none", mode_switch_cycles=0)
    s = PimSystem(ps, record=True)
    r = s.vmm(place_matrix("w", 1024, 16, ps))
    ticks = _ticks(r.trace_rows(s.dram))
    assert ticks[Cmd.WR_GB] == list(range(1, 128, 2)) and ticks[Cmd.MAC_AB] == list(range(130, 257, 2))
    assert ticks[Cmd.RD_MAC] == [258] and ticks[Cmd.PREA] == [268]
    assert r.end_tick == 269 and r.mode_switches == 0
    # With the array's CAS latency on RD_MAC (nCLREG = nCL) the data, not the PREA, ends the VMM.
    ps2 = pim(channels=1, refresh="none", mode_switch_cycles=0, dram_overrides={"timing": {"nCLREG": NCL}})
    assert PimSystem(ps2).vmm(place_matrix("w", 1024, 16, ps2)).end_tick == 258 + NCL + NBL == 310


def test_hand_worked_vmm_1024x128_one_channel():
    """d_out = 128 on 16 banks: 8 rows per bank, the broadcast once. Row 0 as in the 1024 x 16 case
    (MACs @194..320). From the last MAC of row k at m: TMOD @m+2, RD_MAC @m+34, TMOD @m+35,
    PREA @m+67, ACT_AB @m+99 (nRP; ACT + nRC is earlier), first MAC @m+155 (nRCD_MAC), so rows
    repeat every 155 + 63 * 2 = 281 cycles; end = PREA_7 + 1 = 387 + 7 * 281 + 1 = 2355."""
    ps = pim(channels=1, refresh="none")
    s = PimSystem(ps, record=True)
    r = s.vmm(place_matrix("w", 1024, 128, ps))
    period = NRES + NMODCH + 1 + NMODCH + NRP + NRCD_MAC + 63 * NCCD
    assert period == 281
    assert r.end_tick == 387 + 7 * period + 1 == 2355
    assert r.commands == {"ACT_AB": 8, "WR_GB": 64, "MAC_AB": 512, "RD_MAC": 8, "PREA": 8}
    assert r.mode_switches == 2 + 2 * 8
    ticks = _ticks(r.trace_rows(s.dram))
    assert ticks[Cmd.ACT_AB] == [0] + [387 + NRP + k * period for k in range(7)]
    assert ticks[Cmd.RD_MAC] == [354 + k * period for k in range(8)]
    # Without hoisting the first ACT_AB (aim_simulator's order): TMOD @0, WR_GB @32..158, TMOD @159,
    # ACT_AB @191, first MAC @247 instead of 194: 53 cycles later.
    ps2 = pim(channels=1, refresh="none", overlap_activate=False)
    s2 = PimSystem(ps2, record=True)
    r2 = s2.vmm(place_matrix("w", 1024, 128, ps2))
    t2 = _ticks(r2.trace_rows(s2.dram))
    assert t2[Cmd.WR_GB][0] == NMODCH and t2[Cmd.ACT_AB][0] == 158 + 1 + NMODCH == 191
    assert t2[Cmd.MAC_AB][0] == 191 + NRCD_MAC and r2.end_tick == 2355 + 53


def test_hand_worked_vmm_2048x32_two_windows():
    """d_in = 2048, d_out = 32, one channel: 2 columns per bank, each 2 rows long (one per 1,024-input
    GB window), 4 rows per bank. Window 0 = rows 0, 1 as in the 1024 x 128 case: MACs @194..320 and
    @475..601, RD_MAC @354, @635, PREA @387, @668. Window 1: ACT_AB row 2 @668 + nRP = 700 (hoisted),
    WR_GB legal @ max(RD_MAC 635 + nCLREG + nBL + nRTW - nCWLREG = 640, 701) = 701: TMOD @701 -> WR_GB
    @733..859; MAC legal @ max(700 + 56, 859 + 3) = 862: TMOD -> MACs @894..1020; RD_MAC @1054; PREA
    @1087; row 3: ACT @1119, MACs @1175..1301, RD_MAC @1335, PREA @1368; end 1369. The ASIC adds the
    two windows' partial sums."""
    ps = pim(channels=1, refresh="none")
    s = PimSystem(ps, record=True)
    r = s.vmm(place_matrix("w", 2048, 32, ps))
    assert r.commands == {"ACT_AB": 4, "WR_GB": 128, "MAC_AB": 256, "RD_MAC": 4, "PREA": 4}
    ticks = _ticks(r.trace_rows(s.dram))
    assert ticks[Cmd.ACT_AB] == [0, 419, 700, 1119]
    assert ticks[Cmd.WR_GB] == list(range(33, 160, 2)) + list(range(733, 860, 2))
    assert [ticks[Cmd.MAC_AB][k] for k in (0, 64, 128, 192)] == [194, 475, 894, 1175]
    assert ticks[Cmd.RD_MAC] == [354, 635, 1054, 1335] and ticks[Cmd.PREA] == [387, 668, 1087, 1368]
    assert r.end_tick == 1369 and r.mode_switches == 12
    assert (r.bytes_in, r.bytes_out) == (128 * 32, 4 * 32)
    check(s.dram, s.trace_rows())


def test_channels_work_in_parallel():
    ps = pim(refresh="none")
    r = PimSystem(ps).vmm(place_matrix("w", 1024, 128, ps))   # 8 channels x 16 banks: one row each
    assert r.end_tick == 388 and r.mode_switches == 8 * 4
    assert r.commands["WR_GB"] == 8 * 64 and r.commands["ACT_AB"] == 8


def test_fp32_readout_takes_two_bursts():
    ps = pim(channels=1, refresh="none", result_format="fp32")
    r = PimSystem(ps).vmm(place_matrix("w", 1024, 16, ps))
    assert ps.readout_bursts == 2 and r.commands["RD_MAC"] == 2 and r.bytes_out == 64
    assert r.end_tick == 388 + NBL     # second RD_MAC nBL later (same mode), PREA after it


def test_packed_segments_read_out_per_segment():
    """d_in = 256: four columns per row, one RD_MAC after each 16-MAC segment; the MAC after a
    RD_MAC is legal one column slot nCCD_L later (AiM reads the MAC register with nCLREG = 0) and
    waits a mode change (TMOD + nMODCH): 2 mode changes per mid-row readout."""
    ps = pim(channels=1, refresh="none")
    s = PimSystem(ps, record=True)
    r = s.vmm(place_matrix("w", 256, 64, ps))
    assert r.commands == {"ACT_AB": 1, "WR_GB": 16, "MAC_AB": 64, "RD_MAC": 4, "PREA": 1}
    rows = r.trace_rows(s.dram)
    rd = [t for t, *_, c in rows if c == Cmd.RD_MAC]
    macs = [t for t, *_, c in rows if c == Cmd.MAC_AB]
    assert rd[0] == macs[15] + NRES + NMODCH
    assert macs[16] == rd[0] + NCCD + NMODCH
    assert r.mode_switches == 2 + 2 * 4
    ps0 = pim(channels=1, refresh="none", mode_switch_cycles=0)
    s0 = PimSystem(ps0, record=True)
    r0 = s0.vmm(place_matrix("w", 256, 64, ps0))
    rows0 = r0.trace_rows(s0.dram)
    rd0 = [t for t, *_, c in rows0 if c == Cmd.RD_MAC]
    macs0 = [t for t, *_, c in rows0 if c == Cmd.MAC_AB]
    assert macs0[16] == rd0[0] + NCCD and rd0[0] == macs0[15] + NRES
    check(s.dram, s.trace_rows())


def test_trace_of_several_ops_passes_checker():
    ps = pim(channels=2)
    model = load_model({"preset": "gpt2-small", "n_layers": 2})
    mp = place_model(model, ps, 64)
    s = PimSystem(ps, mp, record=True)
    for tok in range(3):
        for layer in range(2):
            s.vmm(mp[f"L{layer}.attn.qkv"])
            s.kv_append(layer, tok)
            s.vmm(s.kv_score_placement(layer, tok + 1))
            s.vmm(s.kv_context_placement(layer, tok + 1))
            s.vmm(mp[f"L{layer}.mlp.fc2"])
            s.flush_refresh()
    check(s.dram, s.trace_rows(), check_refresh=True)
    assert s.totals()["commands"]["REFab"] > 0


def test_memo_on_off_identical():
    ps = pim(channels=2)
    model = load_model({"preset": "gpt2-small", "n_layers": 3})
    mp = place_model(model, ps, 32)

    def run(memo):
        s = PimSystem(ps, mp, record=True)
        out = []
        for tok in range(2):
            for layer in range(3):
                out.append(s.vmm(mp[f"L{layer}.attn.qkv"], memo=memo))
                out.append(s.kv_append(layer, tok, memo=memo))
                out.append(s.vmm(s.kv_score_placement(layer, tok + 1), memo=memo))
                out.append(s.vmm(s.kv_context_placement(layer, tok + 1), memo=memo))
                for op in ("attn.proj", "mlp.fc1", "mlp.fc2"):
                    out.append(s.vmm(mp[f"L{layer}.{op}"], memo=memo))
                out.append(s.flush_refresh())
        return s, out

    a, ra = run(True)
    b, rb = run(False)
    assert a.memo_hits > 10
    assert ra == rb
    la, lb = a.command_log(), b.command_log()
    for k in ("tick", "cmd", "bank", "row", "column"):
        assert np.array_equal(getattr(la, k), getattr(lb, k)), k
    assert a.tick == b.tick
    assert a._rel_state(a.tick, 0) == b._rel_state(b.tick, 0)
    ta, tb = a.totals(), b.totals()
    for k in ("memo_hits", "memo_misses"):
        ta.pop(k), tb.pop(k)
    assert ta == tb
    assert any(r is not None and r.memo_hit for r in ra)
    assert any(r is not None and r.memo_hit and "kv_write" in r.name for r in ra)   # appends replay too


def test_a_stored_run_stays_valid_until_its_last_refresh_decision_would_owe_a_refab():
    """`_issue_pim` forces REFab only before an ACT/ACT_AB, so `memo_valid` bounds a replay by each
    channel's last such decision, not by its last command: from every start it accepts, the run
    forces no refresh (compared with timing it there), and it accepts starts from which the run's
    later commands cross a tREFI boundary with a REFab owed."""
    from hwsim.dram_pim.pim import memo_valid

    ps = pim(channels=1, max_postponed_refreshes=1)
    low = PimSystem(ps).lower(place_matrix("w", 2048, 16, ps))   # two row groups: two ACT_AB
    nrefi = ps.dram_spec.timing.nREFI
    _, entry = PimSystem(ps)._run(low, "w", 0, want_memo=True, base=0)
    row, last_command = entry[0], int(entry[1][0].end_tick)
    accepted_across = 0
    for start in range(5 * nrefi - 900, 5 * nrefi + 10, 7):
        s = PimSystem(ps)
        s.ref_issued[:] = start // nrefi   # none owed at the start, one from the next boundary on
        s._note_refreshes()
        ok = memo_valid(row, s.memo.offsets, start, True, nrefi, 1, s.ref_issued, s._refresh_from)
        forced = s._run(low, "w", start, want_memo=False)[0].refreshes > 0
        assert not (ok and forced), start
        accepted_across += ok and (start + last_command) // nrefi > start // nrefi
    assert accepted_across > 10


def test_a_row_left_open_below_an_instructions_first_row_survives_a_replay():
    """Memo rows hold open rows relative to the instruction's first row; one below it is negative
    (-1 among them), so a replay must not read it as a closed bank."""
    ps = pim(channels=1)
    p = place_matrix("w", 1024, 16, ps, base_row=20)
    s = PimSystem(ps)
    res, entry = s._run(s.lower(p), "w", 0, want_memo=True, base=20)
    d = s.device
    d.open_row[3], d.open_row[5] = 19, 10            # rows 1 and 10 below the first row, left open
    row = s._memo_row(entry[1][0], entry[0][s.memo.layout.counts:s.memo.layout.cycles], 0, 20,
                      np.zeros(1, np.int64))
    d.open_row[:] = -1
    s._replay(row, entry[1], "w", 5000, 30, -1)      # re-based ten rows up
    assert d.open_row[3] == 29 and d.open_row[5] == 20 and (np.delete(d.open_row, [3, 5]) == -1).all()


def test_runs_with_forced_refreshes_replay_only_within_their_start_phase_interval():
    """A VMM long enough that refreshes are forced into it depends on its start phase (mod tREFI);
    it is stored with the interval of phases that make the same refresh decisions and replayed only
    inside it: memo on and off give the same results, totals and command log."""
    ps = pim(channels=1, max_postponed_refreshes=1)
    p = place_matrix("w", 2048, 1024, ps)
    nrefi = ps.dram_spec.timing.nREFI
    # start phases sweeping 300 ticks in steps of 5 (intervals are tens of ticks wide, so the sweep
    # crosses their ends), then the same phases again in another order
    phases = [1000 + 5 * k for k in range(60)]
    phases += list(np.random.default_rng(3).permutation(phases))

    def run(memo):
        s = PimSystem(ps, record=True)
        out = []
        for phase in phases:
            out.append(s.vmm(p, memo=memo, start_tick=(s.tick // nrefi + 3) * nrefi + int(phase)))
        return s, out

    a, ra = run(True)
    b, rb = run(False)
    assert all(r.refreshes > 0 for r in rb)            # every run had refreshes forced into it
    assert ra == rb
    ta, tb = a.totals(), b.totals()
    assert a.memo_hits > 0 and ta.pop("memo_hits") > tb.pop("memo_hits")
    ta.pop("memo_misses"), tb.pop("memo_misses")
    assert ta == tb
    for k in ("tick", "cmd", "bank", "row", "column"):
        assert np.array_equal(getattr(a.command_log(), k), getattr(b.command_log(), k)), k


def test_attention_vmms_lowering_to_one_stream_share_its_timing_but_keep_their_own_macs():
    """Score placements of neighbouring context lengths mostly lower to the same command stream
    (the new token joins a slot other banks already MAC): they share a memo signature, and a replay
    of one for the other is exact, useful MACs included."""
    ps = pim(channels=2)
    model = load_model({"preset": "gpt2-small", "n_layers": 2})
    mp = place_model(model, ps, 256)
    s = PimSystem(ps, mp)
    pairs = [(s.kv_score_placement(1, c), s.kv_score_placement(1, c + 1)) for c in range(28, 36)]
    shared = [(a, b) for a, b in pairs if s.vmm_key(a)[0] == s.vmm_key(b)[0]]
    assert shared and len(shared) < len(pairs)           # some neighbours share a stream, not all
    a, b = shared[0]
    assert a.elements != b.elements and s.vmm_key(b)[2] == b.elements
    # a miss lowers the origin (layer 0's rows) shifted: the same commands as lowering `b` itself
    direct, shifted = s.lower(b), s.vmm_instruction(b)[4]()
    assert stream_origin(b) is not b and b.row_range[0] > stream_origin(b).row_range[0]
    for k in ("cmd", "bank", "row", "col", "macs", "bank_accesses", "row_misses"):
        assert np.array_equal(getattr(direct, k), getattr(shifted, k)), k

    def run(memo):
        sys_ = PimSystem(ps, mp, record=True)
        return sys_, [sys_.vmm(a, memo=memo), sys_.vmm(b, memo=memo, start_tick=sys_.tick + 5000)]

    (x, rx), (y, ry) = run(True), run(False)
    assert rx[1].memo_hit and rx == ry and rx[1].macs == b.elements
    assert x.totals()["macs"] == y.totals()["macs"] == a.elements + b.elements
    for k in ("tick", "cmd", "bank", "row", "column"):
        assert np.array_equal(getattr(x.command_log(), k), getattr(y.command_log(), k)), k


def _dense_state(s: PimSystem, start: int, base: int) -> bytes:
    """Reference for the memo key: the whole device state relative to `start` (rows to `base`)."""
    d = s.device
    h = d.win_hist
    hist = np.zeros_like(h)
    for w, count in enumerate(s._win_count.tolist()):
        n, pos = h[w, :, 0:1], h[w, :, 1:2]
        k = np.arange(count)[None, :]
        vals = np.take_along_axis(h[w, :, 2:2 + count], (pos - count + k) % count, axis=1) - start
        hist[w, :, 2:2 + count] = np.where(k >= count - n, np.maximum(vals, s._hist_floor), s._hist_floor)
    parts = (np.maximum(d.ready - start, 0), np.where(d.open_row >= 0, d.open_row - base, -1 - (1 << 40)), hist,
             np.maximum(s.issuer.channel_tick - start, 0), s.mode)
    return b"".join(a.tobytes() for a in parts)


def test_memo_key_is_equal_exactly_when_the_relative_state_is():
    s = PimSystem(pim(channels=2))
    d = s.device
    rng = np.random.default_rng(7)
    seen = []   # (dense reference, memo key) over random states with few distinct values (so some repeat)
    for _ in range(400):
        start = int(rng.integers(1000, 1003))
        d.ready[...] = start - 2 + rng.integers(0, 4, d.ready.shape) * (rng.random(d.ready.shape) < 0.01)
        d.open_row[...] = np.where(rng.random(d.open_row.shape) < 0.02, rng.integers(0, 3, d.open_row.shape), -1)
        h = d.win_hist
        h[...] = 0
        sel = rng.random(h.shape[1]) < 0.03
        h[:, sel, 0] = rng.integers(0, 5, (h.shape[0], int(sel.sum())))
        h[:, sel, 1] = rng.integers(0, 4, (h.shape[0], int(sel.sum())))
        h[:, sel, 2:] = start + rng.integers(-60, 3, (h.shape[0], int(sel.sum()), h.shape[2] - 2))
        s.issuer.channel_tick[...] = start + rng.integers(-1, 2, s.issuer.channel_tick.shape)
        s.mode[...] = rng.integers(0, 2, s.mode.shape)
        base = int(rng.integers(0, 2))
        n = s._rel_state(start, base)
        seen.append((_dense_state(s, start, base), s._key_buf[:n].tobytes()))
    pairs = set(seen)
    assert len(seen) > len(pairs) > 100                 # equal states occurred, and many different ones
    assert len(pairs) == len({a for a, _ in seen}) == len({k for _, k in seen})   # key <-> state, one to one


def test_flush_closing_a_row_left_open_counts_it_from_the_flush_start():
    from hwsim.mapping.lowering import LoweredOp
    s = PimSystem(pim(channels=1))
    one = lambda v: np.array([v], np.int64)  # noqa: E731
    s._run(LoweredOp(one(int(Cmd.ACT_AB)), one(0), one(3), one(-1), macs=0, bank_accesses=0, row_misses=0),
           "open", 0, want_memo=False)                  # leaves row 3 open in every bank
    s.advance_to(2 * s.dram.timing.nREFI + 1)
    r = s.flush_refresh()
    assert r.commands == {"PREA": 1, "REFab": 2}
    assert 0 <= r.active_channel_cycles <= r.latency_cycles   # open from the flush start to its PREA, not from 0


def test_flush_after_a_long_idle_grows_its_buffers():
    ps = pim(channels=2)
    s = PimSystem(ps, record=True)
    nrefi = s.dram.timing.nREFI
    s.advance_to(50 * nrefi + 1)                        # 50 owed per channel, more than the first buffers hold
    r = s.flush_refresh()
    assert r.commands == {"REFab": 100} and r.refreshes == 100
    assert s.refresh_due(50 * nrefi + 1) == 0          # every REFab owed at the flush's start was issued
    check(s.dram, s.trace_rows(), check_refresh=False)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(d_in=st.integers(1, 2500), d_out=st.integers(1, 300), channels=st.sampled_from([1, 2, 3, 4]))
def test_latency_never_below_mac_floor(d_in, d_out, channels):
    ps = pim(channels=channels, refresh="none")
    s = PimSystem(ps, record=True)
    r = s.vmm(place_matrix("w", d_in, d_out, ps))
    floor_cycles = -(-d_in * d_out // (ps.banks_total * ps.mac_lanes)) * NCCD
    assert r.latency_cycles >= floor_cycles
    assert r.macs == d_in * d_out
    assert sum(r.cycles.values()) == r.latency_cycles
    check(s.dram, s.trace_rows())


def test_long_vmm_inserts_refresh_at_row_boundaries():
    ps = pim(channels=1)
    s = PimSystem(ps, record=True)
    r = s.vmm(place_matrix("big", 1024, 16 * 200, ps))        # 200 rows per bank, ~45k cycles
    nrefi = s.dram.timing.nREFI
    assert r.latency_cycles > 9 * nrefi
    assert r.refreshes == r.commands["REFab"] > 0
    check(s.dram, s.trace_rows(), check_refresh=True)
    rows = s.trace_rows()
    # every REFab follows a PREA (row boundary) or another REFab
    for prev, cur in zip(rows, rows[1:]):
        if cur[7] == Cmd.REFab:
            assert prev[7] in (Cmd.PREA, Cmd.REFab)
    # refresh "none" issues none
    ps2 = pim(channels=1, refresh="none")
    r2 = PimSystem(ps2).vmm(place_matrix("big", 1024, 16 * 200, ps2))
    assert "REFab" not in r2.commands and r2.latency_cycles < r.latency_cycles


def test_refresh_due_and_flush():
    ps = pim(channels=2)
    s = PimSystem(ps, record=True)
    nrefi = s.dram.timing.nREFI
    assert s.refresh_due() == 0 and s.flush_refresh() is None
    s.advance_to(3 * nrefi + 5)
    assert s.refresh_due() == 3
    r = s.flush_refresh()
    assert r.commands == {"REFab": 6} and r.end_tick >= 3 * nrefi + 5 + s.dram.timing.nRFC
    assert s.refresh_due() == 0
    check(s.dram, s.trace_rows(), check_refresh=False)


def test_kv_append_commands_and_cost():
    ps = pim()
    model = load_model("gpt2-xl")
    mp = place_model(model, ps)
    s = PimSystem(ps, mp, record=True)
    r = s.kv_append(5, 130)
    d, L, B = model.d_model, ps.mac_lanes, ps.banks_per_channel
    # K: d/16 full bursts to one bank; V: one masked burst per dimension (d of them), one ACT_AB per
    # 16-dimension group.
    assert r.commands["WR"] == d // L + d
    assert r.commands["ACT_AB"] == r.commands["PREA"] == d // B
    assert r.commands["ACT"] == r.commands["PRE"] >= 1
    assert r.bytes_in == r.commands["WR"] * 32 and r.macs == 0
    check(s.dram, s.trace_rows())
    # the token lands where the score placement reads it
    kv = mp.kv
    p = kv.score_placement(5, 131)
    sel = (p.out_index % 131) == 130
    assert set(p.channel[sel].tolist()) == {130 % 8} and set(p.bank[sel].tolist()) == {(130 // 8) % 16}
    k_rows = {row for t, ch, rk, bg, bk, row, col, c in s.trace_rows() if c == Cmd.WR and ch == 130 % 8
              and bg * 4 + bk == (130 // 8) % 16}
    assert set(p.row[sel].tolist()) <= k_rows


def test_kv_vmms_against_stored_cache():
    ps = pim()
    model = load_model("gpt2-medium")
    mp = place_model(model, ps)
    s = PimSystem(ps, mp)
    for ctx in (1, 100, 1024):
        sc = s.vmm(s.kv_score_placement(0, ctx))
        cx = s.vmm(s.kv_context_placement(0, ctx))
        assert sc.macs == model.d_model * ctx and cx.macs == model.d_model * ctx
        # a score is read out per head segment: n_heads * ctx results, 16 banks per RD_MAC
        assert sc.commands["RD_MAC"] * ps.banks_per_channel >= model.n_heads * ctx


def test_load_pim_errors_and_overrides():
    ps = load_pim("pim_gpt")
    assert (ps.channels, ps.mac_lanes, ps.global_buffer_bytes, ps.row_elems, ps.gb_elems) == (8, 16, 2048, 1024, 1024)
    assert ps.name == "pim_gpt" and ps.dram_spec.organization.channels == 8
    assert load_pim({"preset": "pim_gpt", "channels": 16}).dram_spec.organization.channels == 16
    with pytest.raises(InputError, match=r"pim\.chanels: unknown key"):
        load_pim({"preset": "pim_gpt", "chanels": 4})
    with pytest.raises(InputError, match=r"pim\.channels: got 0"):
        load_pim({"preset": "pim_gpt", "channels": 0})
    with pytest.raises(InputError, match=r"pim\.preset: unknown pim preset 'nope'"):
        load_pim({"preset": "nope"})
    with pytest.raises(InputError, match=r"hw\.pim\.mac_lanes"):
        load_pim({"preset": "pim_gpt", "mac_lanes": 8}, path="hw.pim")
    with pytest.raises(InputError, match=r"pim\.refresh: got 'sometimes'"):
        load_pim({"preset": "pim_gpt", "refresh": "sometimes"})
    with pytest.raises(InputError, match=r"pim\.dram: unknown dram preset"):
        load_pim({"preset": "pim_gpt", "dram": "DDR9"})
    slow = load_pim({"preset": "pim_gpt", "dram_overrides": {"timing": {"nRCD_MAC": 80}}})
    assert slow.dram_spec.timing.nRCD_MAC == 80


def test_energy_counts_cover_the_table():
    ps = pim(channels=2)
    model = load_model({"preset": "gpt2-small", "n_layers": 1})
    mp = place_model(model, ps, 16)
    s = PimSystem(ps, mp)
    results = [s.vmm(mp["L0.attn.qkv"]), s.kv_append(0, 0), s.vmm(s.kv_score_placement(0, 1))]
    s.advance_to(s.tick + 10 * s.dram.timing.nREFI)
    results.append(s.flush_refresh())
    table = load_energy_table("pim_gpt_dram")
    for obj in (results[0], results, s.totals()):
        counts = pim_energy_counts(obj)
        pj = table.breakdown_pJ(counts)          # every counted action has an entry
        assert pj["MAC_AB"] > 0 and pj["pim_io"] > 0
    c = pim_energy_counts(results[0])
    assert c["pim_io"] == (results[0].bytes_in + results[0].bytes_out) * 8
    assert c["pim_standby_active"] + c["pim_standby_precharged"] == pytest.approx(2 * results[0].latency_ns)
    tot = pim_energy_counts(s.totals(), elapsed_ns=1e6)
    assert tot["pim_standby_precharged"] == pytest.approx(2 * 1e6 - tot["pim_standby_active"])
    for entry in table.entries.values():
        assert entry.source


def test_a_key_taken_from_an_unrestored_replay_equals_the_key_of_the_restored_state():
    """The compiled loop restores a replay's end state only when it needs the device, and keys the
    next instruction from the memo row (`serial._key`, the row's hot ready ticks): that key equals
    `_memo_key` of the restored state, at every start from the replay's start on, for rows whose
    hot list fits and for rows too long for it, before their end, after it and after their latest
    ready tick, open rows included."""
    from hwsim.dram_pim.memo import S_END
    from hwsim.dram_pim.pim import _restore
    from hwsim.dram_pim.serial import _key

    ps = pim(channels=2)
    model = load_model({"preset": "gpt2-small", "n_layers": 1})
    mp = place_model(model, ps, 64)
    s = PimSystem(ps, mp)
    for tok in range(3):
        s.vmm(mp["L0.attn.qkv"])
        s.kv_append(0, tok)
        s.vmm(s.kv_score_placement(0, tok + 1))
        s.vmm(mp["L0.mlp.fc1"])
    memo, d, lay = s.memo, s.device, s.memo.layout
    assert memo.n >= 6 and (memo.hot[:memo.n, 0] > 0).all()
    memo.hot[1, 0] = -1                                   # as if its hot list had overflowed
    memo.data[2, lay.open + 3] = 5                        # and as if a row were left open, 5 above the base
    memo.data[3, lay.open + 1] = -2                       # and one 2 below it
    rng = np.random.default_rng(0)
    ready = d.ready.reshape(-1)
    live, from_row = np.zeros_like(s._key_buf), np.zeros_like(s._key_buf)
    checked = 0
    for e in range(memo.n):
        row = memo.data[e]
        end = int(row[lay.scalars + S_END])
        latest = int(memo.hot[e, 1])
        for delta in sorted({0, end // 2, end, end + 1, end + 17, end + int(rng.integers(0, 500)), latest - 1,
                             latest}):
            v_start, v_base, base = int(rng.integers(10_000, 20_000)), int(rng.integers(0, 50)), int(rng.integers(0, 50))
            _restore(ready, row[lay.ready:lay.open], d.open_row, row[lay.open:lay.hist], d.win_hist,
                     row[lay.hist:lay.channel_tick].reshape(d.win_hist.shape), s.issuer.channel_tick,
                     row[lay.channel_tick:lay.mode], s.mode, row[lay.mode:lay.last_decision], v_start, v_base)
            n = s._rel_state(v_start + delta, base)
            live[:n] = s._key_buf[:n]
            m = _key(e, v_start, v_base, memo.data, memo.hot, memo.offsets, ready, d.open_row, d.win_hist,
                     s.issuer.channel_tick, s.mode, v_start + delta, base, s._win_count, s._hist_floor, from_row)
            assert m == n and np.array_equal(from_row[:m], live[:n]), (e, delta)
            checked += 1
    assert checked > 30
