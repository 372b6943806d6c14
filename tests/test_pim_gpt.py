"""PIM-GPT controller and workloads: serial = sum of instruction latencies (worked by hand on a
fake PIM), overlap <= serial, latency >= the MAC-rate bound, exact memoisation, clean input errors,
run-folder outputs and the `vmm` kind."""

from __future__ import annotations

import csv
import io
import json

import pytest

from hwsim.asic.controller import (CATEGORIES, CompileOptions, Compiler, Executor, PimOpResult, attribute,
                                   layer_param_elems)
from hwsim.asic.spec import load_asic
from hwsim.asic.vector_unit import VectorUnit
from hwsim.asic.workload import bound_ns, suite_table
from hwsim.engine import Engine
from hwsim.errors import InputError
from hwsim.graph import build_decode_graph
from hwsim.models import load_model
from hwsim.workload import load_workload, run_workload

SMALL_ASIC = {"clock_MHz": 500, "lanes": 8, "latency_cycles": {"add": 2, "mul": 3, "cmp": 1, "bit": 1},
              "exp_taylor_degree": 4, "recip_newton_iterations": 2, "rsqrt_newton_iterations": 1,
              "gelu_tanh_degree": 7, "sram": {"vector_KiB": 16, "param_KiB": 8},
              "link": {"GBps_per_channel": 32, "latency_ns": 5}}
TINY = {"name": "tiny", "n_layers": 2, "d_model": 128, "n_heads": 2, "d_ff": 512, "vocab": 1000, "context": 64}


# ---------------------------------------------------------------------------------------------
# A fake PIM with fixed durations: the controller's arithmetic by hand


class FakePim:
    banks = 4

    def __init__(self, vmm_ps=1000, kv_ps=500):
        self.vmm_ps, self.kv_ps = vmm_ps, kv_ps
        self.calls = []

    def weight(self, op_id):
        return ("w", op_id)

    def score(self, layer, ctx):
        return ("score", layer, ctx)

    def context(self, layer, ctx):
        return ("context", layer, ctx)

    def parts(self, placement):
        return 1

    def tiles(self, placement, max_rows):
        return [placement]

    def vmm(self, placement, start_ps, memo):
        self.calls.append(("vmm", placement, start_ps))
        return PimOpResult(end_ps=start_ps + self.vmm_ps, busy_ps=self.vmm_ps, bytes_in=10, bytes_out=4)

    def kv_append(self, layer, token, start_ps, memo):
        self.calls.append(("kv", layer, token, start_ps))
        return PimOpResult(end_ps=start_ps + self.kv_ps, busy_ps=self.kv_ps, bytes_in=8)

    def refresh_idle(self, now_ps):
        return None


def _fake_run(policy, *, layers=1, ctx=4, params="fetch"):
    model = load_model({**TINY, "n_layers": layers, "d_model": 16, "d_ff": 64, "vocab": 32, "context": 8})
    asic = load_asic(SMALL_ASIC)
    vu = VectorUnit(asic)
    pim = FakePim()
    comp = Compiler(model, vu, pim, CompileOptions(include_embedding=False, include_lm_head=False, params=params))
    ex = Executor(Engine(), pim, asic, vu, channels=2, policy=policy, keep_segments=True)
    prog = comp.token(ctx, ctx - 1)
    return model, vu, prog, ex.run_token(prog)


