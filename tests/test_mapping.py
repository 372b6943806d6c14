"""The PIM-GPT mapper: placement invariants (hypothesis), packing/tiling/imbalance choices, KV
layouts, whole-model placement and capacity errors, and lowering (structure and speed)."""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hwsim.dram_pim.commands import Cmd
from hwsim.dram_pim.pim import PimSystem, load_pim
from hwsim.errors import InputError
from hwsim.graph import build_decode_graph
from hwsim.mapping.lowering import lower_vmm
from hwsim.mapping.partition import (STRATEGIES, Placement, PlacementError, check_model_placement,
                                     check_placement, make_placement, place_matrix, place_model)
from hwsim.models import list_models, load_model

PS = load_pim("pim_gpt")


def pim(**over):
    return load_pim({"preset": "pim_gpt", **over})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(d_in=st.integers(1, 7000), d_out=st.integers(1, 700), channels=st.integers(1, 12),
       strategy=st.sampled_from(sorted(STRATEGIES)), base=st.integers(0, 100))
def test_placement_invariants(d_in, d_out, channels, strategy, base):
    ps = pim(channels=channels)
    p = place_matrix("w", d_in, d_out, ps, base_row=base, strategy=strategy)
    info = check_placement(p, ps)              # every element once, no overlap, capacity, lockstep
    assert p.elements == d_in * d_out
    assert p.row_range[0] == base
    # explicitly: lockstep -- banks sharing (channel, row, col_elem) share the GB run
    key = (p.channel * ps.rows_per_bank + p.row) * ps.row_elems + p.col_elem
    for k in np.unique(key)[:50]:
        sel = key == k
        assert len(set(p.in_start[sel].tolist())) == 1 and len(set(p.length[sel].tolist())) == 1
    # balance: busiest and idlest bank differ by at most one column per window
    per_bank = np.bincount(p.channel * ps.banks_per_channel + p.bank, minlength=ps.banks_total)
    windows = -(-d_in // 1024)
    assert per_bank.max() - per_bank.min() <= windows
    # rows used per bank follow the packing rule
    W = 1024
    lens = [min(W, d_in - s) for s in range(0, d_in, W)]
    Q = -(-d_out // ps.banks_total)
    per_row = [(1024 // (-(-n // 16) * 16)) if strategy == "pim_gpt" else 1 for n in lens]
    assert info["rows_per_bank"] == sum(-(-Q // m) for m in per_row)


def test_packing_tiling_and_padding_choices():
    # GPT2-XL FC1: d_in = 1600 -> windows 1024 + 576; 576 > 512 cannot pack, the row is padded.
    p = place_matrix("fc1", 1600, 6400, PS)
    assert check_placement(p, PS)["rows_per_bank"] == 50 + 50
    assert sorted(set(zip(p.in_start.tolist(), p.length.tolist()))) == [(0, 1024), (1024, 576)]
    # GPT2-XL FC2: d_in = 6400 -> 6 full windows + a 256 tail packed four to a row.
    p = place_matrix("fc2", 6400, 1600, PS)
    tail = p.in_start == 6144
    assert set(p.col_elem[tail].tolist()) == {0, 256, 512, 768}
    assert check_placement(p, PS)["rows_per_bank"] == 6 * 13 + 4
    # 64-element columns pack 16 to a row (head concatenation)
    p = place_matrix("heads", 64, 16 * 128, PS)
    assert check_placement(p, PS)["rows_per_bank"] == 1 and check_placement(p, PS)["column_utilisation"] == 1.0
    # QKV concatenation: one d x 3d matrix, columns spread round robin
    p = place_matrix("qkv", 1600, 4800, PS)
    assert np.bincount(p.channel[p.in_start == 0], minlength=8).tolist() == [600] * 8
    # d_out not a multiple of 128: imbalance (37 or 38 columns per bank), no padding columns
    per = np.bincount((p.channel * 16 + p.bank)[p.in_start == 0], minlength=128)
    assert set(per.tolist()) == {37, 38}
    # lengths not a multiple of 16 start on column boundaries
    p = place_matrix("odd", 37, 300, PS)
    assert (p.col_elem % 16 == 0).all() and check_placement(p, PS)["column_utilisation"] < 1.0


def _broken(p: Placement, **arrays) -> Placement:
    fields = {k: getattr(p, k).copy() for k in ("channel", "bank", "row", "col_elem", "out_index", "in_start", "length")}
    for k, fn in arrays.items():
        fields[k] = fn(fields[k])
    return make_placement(p.name, p.d_in, p.d_out, *fields.values())


def test_check_placement_catches_violations():
    p = place_matrix("w", 256, 300, PS)
    check_placement(p, PS)
    with pytest.raises(PlacementError, match="overlaps"):          # two segments in one DRAM column
        check_placement(_broken(p, col_elem=lambda a: np.where(np.arange(len(a)) == 1, p.col_elem[0], a),
                                row=lambda a: np.where(np.arange(len(a)) == 1, p.row[0], a),
                                bank=lambda a: np.where(np.arange(len(a)) == 1, p.bank[0], a),
                                channel=lambda a: np.where(np.arange(len(a)) == 1, p.channel[0], a)), PS)
    with pytest.raises(PlacementError, match="placed twice"):
        check_placement(_broken(p, out_index=lambda a: np.where(np.arange(len(a)) == 1, a[0], a)), PS)
    with pytest.raises(PlacementError, match="not placed|elements placed"):
        check_placement(_broken(p, length=lambda a: np.where(np.arange(len(a)) == 0, a - 16, a)), PS)
    with pytest.raises(PlacementError, match="capacity"):
        check_placement(_broken(p, row=lambda a: a + PS.rows_per_bank), PS)
    with pytest.raises(PlacementError, match="multiple of 16"):
        check_placement(_broken(p, col_elem=lambda a: a + 1), PS)


def test_lockstep_violation_detected_directly():
    ps = pim(channels=1)
    # two banks at the same (channel, row, col_elem) with different input runs
    p = make_placement("bad", 32, 2, [0, 0, 0, 0], [0, 1, 0, 1], [0, 0, 1, 1], [0, 0, 0, 0], [0, 1, 0, 1],
                       [0, 16, 16, 0], [16, 16, 16, 16])
    with pytest.raises(PlacementError, match="lockstep"):
        check_placement(p, ps)


@pytest.mark.parametrize("name", list_models())
def test_every_model_fits_8_channels(name):
    model = load_model(name)
    mp = place_model(model, PS)
    check_model_placement(mp)
    g = build_decode_graph(model, model.context)
    vmm_ids = {n for n, a in g.nodes(data=True) if a["kind"] == "vmm"}
    assert set(mp.ops) == vmm_ids
    for op_id, p in mp.ops.items():
        a = g.nodes[op_id]
        assert (p.d_in, p.d_out) == (a["d_in"], a["d_out"])
    assert mp.rows_used <= mp.rows_available


def test_model_too_large_is_a_clean_input_error():
    with pytest.raises(InputError) as ei:
        place_model(load_model("gpt2-xl"), pim(channels=4))
    e = ei.value
    assert e.path == "model" and "hardware.pim.channels=4" in e.message and "use at least 8 channels" in e.message


def test_layers_share_a_layout_up_to_a_row_offset():
    mp = place_model(load_model("gpt2-small"), PS)
    a, b = mp["L0.mlp.fc1"], mp["L3.mlp.fc1"]
    assert b.row_range[0] > a.row_range[0]
    assert np.array_equal(b.row - b.row_range[0], a.row - a.row_range[0])


def test_a_shifted_placement_makes_its_rows_on_first_read():
    mp = place_model(load_model("gpt2-small"), PS)
    src = mp.kv.score_placement(0, 300).__dict__["_row_source"]
    p = src.shifted(1000, "moved")
    assert "_row" not in p.__dict__ and p.row_range == (src.row_range[0] + 1000, src.row_range[1] + 1000)
    assert all(getattr(p, a) is getattr(src, a) for a in ("channel", "bank", "col_elem", "out_index", "in_start",
                                                          "length"))
    assert np.array_equal(p.row, src.row + 1000) and not p.row.flags.writeable and p.row is p.row
    assert (p.name, p.d_in, p.d_out, p.elements) == ("moved", src.d_in, src.d_out, src.elements)


@pytest.mark.parametrize("name,ctx", [("gpt2-xl", 1), ("gpt2-xl", 200), ("gpt2-xl", 1024), ("gpt3-large", 777),
                                      ("gpt3-xl", 2048)])
def test_kv_placements(name, ctx):
    model = load_model(name)
    mp = place_model(model, PS)
    kv = mp.kv
    H, dh = model.n_heads, model.d_head
    for layer in (0, model.n_layers - 1):
        s = kv.score_placement(layer, ctx)
        check_placement(s, PS, dense=False)
        assert (s.d_in, s.d_out) == (model.d_model, H * ctx)
        # each score (h, t) reads exactly head h of q
        assert np.array_equal(np.sort(s.out_index), np.arange(H * ctx))
        assert np.array_equal(s.in_start, (s.out_index // ctx) * dh) and (s.length == dh).all()
        lo, hi = s.row_range
        assert kv.k_base(layer) <= lo and hi <= kv.v_base(layer)
        c = kv.context_placement(layer, ctx)
        check_placement(c, PS, dense=False)
        assert (c.d_in, c.d_out) == (H * ctx, model.d_model)
        # each output (h, i) reads exactly p[h, 0:ctx]
        tot = np.bincount(c.out_index, weights=c.length, minlength=model.d_model)
        assert (tot == ctx).all()
        assert ((c.in_start >= (c.out_index // dh) * ctx) & (c.in_start + c.length <= (c.out_index // dh + 1) * ctx)).all()
        lo, hi = c.row_range
        assert kv.v_base(layer) <= lo and hi <= kv.v_base(layer) + kv.v_rows


@pytest.mark.parametrize("name,channels", [("gpt2-small", 8), ("gpt3-xl", 8), ("gpt2-medium", 2)])
def test_score_placements_have_equal_slot_signatures_exactly_when_their_slot_tables_are_equal(name, channels):
    """`PimSystem` looks a score placement's slot signature up instead of its slot table (the
    prefix of the whole context's slots first seen before it): equal signatures <-> equal slot
    tables (rows relative to the first), over every context of the first 700 and a few later."""
    from hwsim.mapping.lowering import slot_table
    from hwsim.mapping.partition import slot_signature, stream_origin

    ps = load_pim({"preset": "pim_gpt", "channels": channels})
    kv = place_model(load_model(name), ps).kv
    seen = {}
    for ctx in [*range(1, 701), kv.context - 1, kv.context]:
        p = stream_origin(kv.score_placement(0, ctx))
        t = slot_table(p, ps)
        table = b"".join(a.tobytes() for a in (t[0], t[1] - p.row_range[0], *t[2:]))
        seen.setdefault(slot_signature(p), set()).add(table)
    assert all(len(tables) == 1 for tables in seen.values())                  # equal signature -> equal table
    assert len({t for tables in seen.values() for t in tables}) == len(seen)  # different signature -> different
    assert 10 < len(seen) < 702


@pytest.mark.parametrize("name,channels", [("gpt2-small", 8), ("gpt3-xl", 8), ("gpt2-medium", 2), ("gpt3-small", 3)])
def test_context_placements_have_equal_slot_signatures_exactly_when_they_lower_to_equal_streams(name, channels):
    """A context placement's slot table never repeats, so its slot signature stands for the stream
    itself (its count of MAC columns): equal signatures <-> equal lowered streams (commands, banks,
    rows relative to the first, columns, bank accesses, row misses), over the first 300 contexts
    and those around every row piece's end."""
    from hwsim.mapping.partition import slot_signature, stream_origin

    ps = load_pim({"preset": "pim_gpt", "channels": channels})
    kv = place_model(load_model(name), ps).kv
    tpr = kv.tokens_per_row
    ctxs = {*range(1, 301), kv.context}
    for end in range(tpr, kv.context + 1, tpr):
        ctxs |= {c for c in range(end - 17, end + 18) if 1 <= c <= kv.context}
    seen = {}
    for ctx in sorted(ctxs):
        p = stream_origin(kv.context_placement(0, ctx))
        low = lower_vmm(p, ps)
        stream = b"".join(a.tobytes() for a in low.stream(p.row_range[0]))
        seen.setdefault(slot_signature(p), set()).add(stream)
    assert all(len(streams) == 1 for streams in seen.values())                   # equal signature -> equal stream
    assert len({s for streams in seen.values() for s in streams}) == len(seen)  # different signature -> different
    assert len(seen) > 20


def test_kv_region_is_reserved_after_weights():
    model = load_model("gpt3-xl")
    mp = place_model(model, PS)
    lo, hi = mp.regions["kv"]
    assert lo >= mp.regions["lm_head"][1] and hi == mp.rows_used
    assert mp.kv.total_rows == model.n_layers * (mp.kv.k_rows + mp.kv.v_rows)


def test_lowering_structure():
    for d_in, d_out in [(1024, 16), (256, 64), (1600, 4800), (6400, 1600), (37, 300)]:
        p = place_matrix("w", d_in, d_out, PS)
        low = lower_vmm(p, PS)
        counts = np.bincount(low.cmd, minlength=len(Cmd))
        slots = {(c, r, e) for c, r, e in zip(p.channel.tolist(), p.row.tolist(), p.col_elem.tolist())}
        slot_len = {(c, r, e): n for c, r, e, n in zip(p.channel.tolist(), p.row.tolist(), p.col_elem.tolist(),
                                                         p.length.tolist())}
        assert counts[Cmd.RD_MAC] == len(slots) * PS.readout_bursts
        assert counts[Cmd.MAC_AB] == sum(-(-n // 16) for n in slot_len.values())
        assert counts[Cmd.ACT_AB] == counts[Cmd.PREA] == len({(c, r) for c, r, _ in slots})
        bursts = sum(-(-min(1024, d_in - s) // 16) for s in range(0, d_in, 1024))
        assert counts[Cmd.WR_GB] == len(set(p.channel.tolist())) * bursts
        # channel-major, every command is rank scope on its channel's first bank
        ch = low.bank // PS.banks_per_channel
        assert (np.diff(ch) >= 0).all() and (low.bank % PS.banks_per_channel == 0).all()


def _best_of(fn, n=3):
    best = float("inf")
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def test_lowering_and_simulation_are_fast():
    """GPT2-XL FC1 (1600 x 6400, 8 channels): lower + simulate, warm, well under 0.1 s (asserted with
    slack for loaded CI machines)."""
    ps = pim(refresh="none")
    p = place_matrix("fc1", 1600, 6400, ps)
    s = PimSystem(ps)
    s.vmm(p, memo=False)   # warm the numba kernels
    wall = _best_of(lambda: s.vmm(p, memo=False))
    assert wall < 0.25, wall


def test_no_packing_strategy_is_an_ablation():
    a = place_matrix("w", 256, 1024, PS)
    b = place_matrix("w", 256, 1024, PS, strategy="no_packing")
    assert check_placement(b, PS)["rows_per_bank"] == 4 * check_placement(a, PS)["rows_per_bank"]
    s = PimSystem(pim(refresh="none"))
    assert s.vmm(b).latency_cycles > s.vmm(a).latency_cycles
    with pytest.raises(InputError, match="strategy"):
        place_matrix("w", 4, 4, PS, strategy="magic")


def test_channel_count_scaling_is_near_linear():
    p_lat = []
    for ch in (4, 8, 16):
        ps = pim(channels=ch, refresh="none")
        p_lat.append(PimSystem(ps).vmm(place_matrix("fc1", 2048, 8192, ps)).latency_cycles)
    assert 1.8 < p_lat[0] / p_lat[1] < 2.1 and 1.7 < p_lat[1] / p_lat[2] < 2.1
    assert dataclasses.is_dataclass(PS)


def _apply(p: Placement, x: np.ndarray, weight_of) -> np.ndarray:
    """y = x W computed segment by segment, W[i, j] = weight_of(i, j)."""
    y = np.zeros(p.d_out)
    for j, i0, n in zip(p.out_index.tolist(), p.in_start.tolist(), p.length.tolist()):
        i = np.arange(i0, i0 + n)
        y[j] += x[i] @ weight_of(i, j)
    return y


def test_placements_compute_the_right_products():
    rng = np.random.default_rng(0)
    ps = pim(channels=2)
    W = rng.standard_normal((1100, 70))
    x = rng.standard_normal(1100)
    p = place_matrix("w", 1100, 70, ps)
    assert np.allclose(_apply(p, x, lambda i, j: W[i, j]), x @ W)
    # attention: scores and context against a K/V cache laid out per the KV placements
    model = load_model({"preset": "gpt2-small", "n_layers": 1, "context": 64})
    mp = place_model(model, ps)
    H, dh, ctx = model.n_heads, model.d_head, 37
    K = rng.standard_normal((ctx, model.d_model))
    V = rng.standard_normal((ctx, model.d_model))
    q = rng.standard_normal(model.d_model)
    sp = mp.kv.score_placement(0, ctx)
    s = _apply(sp, q, lambda i, j: K[j % ctx, i])
    ref = np.einsum("hd,thd->ht", q.reshape(H, dh), K.reshape(ctx, H, dh)).ravel()
    assert np.allclose(s, ref)
    probs = rng.random(H * ctx)
    cp = mp.kv.context_placement(0, ctx)
    o = _apply(cp, probs, lambda i, j: V[i - (j // dh) * ctx, j])
    ref = np.einsum("ht,thd->hd", probs.reshape(H, ctx), V.reshape(ctx, H, dh)).ravel()
    assert np.allclose(o, ref)
