"""Functional mode: BF16 rounding, the bank MAC model, DRAM images, ASIC numerics, weight files and
whole-model decoding on the PIM path against the independent float64 reference.

Logit tolerance (docs/functional.md §3): the PIM path may be at most 3x as far from the float64
model as the float64 model itself moves when only its weights are rounded to BF16 (the "BF16
floor"), and at most 2^-6 of the largest |logit|; greedy tokens must be identical wherever the
reference's top-2 margin exceeds twice the observed error (and, for the seeds used, everywhere).
"""

import dataclasses
import time
import types

import numpy as np
import pytest

from hwsim.asic.functional import (
    NUMERICS,
    AsicMath,
    AsicNumerics,
    PackedKv,
    PimGeometry,
    PimGpt,
    PimMatrix,
    bf16_round,
    check_coverage,
    dram_image,
    make_placement,
    packed_placement,
    pim_vmm,
    pim_vmm_from_image,
    run_functional,
    tanh_poly,
    write_entries,
)
from hwsim.errors import InputError
from hwsim.mapping.kv_cache import KvLayout
from hwsim.mapping.partition import check_placement, place_matrix
from hwsim.models import ModelSpec
from hwsim.reference_gpt import ReferenceGPT, greedy_decode
from hwsim.weights import expected_shapes, load_gpt2_npz, random_gpt2_weights, save_npz

TINY = ModelSpec(n_layers=2, d_model=64, n_heads=4, d_ff=256, vocab=101, context=32, name="tiny")
ODD = ModelSpec(n_layers=2, d_model=72, n_heads=6, d_ff=200, vocab=97, context=40, name="odd")
SMALL2 = ModelSpec(n_layers=2, d_model=768, n_heads=12, d_ff=3072, vocab=50257, context=1024, name="gpt2-small-2L")
GEOM = PimGeometry()  # 8 ch x 16 banks, 1,024-element rows, 16 lanes, 2 KB GB, BF16 readout
TINY_ROWS = PimGeometry(channels=2, banks_per_channel=4, row_elems=64, gb_elems=64, rows_per_bank=4096)
PROMPT = [5, 17, 3, 42, 7]


def f32_bits(bits):
    return np.array(bits, dtype=np.uint32).view(np.float32)


def bits_of(x):
    return np.asarray(x, np.float32).view(np.uint32)


# ------------------------------------------------------------------------------------------------
# BF16 rounding


@pytest.mark.parametrize("src, want", [
    (0x3F800000, 0x3F800000),  # 1.0 exact
    (0x3F808000, 0x3F800000),  # 1 + 2^-8: tie, mantissa even -> down
    (0x3F818000, 0x3F820000),  # 1 + 3*2^-8: tie, mantissa odd -> up to even
    (0x3F808001, 0x3F810000),  # just above the tie -> up
    (0x3F807FFF, 0x3F800000),  # just below the tie -> down
    (0xBF818000, 0xBF820000),  # negative tie -> even, sign kept
    (0x3FFF8000, 0x40000000),  # carry into the exponent
    (0x7F7F7FFF, 0x7F7F0000),  # rounds down to the largest BF16
    (0x7F7FFFFF, 0x7F800000),  # largest float32 overflows to +inf
    (0xFF7FFFFF, 0xFF800000),  # ... and to -inf
    (0x7F800000, 0x7F800000),  # +inf untouched
    (0xFF800000, 0xFF800000),  # -inf untouched
    (0x80000000, 0x80000000),  # -0.0 untouched
    (0x00008000, 0x00000000),  # subnormal tie -> even (zero)
    (0x00018000, 0x00020000),  # subnormal tie -> even (up)
])
def test_bf16_round_bit_patterns(src, want):
    assert int(bits_of(bf16_round(f32_bits(src)))) == want


def test_bf16_round_keeps_nans_nan():
    nans = f32_bits([0x7FC00000, 0x7F800001, 0xFF800001, 0x7FFFFFFF, 0xFFC12345])
    out = bf16_round(nans)
    assert np.all(np.isnan(out))
    assert np.all(bits_of(out) & 0xFFFF == 0)  # a BF16 bit pattern
    assert list(np.signbit(out)) == [False, False, True, False, True]


