"""The compiled serial loop (hwsim/dram_pim/serial.py) against the controller's event-driven serial
policy over the same PIM system: identical token results, energy counts, system counters and
device end state, on configurations chosen to reach its rare branches (a boundary flush longer
than its buffer, REFab owed again after the boundary flush, a refresh forced inside an
instruction, mode switches, no refresh, a memo so small that it evicts)."""

from __future__ import annotations

import pytest

import hwsim.dram_pim.pim as pim
from hwsim.asic.controller import PimSystemPort
from hwsim.asic.spec import load_asic
from hwsim.asic.workload import simulate
from hwsim.dram_pim.pim import load_pim
from hwsim.models import load_model

TINY = {"name": "tiny", "n_layers": 2, "d_model": 128, "n_heads": 2, "d_ff": 512, "vocab": 1000, "context": 64}

CASES = {
    "default": ({}, {}, None),
    "mode switches": ({"mode_switch_cycles": 4}, {}, None),
    "no refresh": ({"refresh": "none"}, {}, None),
    # a 2 MHz ASIC: tens of tREFI between PIM instructions, so one postponed refresh overflows the
    # flush buffer and the boundary flush outlasts the next tREFI; VMMs cross tREFI boundaries too
    "slow ASIC, one postponed refresh": ({"max_postponed_refreshes": 1}, {"clock_MHz": 2}, None),
    "memo of 3 entries": ({}, {}, 3),
}


def _run(monkeypatch, case: str, compiled: bool) -> dict:
    pim_over, asic_over, memo_entries = CASES[case]
    with monkeypatch.context() as m:
        if not compiled:
            m.setattr(PimSystemPort, "compiled_serial", property(lambda self: False))
        if memo_entries is not None:
            m.setattr(pim, "MEMO_ENTRIES", memo_entries)
        seen = {"second flush": 0, "forced refresh": 0}
        merge, run = pim._merge, pim.PimSystem._run

        def counting_merge(pre, res):
            seen["second flush"] += 1
            return merge(pre, res)

        def counting_run(self, *args, **kwargs):
            res, entry = run(self, *args, **kwargs)
            seen["forced refresh"] += res.refreshes > 0
            return res, entry

        m.setattr(pim, "_merge", counting_merge)
        m.setattr(pim.PimSystem, "_run", counting_run)
        tokens = []
        ps = load_pim({"preset": "pim_gpt", "channels": 2, **pim_over})
        asic = load_asic({"preset": "pim_gpt_asic", **asic_over})
        tot, system, _ = simulate(load_model(TINY), ps, asic, 5, 4,
                                  on_token=lambda j, ctx, tr: tokens.append(tr))
    fields = ("start_ps", "end_ps", "breakdown_ps", "op_ps", "asic_cost", "pim_counts", "link_bits", "row_hits",
              "row_misses", "offchip_bytes", "instructions", "refresh_ps", "phases_ps")
    return {
        "tokens": [[getattr(tr, f) for f in fields] for tr in tokens],
        "energy counts": list(tot.pim_counts.items()),      # in order: the float sums depend on it
        "totals": {k: v for k, v in system.totals().items() if not k.startswith("memo_")},
        "state": (system.device.state.tobytes(), system.issuer.channel_tick.tolist(), system.mode.tolist(),
                  system.ref_issued.tolist()),
        "flush buffer": system._flush_buf.shape[1],
        "seen": seen,
    }


@pytest.mark.parametrize("case", list(CASES))
def test_compiled_serial_loop_matches_the_event_driven_executor(monkeypatch, case):
    plain = _run(monkeypatch, case, compiled=False)
    fast = _run(monkeypatch, case, compiled=True)
    for key in ("tokens", "energy counts", "totals", "state"):
        assert fast[key] == plain[key], key
    if case.startswith("slow ASIC"):   # the rare branches really ran
        assert fast["flush buffer"] > 2 * 3
        assert plain["seen"]["second flush"] > 0
        assert plain["seen"]["forced refresh"] > 0 and fast["seen"]["forced refresh"] > 0


def test_the_compiled_loop_is_what_a_serial_memoised_run_uses(monkeypatch):
    calls = []
    real = PimSystemPort.run_serial

    def spy(self, *args):
        calls.append(1)
        return real(self, *args)

    monkeypatch.setattr(PimSystemPort, "run_serial", spy)
    simulate(load_model(TINY), load_pim({"preset": "pim_gpt", "channels": 2}), load_asic("pim_gpt_asic"), 5, 2)
    assert len(calls) == 2


def _stale_transitions(system) -> int:
    """Cached transitions (`MemoTable.trans`) that a fresh lookup from their source entry would
    not find: the key recomputed from the entry's end state, then looked up in the memo."""
    import numpy as np

    from hwsim.dram_pim.memo import T_FROM, find, key_hash
    from hwsim.dram_pim.serial import _key

    memo, d = system.memo, system.device
    out = np.zeros(system._key_buf.size + system.spec.channels, np.int64)
    stale = 0
    for ts in np.flatnonzero(memo.trans[:, T_FROM] >= 0).tolist():
        source, sig, delta, shift, owed, to = memo.trans[ts].tolist()
        n = _key(source, 0, 0, memo.data, memo.hot, memo.offsets, d.ready.reshape(-1), d.open_row, d.win_hist,
                 system.issuer.channel_tick, system.mode, delta, shift, system._win_count, system._hist_floor, out)
        if owed >= 0:   # a boundary lookup: every channel owes `owed`
            out[n:n + system.spec.channels] = owed
            n += system.spec.channels
        stale += int(find(memo.slots, memo.meta, memo.keys, sig, out, n, key_hash(sig, out, n))) != to
    return stale


@pytest.mark.parametrize("case, memo_entries", [("default", None), ("default", 12), ("default", 24),
                                                ("slow ASIC, one postponed refresh", None)])
def test_cached_transitions_are_what_a_fresh_lookup_finds(monkeypatch, case, memo_entries):
    """The compiled loop takes the entry that a key made from an unrestored replay finds from a
    cache (`memo.trans_find`); the memo must clear the cache whenever an entry's data or the
    entries' indices change, so that at every return to Python each cached transition is still
    what a fresh lookup finds (memos of 12 and 24 entries evict and keep transitions between; the
    slow ASIC replaces boundary entries that were not valid at their boundary)."""
    pim_over, asic_over, _ = CASES[case]
    if memo_entries is not None:
        monkeypatch.setattr(pim, "MEMO_ENTRIES", memo_entries)
    import hwsim.dram_pim.serial as serial

    checked, stale = [], []
    sync = serial._sync

    def checking_sync(system, ls, tot):
        sync(system, ls, tot)
        checked.append(int((system.memo.trans[:, 0] >= 0).sum()))
        stale.append(_stale_transitions(system))

    monkeypatch.setattr(serial, "_sync", checking_sync)
    simulate(load_model(TINY), load_pim({"preset": "pim_gpt", "channels": 2, **pim_over}),
             load_asic({"preset": "pim_gpt_asic", **asic_over}), 5, 6)
    assert sum(checked) > 0 and sum(stale) == 0, (checked, stale)