def test_serial_latency_by_hand_on_a_fake_pim():
    model, vu, prog, r = _fake_run("serial")
    ps = vu.ps
    d, f, h, ctx = 16, 64, 2, 4
    issue = 2000                                      # 1 cycle at 500 MHz
    link = 5000                                       # 5 ns one way
    fetch_layer = link + layer_param_elems(model) * 2 * 1000 // 64   # 416 B over 2 x 32 B/ns = 6.5 ns
    fetch_lnf = link + 2 * d * 2 * 1000 // 64
    assert layer_param_elems(model) == 4 * d + 3 * d + d + f + d == 208
    vmm = link + 1000 + link                          # command path, PIM, result return
    kv = link + 500                                   # no result comes back
    asic = (ps(vu.layernorm(d)) * 3 + ps(vu.bias_add(3 * d)) + ps(vu.scale(h * ctx) + vu.softmax(h, ctx))
            + ps(vu.bias_add(d)) + ps(vu.residual_add(d)) + ps(vu.bias_add(f)) + ps(vu.gelu(f))
            + ps(vu.bias_add(d)) + ps(vu.residual_add(d)))
    names = [i.name for i in prog]
    assert names == ["L0.params", "L0.ln1", "L0.qkv", "L0.qkv.epi", "L0.kv", "L0.score", "L0.softmax",
                     "L0.context", "L0.proj", "L0.proj.epi", "L0.ln2", "L0.fc1", "L0.fc1.epi", "L0.fc2",
                     "L0.fc2.epi", "ln_f.params", "ln_f"]
    expected = len(prog) * issue + fetch_layer + fetch_lnf + 6 * vmm + kv + asic  # qkv score context proj fc1 fc2
    assert r.latency_ps == expected
    # serial: every instruction starts when the previous one ends; latencies add up exactly
    sched = r.schedule
    assert sched[0][2] == r.start_ps and sched[-1][3] == r.end_ps
    assert all(a[3] == b[2] for a, b in zip(sched, sched[1:]))
    assert sum(e - s for _, _, s, e in sched) == r.latency_ps
    assert sum(r.breakdown_ps.values()) == r.latency_ps
    assert r.breakdown_ps["pim_vmm"] == 6 * 1000 and r.breakdown_ps["kv_write"] == 500
    assert r.breakdown_ps["transfer"] == 6 * 2 * link + link + fetch_layer + fetch_lnf
    assert r.breakdown_ps["asic"] == asic and r.breakdown_ps["other"] == len(prog) * issue


def test_overlap_streams_epilogues_and_prefetches_parameters():
    _, vu, prog, ser = _fake_run("serial", layers=2)
    _, _, _, ov = _fake_run("overlap", layers=2)
    assert ov.latency_ps < ser.latency_ps
    assert sum(ov.breakdown_ps.values()) == ov.latency_ps
    s = {name: (unit, a, b) for name, unit, a, b in ov.schedule}
    # layer 1's parameters are fetched right after layer 0's FC2, while the ASIC runs its epilogue
    assert s["L1.params"][1] == s["L0.fc2"][2]
    assert s["L1.params"][1] < s["L0.fc2.epi"][2]
    # the FC1 epilogue (bias + GELU over 64 outputs) starts with FC1 and ends no earlier than
    # FC1's end + the epilogue on the last readout round (4 MAC units -> 4 outputs)
    fc1, epi = s["L0.fc1"], s["L0.fc1.epi"]
    tail = vu.ps(vu.bias_add(4)) + vu.ps(vu.gelu(4))
    assert epi[1] == fc1[1]
    assert epi[2] == max(epi[1] + 2000 + vu.ps(vu.bias_add(64)) + vu.ps(vu.gelu(64)), fc1[2] + tail)
    # LayerNorm waits for the residual (not streamed)
    assert s["L0.ln2"][1] >= s["L0.proj.epi"][2]