def test_bf16_round_matches_nearest_even_on_random_floats():
    rng = np.random.default_rng(1)
    bits = rng.integers(0, 2**32, 200_000, dtype=np.uint64).astype(np.uint32)
    x = bits.view(np.float32)
    x = x[np.isfinite(x) & (np.abs(x) < 3.3e38)]
    b = x.view(np.uint32)
    lo = b & np.uint32(0xFFFF0000)  # truncation (towards zero)
    hi = lo + np.uint32(0x10000)    # one BF16 ulp further from zero
    dlo = np.abs(x.astype(np.float64) - lo.view(np.float32).astype(np.float64))
    dhi = np.abs(hi.view(np.float32).astype(np.float64) - x.astype(np.float64))
    lo_even = (lo >> 16) & 1 == 0
    want = np.where((dlo < dhi) | ((dlo == dhi) & lo_even), lo, hi)
    assert np.array_equal(bits_of(bf16_round(x)), want)
    assert bf16_round(np.float32(1.01171875)).shape == ()


# ------------------------------------------------------------------------------------------------
# The MAC model


def slow_pim(x, W, pl, lanes=16, readout="fp32"):
    """Scalar emulation of the bank MAC + ASIC accumulation (the definition, one FP32 op at a time)."""
    xb, Wb = bf16_round(x), bf16_round(W)
    parts = []
    for s in range(len(pl.out_index)):
        col, st, ln, j = (int(a[s]) for a in (pl.col_elem, pl.in_start, pl.length, pl.out_index))
        acc = np.float32(0)
        for c in range(col // lanes, (col + ln - 1) // lanes + 1):
            p = []
            for lane in range(lanes):
                r = c * lanes + lane - col
                p.append(np.float32(Wb[st + r, j]) * np.float32(xb[st + r]) if 0 <= r < ln else np.float32(0))
            while len(p) > 1:
                p = [np.float32(p[k] + p[k + 1]) for k in range(0, len(p), 2)]
            acc = np.float32(acc + p[0])
        if readout == "bf16":
            acc = np.float32(bf16_round(acc))
        parts.append((j, st, s, acc))
    y = np.zeros(pl.d_out, np.float32)
    for j, _, _, a in sorted(parts, key=lambda t: t[:3]):
        y[j] = np.float32(y[j] + a)
    return y


def placements(d_in, d_out):
    return {"pim_gpt": place_matrix("w", d_in, d_out, GEOM),
            "packed": packed_placement("w", d_in, d_out, TINY_ROWS)}


@pytest.mark.parametrize("d_in, d_out", [(70, 13), (200, 40), (2100, 6)])
@pytest.mark.parametrize("layout", ["pim_gpt", "packed"])
@pytest.mark.parametrize("readout", ["fp32", "bf16"])
def test_pim_vmm_is_bit_exact_with_the_scalar_definition(d_in, d_out, layout, readout):
    rng = np.random.default_rng(d_in + d_out)
    x = rng.normal(size=d_in).astype(np.float32)
    W = rng.normal(size=(d_in, d_out)).astype(np.float32)
    pl = placements(d_in, d_out)[layout]
    geom = GEOM if layout == "pim_gpt" else TINY_ROWS
    check_coverage(pl, geom)
    y = pim_vmm(x, W, pl, readout=readout)
    assert y.dtype == np.float32
    assert np.array_equal(y, slow_pim(x, W, pl, readout=readout))
    assert np.array_equal(y, pim_vmm_from_image(x, dram_image(W, pl, geom), pl, readout=readout))


def test_packed_placement_exercises_misaligned_and_split_segments():
    pl = packed_placement("w", 70, 13, TINY_ROWS)
    assert np.any(pl.col_elem % 16 != 0)              # segments start mid-column
    assert len(pl.out_index) > 13                      # some columns straddle rows
    check_coverage(pl, TINY_ROWS)


@pytest.mark.parametrize("layout", ["pim_gpt", "packed"])
def test_pim_vmm_within_bf16_tolerance_of_float64(layout):
    rng = np.random.default_rng(7)
    d_in, d_out = 3072, 96
    x = rng.normal(size=d_in).astype(np.float32)
    W = (rng.normal(size=(d_in, d_out)) * 0.02).astype(np.float32)
    pl = placements(d_in, d_out)[layout]
    y = pim_vmm(x, W, pl).astype(np.float64)
    exact = x.astype(np.float64) @ W.astype(np.float64)
    mag = np.abs(x.astype(np.float64)) @ np.abs(W.astype(np.float64))
    # operands: |bf16(a)bf16(b) - ab| <= ((1 + 2^-9)^2 - 1)|ab|; FP32 sums: tree (4) + accumulator
    # (<= d_in/16) + ASIC (<= 3 segments) additions, each <= 2^-24 relative.
    n_adds = 4 + d_in // 16 + 3
    bound = ((1 + 2.0**-9) ** 2 - 1 + n_adds * 2.0**-24) * mag
    assert np.all(np.abs(y - exact) <= bound)
    # and BF16 rounding does show up (the model is not secretly float64)
    assert np.abs(y - exact).max() > 1e-3 * bound.max()


def test_bf16_readout_rounds_each_segment():
    rng = np.random.default_rng(3)
    x = rng.normal(size=2100).astype(np.float32)
    W = rng.normal(size=(2100, 5)).astype(np.float32)
    pm = PimMatrix.from_dense(W, place_matrix("w", 2100, 5, GEOM))
    parts = pm.segment_sums(x)
    assert len(parts) == 15  # three 1,024-element GB windows per column
    y = pm(x, "bf16")
    assert np.all(bits_of(bf16_round(parts)) & 0xFFFF == 0)
    assert not np.array_equal(y, pm(x, "fp32"))


# ------------------------------------------------------------------------------------------------
# DRAM image round trip


def _vmm_case(d_in=768, d_out=300, seed=11):
    rng = np.random.default_rng(seed)
    return rng.normal(size=d_in).astype(np.float32), rng.normal(size=(d_in, d_out)).astype(np.float32)


def _with(pl, **changes):
    arrays = {k: np.array(getattr(pl, k)) for k in ("channel", "bank", "row", "col_elem", "out_index",
                                                    "in_start", "length")}
    for k, (s, v) in changes.items():
        arrays[k][s] = v
    return make_placement(pl.name, pl.d_in, pl.d_out, **arrays)


@pytest.mark.parametrize("layout", ["pim_gpt", "packed"])
def test_image_round_trip_reproduces_pim_vmm(layout):
    x, W = _vmm_case()
    geom = GEOM if layout == "pim_gpt" else TINY_ROWS
    pl = placements(*W.shape)[layout]
    image = dram_image(W, pl, geom)
    assert all(r.dtype == np.float32 and len(r) == geom.row_elems for r in image.values())
    assert np.array_equal(pim_vmm_from_image(x, image, pl), pim_vmm(x, W, pl))


def test_image_round_trip_detects_overlapping_segments():
    x, W = _vmm_case()
    pl = place_matrix("w", *W.shape, GEOM)
    check_placement(pl, GEOM)
    good = pim_vmm_from_image(x, dram_image(W, pl, GEOM), pl)
    a, b = 0, 1  # move segment b on top of segment a, 16 elements further on
    bad = _with(pl, channel=(b, pl.channel[a]), bank=(b, pl.bank[a]), row=(b, pl.row[a]),
                col_elem=(b, pl.col_elem[a] + 16))
    with pytest.raises(ValueError, match="overlap"):
        check_coverage(bad, GEOM)
    y = pim_vmm_from_image(x, dram_image(W, bad, GEOM), bad)
    assert np.abs(y[pl.out_index[a]] - good[pl.out_index[a]]) > 1.0  # a read b's weights
    assert y[pl.out_index[b]] == good[pl.out_index[b]]                # b itself is intact


def test_image_round_trip_detects_wrong_input_offset():
    x, W = _vmm_case(d_in=2100, d_out=20)
    pl = place_matrix("w", *W.shape, GEOM)
    good = pim_vmm_from_image(x, dram_image(W, pl, GEOM), pl)
    s = int(np.flatnonzero(pl.in_start == 1024)[0])
    bad = _with(pl, in_start=(s, 1024 - 16))  # second window claims to start 16 elements early
    with pytest.raises(ValueError, match="placed twice|not placed"):
        check_coverage(bad, GEOM)
    y = pim_vmm_from_image(x, dram_image(W, bad, GEOM), bad)
    j = pl.out_index[s]
    assert abs(y[j] - good[j]) > 1.0
    assert np.array_equal(np.delete(y, j), np.delete(good, j))


def test_image_reads_unwritten_rows_as_zero():
    x, W = _vmm_case(d_in=64, d_out=4)
    pl = place_matrix("w", 64, 4, GEOM)
    image = dram_image(W, pl, GEOM)
    image.pop(next(iter(image)))
    y = pim_vmm_from_image(x, image, pl)
    assert np.count_nonzero(y == 0) >= 1


# ------------------------------------------------------------------------------------------------
# Attention through the KV layouts


@pytest.mark.parametrize("kv_kind", ["mapping", "packed"])
def test_kv_append_and_attention_products(kv_kind):
    m = dataclasses.replace(TINY, d_model=96, n_heads=6)  # d_head 16
    rng = np.random.default_rng(5)
    if kv_kind == "mapping":
        geom, kv = GEOM, KvLayout.build(m, GEOM, m.context, base_row=7)
    else:
        geom, kv = TINY_ROWS, PackedKv.build(m, TINY_ROWS, base_row=7)
    T, H, dh = 21, m.n_heads, m.d_head
    K = rng.normal(size=(T, m.d_model)).astype(np.float32)
    V = rng.normal(size=(T, m.d_model)).astype(np.float32)
    image: dict = {}
    dim = np.arange(m.d_model)
    for t in range(T):  # append token by token, each at the places the placement for t+1 names
        h = dim // dh
        write_entries(image, kv.score_placement(1, t + 1), dim, h * (t + 1) + t, K[t], geom.row_elems)
        write_entries(image, kv.context_placement(1, t + 1), h * (t + 1) + t, dim, V[t], geom.row_elems)
    sp, cp = kv.score_placement(1, T), kv.context_placement(1, T)
    check_coverage(sp, geom, dense=False)
    check_coverage(cp, geom, dense=False)
    q = rng.normal(size=m.d_model).astype(np.float32)
    p = rng.random(H * T).astype(np.float32)
    Kb, Vb = bf16_round(K).astype(np.float64), bf16_round(V).astype(np.float64)
    qb, pb = bf16_round(q).astype(np.float64), bf16_round(p).astype(np.float64)
    want_s = np.einsum("thd,hd->ht", Kb.reshape(T, H, dh), qb.reshape(H, dh)).ravel()
    want_c = np.einsum("ht,thd->hd", pb.reshape(H, T), Vb.reshape(T, H, dh)).ravel()
    got_s = pim_vmm_from_image(q, image, sp)
    got_c = pim_vmm_from_image(p, image, cp)
    assert np.allclose(got_s, want_s, rtol=0, atol=1e-5 * np.abs(want_s).max())
    assert np.allclose(got_c, want_c, rtol=0, atol=1e-5 * np.abs(want_c).max())


# ------------------------------------------------------------------------------------------------
# ASIC numerics


def test_asic_approximations_meet_their_error_bounds():
    am, ex = AsicMath("asic"), AsicMath("exact")
    assert am.n == AsicNumerics("approx", 4, 2, 1, 7) == NUMERICS["asic"]
    x = np.linspace(-30, 0, 20001, dtype=np.float32)
    assert np.max(np.abs(am.exp(x) / np.exp(x.astype(np.float64)) - 1)) < 1.4e-3  # (ln 2)^5/5! = 1.3e-3
    a = np.geomspace(1e-3, 1e4, 20001).astype(np.float32)
    assert np.max(np.abs(am.recip(a) * a.astype(np.float64) - 1)) < 2.5e-4       # 12% -> 1.4% -> 2e-4
    assert np.max(np.abs(am.rsqrt(a) * np.sqrt(a.astype(np.float64)) - 1)) < 1.8e-3  # Quake III, 1 step
    u = np.linspace(-12, 12, 40001, dtype=np.float32)
    c, coef = tanh_poly(7)
    assert 2.0 < c < 3.0 and len(coef) == 4
    assert np.max(np.abs(am.tanh(u) - np.tanh(u.astype(np.float64)))) < 8.5e-3
    for f in ("exp", "recip", "rsqrt", "tanh"):
        arg = a if f in ("recip", "rsqrt") else x
        assert getattr(ex, f)(arg).dtype == np.float32 == getattr(am, f)(arg).dtype
    assert np.array_equal(ex.exp(x), np.exp(x))
    s = np.random.default_rng(0).normal(size=(3, 50)).astype(np.float32) * 4
    assert np.allclose(am.softmax(s).sum(axis=1), 1, atol=3e-3)
    more = AsicMath(AsicNumerics("approx", 8, 3, 3, 11))
    # FP32 floor of this range reduction: x·log2(e) carries |x|·2^-24·log2(e) absolute error
    assert np.max(np.abs(more.exp(x) / np.exp(x.astype(np.float64)) - 1)) < 4e-6


# ------------------------------------------------------------------------------------------------
# Whole-model decoding vs the float64 reference


def _compare(model, weights, pim_logits, ids, prompt):
    ref_ids, ref = greedy_decode(model, weights, prompt, len(ids), forced_ids=ids)
    floor_w = {k: bf16_round(v) for k, v in weights.items()}
    _, ref_bf16w = greedy_decode(model, floor_w, prompt, len(ids), forced_ids=ids)
    err = np.abs(pim_logits.astype(np.float64) - ref).max()
    floor = np.abs(ref_bf16w - ref).max()
    top2 = np.sort(ref, axis=1)[:, -2:]
    return err, floor, np.abs(ref).max(), np.asarray(ref_ids), top2[:, 1] - top2[:, 0]


def _assert_agrees(label, err, floor, peak, ref_ids, margin, ids, require_identical=True):
    ids = np.asarray(ids)
    print(f"{label}: max |logit error| {err:.4g}, BF16 floor {floor:.4g} (ratio {err / floor:.2f}), "
          f"max |logit| {peak:.3g} (error/peak {err / peak:.2%}), top-1 agreement {np.mean(ids == ref_ids):.0%}")
    assert err <= 3 * floor
    assert err <= 2.0**-6 * peak
    assert np.all((ids == ref_ids) | (margin < 2 * err))
    if require_identical:
        assert np.array_equal(ids, ref_ids)


@pytest.mark.parametrize("model, numerics, readout, layout", [
    (TINY, "asic", None, "pim_gpt"),   # the defaults: mapping layer, preset ASIC numerics, BF16 readout
    (TINY, "exact", "fp32", "pim_gpt"),
    (ODD, "asic", None, "pim_gpt"),    # d_head 12: heads padded to a 32 B column by the mapper
    (ODD, "asic", "bf16", "packed"),   # 64-element rows: misaligned lanes, columns straddling rows
])
def test_tiny_model_decode_agrees_with_reference(model, numerics, readout, layout):
    w = random_gpt2_weights(model, seed=0)
    pim = GEOM if layout == "pim_gpt" else TINY_ROWS
    net = PimGpt(model, w, pim, numerics, layout=layout, readout=readout)
    assert net.readout == (readout or "bf16")
    if layout == "packed":
        assert any(np.any(p.col_elem % 16) for p in net.placements.values())
    ids, logits = net.generate(PROMPT, 12)
    assert logits.shape == (12, model.vocab) and logits.dtype == np.float32
    assert len(set(ids)) > 3  # the random model does not just repeat a token
    _assert_agrees(f"{model.name} {numerics}/{net.readout}/{layout}", *_compare(model, w, logits, ids, PROMPT), ids)
    own_ids, _ = greedy_decode(model, w, PROMPT, 12)
    assert own_ids == ids  # the free-running reference decodes the same tokens


@pytest.fixture(scope="module")
def small2():
    w = random_gpt2_weights(SMALL2, seed=1)
    t0 = time.perf_counter()
    net = PimGpt(SMALL2, w)  # the mapping layer's placements, preset ASIC numerics, BF16 readout
    setup = time.perf_counter() - t0
    return w, net, setup


def test_gpt2_small_sized_decode_agrees_with_reference(small2):
    w, net, setup = small2
    assert net.placements["lm_head"].d_out == 50257
    t0 = time.perf_counter()
    ids, logits = net.generate(PROMPT, 4)
    per_step = (time.perf_counter() - t0) / (len(PROMPT) + 3)
    print(f"gpt2-small dims, 2 layers: setup {setup:.1f} s, {per_step * 1e3:.0f} ms per decode step")
    assert per_step < 1.0
    _assert_agrees("gpt2-small dims, 2 layers", *_compare(SMALL2, w, logits, ids, PROMPT), ids)


def test_reference_kv_cache_matches_full_recompute():
    w = random_gpt2_weights(TINY, seed=3)
    seq = [4, 8, 15, 16, 23, 42, 1]
    full = ReferenceGPT.from_weights(TINY, w)
    full.reset()
    all_logits = full.forward(seq)
    inc = ReferenceGPT.from_weights(TINY, w)
    inc.reset()
    step = np.stack([inc.forward([t])[-1] for t in seq])
    assert np.allclose(all_logits, step, atol=1e-10)


# ------------------------------------------------------------------------------------------------
# Weight files and the CLI entry point


def test_weight_file_round_trip(tmp_path):
    w = random_gpt2_weights(TINY, seed=2)
    path = save_npz(w, tmp_path / "w.npz")
    got = load_gpt2_npz(path, TINY)
    assert list(got) == list(expected_shapes(TINY))
    assert all(np.array_equal(got[k], w[k]) and got[k].dtype == np.float32 for k in w)


def test_weight_file_accepts_hf_names_and_float16(tmp_path):
    w = random_gpt2_weights(TINY, seed=2)
    hf = {("transformer." + (k + ".weight" if k in ("wte", "wpe") else k)): v.astype(np.float16) for k, v in w.items()}
    hf["lm_head.weight"] = w["wte"]
    hf["transformer.h.0.attn.bias"] = np.ones((1, 1, 32, 32), np.float32)  # HF causal-mask buffer
    got = load_gpt2_npz(save_npz(hf, tmp_path / "hf.npz"), TINY)
    assert np.array_equal(got["wte"], w["wte"].astype(np.float16).astype(np.float32))


@pytest.mark.parametrize("mutate, path, message", [
    (lambda w: w.pop("h.1.mlp.c_proj.bias"), "h.1.mlp.c_proj.bias", "missing; expected shape (64,)"),
    (lambda w: w.__setitem__("h.0.attn.c_attn.weight", np.zeros((64, 64), np.float32)),
     "h.0.attn.c_attn.weight", "got shape (64, 64); expected (64, 192)"),
    (lambda w: w.__setitem__("wpe", np.zeros((16, 64), np.float32)), "wpe", "got shape (16, 64); expected (32, 64)"),
    (lambda w: w.__setitem__("ln_f.bias", np.zeros(64, np.int32)), "ln_f.bias", "got dtype int32"),
    (lambda w: w["ln_f.weight"].__setitem__(3, np.nan), "ln_f.weight", "NaN"),
])
def test_weight_file_errors_name_the_array(tmp_path, mutate, path, message):
    w = random_gpt2_weights(TINY, seed=2)
    mutate(w)
    f = save_npz(w, tmp_path / "bad.npz")
    with pytest.raises(InputError) as exc:
        load_gpt2_npz(f, TINY)
    assert exc.value.file == str(f) and exc.value.path == path and message in exc.value.message


def test_weight_file_not_npz(tmp_path):
    for name, data in (("w.npy", None), ("w.txt", b"hello")):
        f = tmp_path / name
        if data is None:
            np.save(f, np.zeros(3))
        else:
            f.write_bytes(data)
        with pytest.raises(InputError, match="not a numpy .npz"):
            load_gpt2_npz(f, TINY)
    with pytest.raises(InputError, match="file not found"):
        load_gpt2_npz(tmp_path / "nope.npz", TINY)


def _wl(model):
    return types.SimpleNamespace(config=types.SimpleNamespace(model=model), file="wl.yaml")


def test_run_functional_writes_logits_and_summary(tmp_path):
    w = random_gpt2_weights(TINY, seed=0)
    wf = save_npz(w, tmp_path / "w.npz")
    out = tmp_path / "sub" / "logits.npy"
    s = run_functional(_wl(TINY), wf, "5,17,3,42,7", 6, out)
    logits = np.load(out)
    assert logits.shape == (6, TINY.vocab) and logits.dtype == np.float32
    assert s["generated_ids"] == [int(i) for i in logits.argmax(axis=1)]
    assert s["top1_agreement"] == 1.0 and s["max_abs_logit_error"] < 0.1
    assert s["reference_ids"] == s["generated_ids"] and s["readout"] == "bf16"
    assert [p.name for p in out.parent.iterdir()] == ["logits.npy"]  # no temporary left behind
    ex = run_functional(_wl(TINY), wf, [5, 17, 3, 42, 7], 6, None, numerics="exact", compare=False)
    assert ex["numerics"] == "exact" and "max_abs_logit_error" not in ex


@pytest.mark.parametrize("prompt, gen, path", [("5,101", 2, "--prompt-ids"), ("5,-1", 2, "--prompt-ids"),
                                                ("5,x", 2, "--prompt-ids"), ("", 2, "--prompt-ids"),
                                                ("1,2,3", 30, "--generate"), ("1", 0, "--generate")])
def test_run_functional_input_errors(tmp_path, prompt, gen, path):
    with pytest.raises(InputError) as exc:
        run_functional(_wl(TINY), tmp_path / "unused.npz", prompt, gen, tmp_path / "l.npy")
    assert exc.value.path == path
    assert not (tmp_path / "l.npy").exists()


def test_run_functional_on_a_loaded_pim_gpt_workload(tmp_path):
    from hwsim.workload import load_workload

    f = tmp_path / "wl.yaml"
    f.write_text("kind: pim_gpt\n"
                 "model: {n_layers: 2, d_model: 64, n_heads: 4, d_ff: 256, vocab: 101, context: 32, name: tiny}\n"
                 "hardware: {pim: {preset: pim_gpt, channels: 2}, asic: {preset: pim_gpt_asic, "
                 "exp_taylor_degree: 6}}\n")
    wl = load_workload(f)
    wf = save_npz(random_gpt2_weights(TINY, seed=0), tmp_path / "w.npz")
    s = run_functional(wl, wf, "5,17,3,42,7", 4, tmp_path / "l.npy")
    assert "exp degree 6" in s["numerics"] and s["top1_agreement"] == 1.0
    assert (s["channels"], s["banks_per_channel"]) == (2, 16)  # the workload's PIM spec was used
    assert np.load(tmp_path / "l.npy").shape == (4, 101)


def test_functional_mode_from_the_command_line(tmp_path):
    """`hwsim run WORKLOAD.yaml --weights W.npz --prompt-ids ... --generate N --dump-logits OUT.npy`
    (the issue's command line): float32 logits [steps, vocab], greedy ids equal their argmax, and the
    timing run covers the same prompt and generated tokens."""
    import json

    from hwsim.cli import main

    f = tmp_path / "wl.yaml"
    f.write_text("kind: pim_gpt\n"
                 "model: {n_layers: 2, d_model: 64, n_heads: 4, d_ff: 256, vocab: 101, context: 32, name: tiny}\n"
                 "hardware: {pim: {preset: pim_gpt, channels: 2}}\n")
    wf = save_npz(random_gpt2_weights(TINY, seed=1), tmp_path / "w.npz")
    out = tmp_path / "logits.npy"
    assert main(["run", str(f), "-o", str(tmp_path / "run"), "--weights", str(wf), "--prompt-ids", "15,11,61",
                 "--generate", "4", "--dump-logits", str(out)]) == 0
    logits = np.load(out)
    assert logits.shape == (4, TINY.vocab) and logits.dtype == np.float32
    s = json.loads((tmp_path / "run" / "summary.json").read_text())
    fs = s["functional"]
    assert fs["prompt_ids"] == [15, 11, 61] and fs["generated_ids"] == [int(i) for i in logits.argmax(axis=1)]
    assert fs["top1_agreement"] == 1.0
    assert (s["prompt_tokens"], s["generated_tokens"]) == (3, 4)
