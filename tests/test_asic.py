"""ASIC spec and vector unit: preset documentation, strict loading, cycle counts worked by hand."""

import pytest

from hwsim.asic.spec import load_asic
from hwsim.asic.vector_unit import VectorUnit
from hwsim.energy import load_energy_table
from hwsim.errors import InputError
from hwsim.presets import load_preset, preset_payload

# A small ASIC with distinct latencies so that every term of a formula shows.
SMALL = {"clock_MHz": 500, "lanes": 8, "latency_cycles": {"add": 2, "mul": 3, "cmp": 1, "bit": 1},
         "exp_taylor_degree": 4, "recip_newton_iterations": 2, "rsqrt_newton_iterations": 1,
         "gelu_tanh_degree": 7, "sram": {"vector_KiB": 16, "param_KiB": 8},
         "link": {"GBps_per_channel": 32, "latency_ns": 5}}


def unit(**changes):
    return VectorUnit(load_asic({**SMALL, **changes}, file="<test>"))


def _numeric_paths(data, prefix=""):
    for key, value in data.items():
        if isinstance(value, dict):
            yield from _numeric_paths(value, f"{prefix}{key}.")
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            yield f"{prefix}{key}"


def test_preset_documents_every_number():
    data = load_preset("asic", "pim_gpt_asic")
    source = data["source"]
    for path in _numeric_paths(preset_payload(data)):
        parts = path.split(".")
        cited = [".".join(parts[:i]) for i in range(1, len(parts) + 1) if ".".join(parts[:i]) in source]
        assert cited and str(source[cited[-1]]).strip(), f"{path} has no source"


def test_energy_table_has_every_asic_action():
    table = load_energy_table("pim_gpt_asic")
    for name in ("asic.add", "asic.mul", "asic.cmp", "asic.bit", "asic.sram_read", "asic.sram_write",
                 "asic.leakage", "link.io", "link.dram_read"):
        assert table.entries[name].source.strip()
    assert table.entries["asic.leakage"].unit == "mW"
    assert table.entries["link.io"].unit == "pJ/bit"


def test_load_preset_and_overrides():
    a = load_asic()
    assert (a.name, a.clock_MHz, a.lanes, a.period_ps) == ("pim_gpt_asic", 1000.0, 128, 1000)
    b = load_asic({"preset": "pim_gpt_asic", "clock_MHz": 100, "link": {"latency_ns": 2}})
    assert b.period_ps == 10000 and b.link.latency_ns == 2 and b.link.GBps_per_channel == 32
    assert load_asic({**SMALL, "clock_MHz": 300}).period_ps == 3333  # rounded to whole ps


def test_load_errors_name_the_field():
    with pytest.raises(InputError, match=r"w.yaml: hardware.asic.clock_MHz: got 0"):
        load_asic({"preset": "pim_gpt_asic", "clock_MHz": 0}, file="w.yaml", path="hardware.asic")
    with pytest.raises(InputError, match=r"hardware.asic.lanez: unknown key"):
        load_asic({"preset": "pim_gpt_asic", "lanez": 4}, file="w.yaml", path="hardware.asic")
    with pytest.raises(InputError, match=r"asic.preset: unknown asic preset 'nope'"):
        load_asic("nope")
    with pytest.raises(InputError, match=r"gelu_tanh_degree: got 6; expected an odd degree"):
        load_asic({**SMALL, "gelu_tanh_degree": 6})


def test_vector_cost_times_scales_every_field():
    """`VectorCost.times` names its fields one by one (it runs for every cost of every token): a
    field added to the class must be scaled too."""
    from dataclasses import astuple, fields

    from hwsim.asic.vector_unit import VectorCost

    c = VectorCost(*range(1, len(fields(VectorCost)) + 1))
    assert astuple(c.times(3)) == tuple(3 * v for v in astuple(c))
    assert c.times(2) == c + c


def test_elementwise_chained_by_hand():
    vu = unit()
    # 20 elements over 8 lanes: g = 3 slices; chain mul(3) add(2): (3 - 1) + 3 + 2 = 7 cycles.
    c = vu.elementwise(20, ("mul", "add"), inputs=2)
    assert c.cycles == 7
    assert (c.add, c.mul, c.cmp, c.bit) == (20, 20, 0, 0)
    assert (c.sram_read_bits, c.sram_write_bits) == (20 * 2 * 16, 20 * 16)
    assert vu.elementwise(0, ("add",)) == vu.elementwise(5, ())  # nothing to do: zero cost
    assert vu.elementwise(0, ("add",)).cycles == 0


def test_elementwise_single_issue_by_hand():
    vu = unit(issue="single")
    # g = 3: mul starts at 0, add at max(3, 3) = 3, last add slice at 5, done at 5 + 2 = 7.
    assert vu.elementwise(20, ("mul", "add")).cycles == 7
    # g = 5 (40 elements): add at max(5, 3) = 5; last slice issues at 9, done at 11.
    assert vu.elementwise(40, ("mul", "add")).cycles == 11
    # g = 1: sum of latencies, 3 + 2 + 1 = 6.
    assert vu.elementwise(8, ("mul", "add", "bit")).cycles == 6
    # chained at g = 5: (5 - 1) + 3 + 2 = 9.
    assert unit().elementwise(40, ("mul", "add")).cycles == 9