def test_a_reused_program_equals_one_built_whole():
    """Compiler.token rebuilds only the attention blocks of the previous token's program; across
    context lengths where the context VMM's outputs start needing accumulation (a new program
    shape), every instruction must equal that of a program built from scratch."""
    from hwsim.asic.controller import PimSystemPort
    from hwsim.dram_pim.pim import PimSystem, load_pim
    from hwsim.mapping.partition import place_model

    model = load_model({"preset": "gpt3-small", "n_layers": 2})   # context 2,048 > one KV row of tokens
    ps = load_pim({"preset": "pim_gpt", "channels": 8})
    mp = place_model(model, ps, model.context)
    port = PimSystemPort(PimSystem(ps, mp), mp)
    vu = VectorUnit(load_asic("pim_gpt_asic"))
    reused = Compiler(model, vu, port, CompileOptions())
    tpr = mp.kv.tokens_per_row
    shapes = set()

    def fields(ins):
        p = ins.payload
        payload = (p.name, p.row_range, p.elements) if hasattr(p, "row_range") else p
        return (ins.name, ins.unit, ins.kind, ins.op_id, ins.parts, payload, ins.deps, ins.stream_from,
                ins.tail_cycles)

    for ctx in range(tpr - 2, tpr + 3):
        prog = reused.token(ctx, ctx - 1)
        whole = Compiler(model, vu, port, CompileOptions()).token(ctx, ctx - 1)
        shapes.add(prog.shape)
        assert [fields(i) for i in prog] == [fields(i) for i in whole]
    assert shapes == {False, True}


def test_lazy_programs_encode_as_programs_built_whole():
    """A lazy program (layer 0's attention block only) must encode for the compiled serial loop
    exactly as a program built whole encodes instruction by instruction (its shared instructions,
    then its attention blocks, each in program order, as a template is encoded): every array, every
    payload a memo miss would read, and the time, op and cost dicts with their key order."""
    import numpy as np

    from hwsim.asic.controller import PimSystemPort, _Encoding
    from hwsim.dram_pim.pim import PimSystem, load_pim
    from hwsim.mapping.partition import place_model

    model = load_model({"preset": "gpt3-small", "n_layers": 3})
    ps = load_pim({"preset": "pim_gpt", "channels": 8})
    mp = place_model(model, ps, model.context)
    port = PimSystemPort(PimSystem(ps, mp), mp)
    asic = load_asic("pim_gpt_asic")
    vu = VectorUnit(asic)
    lazy_comp, ex = Compiler(model, vu, port, CompileOptions()), Executor(Engine(), port, asic, vu, ps.channels)
    assert ex.runs_compiled
    tpr = mp.kv.tokens_per_row

    def payload(p):
        return (p.name, p.row_range, p.elements, p.row.tobytes()) if hasattr(p, "row_range") else p

    lazies = 0
    for ctx in [1, 2, 3, *range(tpr - 2, tpr + 3), 700, 2047, 2048]:
        prog = lazy_comp.token(ctx, ctx - 1, lazy=True)
        lazies += prog.lazy
        got = ex.encode(prog)
        whole = Compiler(model, vu, port, CompileOptions()).token(ctx, ctx - 1)
        want = _Encoding(len(whole))   # the shared instructions first, as the executor encodes a template
        dynamic = set(whole.dynamic)
        for i in [i for i in range(len(whole)) if i not in dynamic] + sorted(dynamic):
            want.add(i, whole[i], ex)
        for a in ("kind", "pre_ps", "back_ps", "op", "sig", "base", "macs"):
            assert np.array_equal(getattr(got, a), getattr(want, a)), (ctx, a)
        for a in ("pim_ops", "cat", "op_ps", "costs"):
            assert list(getattr(got, a).items()) == list(getattr(want, a).items()), (ctx, a)
        assert (got.link_bits, got.offchip) == (want.link_bits, want.offchip)
        assert [payload(got.payloads[i]) for i in range(len(whole))] == [payload(p) for p in want.payloads]
    assert lazies >= 6   # most of them reused the previous program


def test_attribute_priorities():
    segs = [(0, 10, "asic"), (5, 20, "pim_vmm"), (25, 30, "transfer")]
    assert attribute(segs, 0, 40) == {"pim_vmm": 15, "kv_write": 0, "transfer": 5, "asic": 5, "other": 15}


# ---------------------------------------------------------------------------------------------
# The real PIM on a tiny model


def _write(tmp_path, body: str, name="w.yaml"):
    p = tmp_path / name
    p.write_text(body)
    return p


def _tiny_workload(tmp_path, run="{prompt_tokens: 5, generated_tokens: 3}", extra=""):
    return _write(tmp_path, f"""kind: pim_gpt
model: {json.dumps(TINY)}
run: {run}
{extra}""")


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tiny")
    out = {}
    for policy in ("serial", "overlap"):
        wl = load_workload(_tiny_workload(tmp), [f"run.policy={policy}"])
        out[policy] = run_workload(wl)
    out["no_memo"] = run_workload(load_workload(_tiny_workload(tmp)), no_memo=True)
    return out


def test_tiny_summary_fields(tiny_runs):
    s = tiny_runs["serial"].summary
    for key in ("latency_ns_per_token", "latency_ns_first_token", "latency_ns_last_token", "energy_pJ_per_token",
                "row_hit_rate", "bound_ns_per_token", "breakdown_ns", "energy_breakdown_pJ",
                "offchip_bytes_per_token", "baselines"):
        assert key in s
    assert (s["context_first"], s["context_last"], s["generated_tokens"]) == (6, 8, 3)
    assert sum(s["breakdown_ns"].values()) == pytest.approx(s["latency_ns_per_token"])
    assert sum(s["energy_breakdown_pJ"].values()) == pytest.approx(s["energy_pJ_per_token"])
    assert 0 < s["row_hit_rate"] < 1
    for dev, modes in s["baselines"].items():
        assert dev in ("t4", "xeon_gold_6154")
        for mode, r in modes.items():
            assert r["speedup"] == pytest.approx(r["latency_ns_per_token"] / s["latency_ns_per_token"])
            assert r["energy_efficiency"] == pytest.approx(r["energy_pJ_per_token"] / s["energy_pJ_per_token"])
    assert set(s["baselines"]["t4"]) == {"roofline", "graph", "eager"}
    assert set(s["baselines"]["xeon_gold_6154"]) == {"roofline", "ggml"}


def test_latency_never_below_the_bound(tiny_runs):
    model = load_model(TINY)
    from hwsim.dram_pim.pim import load_pim

    ps = load_pim("pim_gpt")
    for run in tiny_runs.values():
        s = run.summary
        rows = list(csv.DictReader(io.StringIO(run.files["tokens.csv"])))
        for row in rows:
            assert float(row["latency_ns"]) >= bound_ns(model, int(row["context"]), ps, True)
        assert s["latency_ns_per_token"] >= s["bound_ns_per_token"]


def test_overlap_never_slower_than_serial(tiny_runs):
    ser = list(csv.DictReader(io.StringIO(tiny_runs["serial"].files["tokens.csv"])))
    ov = list(csv.DictReader(io.StringIO(tiny_runs["overlap"].files["tokens.csv"])))
    for a, b in zip(ser, ov):
        assert float(b["latency_ns"]) <= float(a["latency_ns"])
    assert tiny_runs["overlap"].summary["latency_ns_per_token"] < tiny_runs["serial"].summary["latency_ns_per_token"]


def test_memoised_and_plain_runs_are_identical(tiny_runs):
    assert tiny_runs["no_memo"].stats == tiny_runs["serial"].stats
    assert tiny_runs["no_memo"].summary == tiny_runs["serial"].summary
    assert tiny_runs["serial"].perf["memo_hits"] > 0 and tiny_runs["no_memo"].perf["memo_hits"] == 0


def test_stats_are_flat_sorted_and_deterministic(tmp_path, tiny_runs):
    st = tiny_runs["serial"].stats
    assert list(st) == sorted(st)
    assert all(isinstance(v, (int, float)) for v in st.values())
    again = run_workload(load_workload(_tiny_workload(tmp_path)))
    assert again.stats == st