def test_reduce_by_hand():
    vu = unit()
    # 3 groups of 20 elements: 3 * ceil(20/8) = 9 slice cycles + ceil(log2 8) = 3 tree levels x 2.
    c = vu.reduce(3, 20, "add")
    assert c.cycles == 9 + 3 * 2
    assert c.add == 3 * 19 and c.sram_read_bits == 60 * 16 and c.sram_write_bits == 3 * 16
    # 5 elements: one slice, ceil(log2 5) = 3 levels of compares (latency 1).
    m = vu.reduce(1, 5, "cmp")
    assert (m.cycles, m.cmp) == (1 + 3, 4)
    assert vu.reduce(2, 1, "add").cycles == 2  # a single element needs no tree


def test_layernorm_by_hand():
    vu = unit()
    d = 20  # g = 3
    mean = (3 + 3 * 2) + 3          # reduce + (x 1/d)
    var = (2 + 3 + 2) + (3 + 3 * 2) + (3 + 2)  # pass [add, mul]; reduce; pass(1, [mul, add])
    rsqrt = 1 + 1 + 3 + (3 + 3 + 2 + 3)  # shift, magic subtract, 0.5x, one Newton iteration
    norm = 2 + 2 + 3 + 3 + 2         # pass [add, mul, mul, add]
    c = vu.layernorm(d)
    assert c.cycles == mean + var + rsqrt + norm == 61
    assert c.add == 19 + 20 + 19 + 1 + 1 + 40
    assert c.mul == 1 + 20 + 1 + 1 + 3 + 40
    assert c.bit == 2 and c.cmp == 0
    # reads: reduce d, pass d, reduce d, 3 inputs x d, plus 1-element passes (1 + 1 + 1)
    assert c.sram_read_bits == 16 * (20 + 1 + 20 + 20 + 1 + 1 + 60)


def test_softmax_by_hand():
    vu = unit()
    h, s = 2, 10  # 2 heads of 10 scores: 20 elements, g = 3; per head ceil(10/8) = 2 slices
    maxr = 2 * 2 + 3 * 1
    exp = 2 + (2 + 3 + 1 + 2 + 4 * (3 + 2) + 1)  # x-max, x log2e, split, f, 4 x (mul, add), 2^n
    sumr = 2 * 2 + 3 * 2
    recip = 0 + 1 + 2 * (3 + 2 + 3)  # 2 values: 1 slice; seed + 2 Newton-Raphson iterations
    norm = 2 + 3
    c = vu.softmax(h, s)
    assert c.cycles == maxr + exp + sumr + recip + norm == 70
    assert c.cmp == 2 * 9
    assert c.mul == 20 * (1 + 4) + 2 * 4 + 20
    assert c.add == 20 * (2 + 4) + 2 * 9 + 2 * 2
    assert c.bit == 20 * 2 + 2


def test_gelu_and_adds_by_hand():
    vu = unit()
    # GELU chain: 3 mul, add, mul, 2 cmp, mul, 3 x (mul, add), mul, add, mul, mul = 18 ops
    lat = 3 * 3 + 2 + 3 + 2 * 1 + 3 + 3 * (3 + 2) + 3 + 2 + 3 + 3
    c = vu.gelu(16)  # g = 2
    assert c.cycles == 1 + lat == 46
    assert (c.mul, c.add, c.cmp) == (16 * 11, 16 * 5, 16 * 2)
    assert vu.bias_add(20).cycles == 2 + 2 and vu.residual_add(8).cycles == 2
    assert vu.bias_add(20).sram_read_bits == 2 * 20 * 16
    acc = vu.accumulate(20, 4)  # 3 dependent adds over 3 slices
    assert acc.cycles == 2 + 3 * 2 and acc.add == 60 and acc.sram_read_bits == 4 * 20 * 16
    assert vu.accumulate(20, 1).cycles == 0
    assert vu.scale(20).cycles == 2 + 3 and vu.embedding_add(8).add == 8


def test_degrees_and_iterations_change_the_chains():
    base = unit()
    deeper = unit(exp_taylor_degree=6, recip_newton_iterations=3)
    # two more (mul, add) pairs in exp: +2 x 5 cycles; one more Newton-Raphson step: +8 cycles
    assert deeper.softmax(2, 10).cycles == base.softmax(2, 10).cycles + 10 + 8
    assert unit(gelu_tanh_degree=9).gelu(16).cycles == base.gelu(16).cycles + 5
    assert unit(rsqrt_newton_iterations=2).layernorm(20).cycles == base.layernorm(20).cycles + 11


def test_ps_follows_the_clock():
    fast, slow = unit(clock_MHz=1000), unit(clock_MHz=100)
    c = fast.layernorm(64)
    assert fast.ps(c) == c.cycles * 1000 and slow.ps(slow.layernorm(64)) == c.cycles * 10000


def test_counts_feed_the_energy_table():
    vu = unit()
    c = vu.softmax(2, 10)
    table = load_energy_table("pim_gpt_asic")
    pj = table.breakdown_pJ(c.counts())
    assert pj["asic.mul"] == pytest.approx(c.mul * 0.684)
    assert pj["asic.sram_read"] == pytest.approx(c.sram_read_bits * 0.194)