def test_ops_csv_joins_every_graph_op(tiny_runs):
    rows = list(csv.DictReader(io.StringIO(tiny_runs["serial"].files["ops.csv"])))
    g = build_decode_graph(load_model(TINY), 8)
    assert [r["op_id"] for r in rows] == list(g.nodes)
    assert "t4.eager_ns" in rows[0] and "speedup_xeon_gold_6154.ggml" in rows[0]
    by = {r["op_id"]: r for r in rows}
    assert float(by["L0.attn.qkv"]["sim_ns"]) > 0 and float(by["lm_head"]["sim_ns"]) > 0
    # serial: per-op busy times add up to the last token's latency (refresh is charged to ops too)
    total = sum(float(r["sim_ns"]) for r in rows)
    assert total == pytest.approx(tiny_runs["serial"].summary["latency_ns_last_token"], rel=1e-6)


def test_asic_clock_scales_asic_time_exactly(tmp_path):
    fast = run_workload(load_workload(_tiny_workload(tmp_path)))
    slow = run_workload(load_workload(_tiny_workload(tmp_path), ["hardware.asic.clock_MHz=100"]))
    assert slow.summary["breakdown_ns"]["asic"] == pytest.approx(10 * fast.summary["breakdown_ns"]["asic"])
    assert slow.summary["latency_ns_per_token"] > fast.summary["latency_ns_per_token"]


def test_without_lm_head_and_embedding(tmp_path):
    r = run_workload(load_workload(_tiny_workload(
        tmp_path, "{prompt_tokens: 0, generated_tokens: 2, include_lm_head: false, include_embedding: false}")))
    ops = [row["op_id"] for row in csv.DictReader(io.StringIO(r.files["ops.csv"]))]
    assert "lm_head" not in ops and "embed" not in ops
    assert r.summary["context_first"] == 1


def test_without_final_layernorm(tmp_path):
    """run.include_final_layernorm: false drops ln_f (and its parameter fetch) from the PIM-GPT
    program and from the baselines' op graph; serial, so the token gets exactly that much shorter."""
    run = "{prompt_tokens: 3, generated_tokens: 2, %s}"
    a = run_workload(load_workload(_tiny_workload(tmp_path, run % "include_final_layernorm: true")))
    b = run_workload(load_workload(_tiny_workload(tmp_path, run % "include_final_layernorm: false")))
    rows_a = {r["op_id"]: r for r in csv.DictReader(io.StringIO(a.files["ops.csv"]))}
    rows_b = {r["op_id"]: r for r in csv.DictReader(io.StringIO(b.files["ops.csv"]))}
    assert "ln_f" in rows_a and "ln_f" not in rows_b and "lm_head" in rows_b
    assert set(rows_a) - set(rows_b) == {"ln_f"}
    assert b.summary["include_final_layernorm"] is False and a.summary["include_final_layernorm"] is True
    lat_a = [float(r["latency_ns"]) for r in csv.DictReader(io.StringIO(a.files["tokens.csv"]))]
    lat_b = [float(r["latency_ns"]) for r in csv.DictReader(io.StringIO(b.files["tokens.csv"]))]
    assert all(y < x for x, y in zip(lat_a, lat_b))
    # ops.csv is the last token; its ln_f row is ln_f's busy time (fetch + LayerNorm + issue; serial)
    assert lat_a[-1] - lat_b[-1] == pytest.approx(float(rows_a["ln_f"]["sim_ns"]))
    for dev, modes in a.summary["baselines"].items():
        for mode, r in modes.items():
            assert b.summary["baselines"][dev][mode]["latency_ns_per_token"] < r["latency_ns_per_token"]


# ---------------------------------------------------------------------------------------------
# Input errors


def test_tokens_beyond_the_context(tmp_path):
    p = _tiny_workload(tmp_path, "{prompt_tokens: 60, generated_tokens: 10}")
    with pytest.raises(InputError, match=r"w.yaml: run.generated_tokens: got 10; prompt_tokens \+ generated_tokens "
                                         r"= 70 exceeds the context of tiny \(64 tokens\)"):
        load_workload(p)
    with pytest.raises(InputError, match=r"run.prompt_tokens: got 64"):
        load_workload(_tiny_workload(tmp_path, "{prompt_tokens: 64}"))
    wl = load_workload(_tiny_workload(tmp_path, "{prompt_tokens: 60}"))  # default: up to the context
    from hwsim.asic.workload import tokens
    assert tokens(wl.config.run, load_model(TINY)) == (60, 4)


def test_model_that_does_not_fit(tmp_path):
    p = _write(tmp_path, "kind: pim_gpt\nmodel: gpt2-xl\nrun: {generated_tokens: 1}\n"
                         "hardware: {pim: {preset: pim_gpt, channels: 2}}\n")
    wl = load_workload(p)
    with pytest.raises(InputError, match=r"w.yaml: model: gpt2-xl does not fit the PIM DRAM.*channels=2"):
        run_workload(wl)


def test_asic_buffers_too_small(tmp_path):
    p = _tiny_workload(tmp_path, extra="hardware: {asic: {preset: pim_gpt_asic, sram: {param_KiB: 1}}}")
    with pytest.raises(InputError, match=r"hardware.asic.sram.param_KiB: got 1.0; tiny needs 4 KiB"):
        run_workload(load_workload(p))


def test_bad_fields_are_named(tmp_path):
    cases = [
        ("run: {policy: fast}", r"run.policy: got 'fast'; expected one of 'serial', 'overlap'"),
        ("hardware: {asic: {preset: pim_gpt_asic, clock_MHz: -1}}", r"hardware.asic.clock_MHz: got -1"),
        ("hardware: {pim: {preset: nope}}", r"hardware.pim.preset: unknown pim preset 'nope'"),
        ("baselines: {devices: [t5]}", r"baselines.devices\[0\]: unknown device 't5'"),
        ("baselines: {modes: [turbo]}", r"baselines.modes\[0\]: got 'turbo'"),
        ("energy: [nope]", r"energy\[0\]: unknown energy preset 'nope'"),
        ("runn: {}", r"runn: unknown key"),
    ]
    for extra, msg in cases:
        p = _write(tmp_path, f"kind: pim_gpt\nmodel: gpt2-small\n{extra}\n")
        with pytest.raises(InputError, match=msg):
            load_workload(p)
    with pytest.raises(InputError, match=r"model.n_heads: got 5"):
        load_workload(_write(tmp_path, "kind: pim_gpt\nmodel: {preset: gpt2-small, n_heads: 5}\n"))


# ---------------------------------------------------------------------------------------------
# kind: vmm, suite table


def test_vmm_kind_hand_worked(tmp_path):
    # one channel, W 1024 x 16: tests/test_pim.py works the 388 command-clock cycles by hand
    # (TMOD: the 4 register <-> normal mode changes, aim_simulator's TMOD command)
    p = _write(tmp_path, "kind: vmm\nvmm: {d_in: 1024, d_out: 16}\nhardware: {pim: {preset: pim_gpt, channels: 1}}\n")
    r = run_workload(load_workload(p))
    s = r.summary
    assert s["cycles"] == 388 and s["latency_ns"] == 194.0
    assert s["commands"] == {"ACT_AB": 1, "MAC_AB": 64, "PREA": 1, "RD_MAC": 1, "TMOD": 4, "WR_GB": 64}
    # the shipped example is the same case
    from pathlib import Path
    shipped = run_workload(load_workload(Path(__file__).resolve().parents[1] / "workloads/pim_gpt/vmm_1024x16_1ch.yaml"))
    assert shipped.summary["cycles"] == 388 and shipped.summary["commands"] == s["commands"]
    # d_in = 2048, d_out = 32 (two GB windows): tests/test_pim.py works 1369 cycles by hand
    p2 = _write(tmp_path, "kind: vmm\nvmm: {d_in: 2048, d_out: 32}\nhardware: {pim: {preset: pim_gpt, channels: 1}}\n")
    s2 = run_workload(load_workload(p2)).summary
    assert s2["cycles"] == 1369
    assert s2["commands"] == {"ACT_AB": 4, "MAC_AB": 256, "PREA": 4, "RD_MAC": 4, "TMOD": 12, "WR_GB": 128}
    assert s["bound_ns"] == pytest.approx(1024 * 16 / (16 * 16))
    with pytest.raises(InputError, match=r"vmm.d_in: got 0"):
        load_workload(_write(tmp_path, "kind: vmm\nvmm: {d_in: 0, d_out: 16}\n"))


def test_suite_table_ranges():
    def summ(lat, t4, xeon):
        return {"model": "m", "latency_ns_per_token": lat, "energy_pJ_per_token": 2e6, "row_hit_rate": 0.98,
                "non_vmm_fraction": 0.1,
                "baselines": {"t4": {"eager": {"speedup": t4, "energy_efficiency": 2 * t4}},
                              "xeon_gold_6154": {"ggml": {"speedup": xeon, "energy_efficiency": 3 * xeon}}}}
    headers, rows, agg = suite_table([("a", summ(1000, 40, 600)), ("b", summ(2000, 130, 1000))])
    assert headers[:6] == ["workload", "model", "us/token", "uJ/token", "row hits", "non-VMM"]
    assert "x t4.eager" in headers and "EE xeon_gold_6154.ggml" in headers
    assert agg["x t4.eager range"] == "40 - 130" and agg["x xeon_gold_6154.ggml range"] == "600 - 1000"
    assert rows[0][:4] == ["a", "m", 1.0, 2.0]
    assert CATEGORIES == ("pim_vmm", "kv_write", "transfer", "asic", "other")


def test_functional_mode_through_the_workload(tmp_path):
    from hwsim.weights import random_gpt2_weights, save_npz

    w = save_npz(random_gpt2_weights(load_model(TINY), seed=0), tmp_path / "tiny.npz")
    wl = load_workload(_tiny_workload(tmp_path))
    r = run_workload(wl, weights=str(w), prompt_ids="1,2,3", generate=2, dump_logits=str(tmp_path / "l.npy"))
    f = r.summary["functional"]
    assert f["prompt_ids"] == [1, 2, 3] and len(f["generated_ids"]) == 2
    assert "setup_s" not in f and "functional_decode_s" in r.perf   # wall clock stays out of summary.json
    assert (r.summary["prompt_tokens"], r.summary["generated_tokens"], r.summary["context_first"]) == (3, 2, 4)
    assert (tmp_path / "l.npy").exists()


def test_embedding_fetch_by_hand():
    model = load_model({**TINY, "n_layers": 1, "d_model": 16, "d_ff": 64, "vocab": 32, "context": 8})
    asic = load_asic(SMALL_ASIC)
    vu = VectorUnit(asic)
    pim = FakePim()
    comp = Compiler(model, vu, pim, CompileOptions(include_embedding=True, include_lm_head=True))
    prog = comp.token(3, 2)
    assert [i.name for i in prog[:2]] == ["embed.fetch", "embed.add"] and prog[-2].name == "lm_head"
    r = Executor(Engine(), pim, asic, vu, channels=8, keep_segments=True).run_token(prog)
    s = {name: (a, b) for name, _, a, b in r.schedule}
    # two 32 B rows (d = 16 BF16), one per channel in parallel: 5 ns + 32 B / 32 GB/s = 6 ns, + issue
    assert s["embed.fetch"][1] - s["embed.fetch"][0] == 2000 + 5000 + 1000
    # the LM head epilogue: argmax over the vocabulary (a compare reduction), nothing to accumulate
    assert s["lm_head.epi"][1] - s["lm_head.epi"][0] == 2000 + vu.ps(vu.reduce(1, 32, "cmp"))
