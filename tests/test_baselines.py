"""GPU/CPU roofline baseline: presets, exact per-op times, launch counts, energy, sanity anchors."""

from dataclasses import replace

import pytest

from hwsim.baselines import (LAUNCHES, DeviceSpec, baseline_table, evaluate, list_devices, list_modes,
                             load_device)
from hwsim.config import build
from hwsim.errors import InputError
from hwsim.graph import build_decode_graph, get_op
from hwsim.models import load_model
from hwsim.presets import list_presets, load_preset, preset_payload

GPUS = ["a100_40gb", "a100_80gb", "h100_sxm", "h200", "l4", "mi210", "mi250x", "mi300x", "rtx4090", "t4", "v100"]
LAYER_ROLES = ["ln1", "attn.qkv", "attn.kv_write", "attn.score", "attn.softmax", "attn.context", "attn.proj",
               "attn.residual", "ln2", "mlp.fc1", "mlp.gelu", "mlp.fc2", "mlp.residual"]


@pytest.fixture(scope="module")
def t4():
    return load_device("t4")


@pytest.fixture(scope="module")
def small512():
    return build_decode_graph(load_model("gpt2-small"), 512)


def test_shipped_devices():
    assert list_presets("gpu") == GPUS
    assert list_devices() == sorted(GPUS + ["xeon_gold_6154"])


def _numeric_paths(data, prefix=""):
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            yield from _numeric_paths(value, path + ".")
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            yield path


@pytest.mark.parametrize("kind, name", [(k, n) for k in ("gpu", "cpu", "models") for n in list_presets(k)])
def test_preset_documents_every_number(kind, name):
    data = load_preset(kind, name)
    assert isinstance(data["description"], str) and "\n" not in data["description"].strip()
    source = data["source"]
    for path in _numeric_paths(preset_payload(data)):
        parts = path.split(".")
        cited = [".".join(parts[:i]) for i in range(1, len(parts) + 1) if ".".join(parts[:i]) in source]
        assert cited and str(source[cited[-1]]).strip(), f"{kind}/{name}: {path} has no source"


def test_every_device_loads_with_its_modes():
    for name in GPUS:
        dev = load_device(name)
        assert dev.kind == "gpu" and list_modes(dev) == ("roofline", "graph", "cpp", "eager")
    cpu = load_device("xeon_gold_6154")
    assert cpu.kind == "cpu" and list_modes("xeon_gold_6154") == ("roofline", "ggml")


@pytest.mark.parametrize("mode, per_layer, per_token", [
    ("roofline", 0, 0), ("graph", 10, 5), ("cpp", 10, 5), ("eager", 25, 10), ("ggml", 15, 5)])
def test_kernel_inventory_matches_section_7_2(mode, per_layer, per_token):
    table = LAUNCHES[mode]
    assert sum(table.get(r, 0) for r in LAYER_ROLES) == per_layer
    assert sum(table.get(r, 0) for r in ("embed", "ln_f", "lm_head")) == per_token
    assert set(table) <= set(LAYER_ROLES) | {"embed", "ln_f", "lm_head"}


def test_memory_bound_op_time_is_bytes_over_effective_bandwidth(t4, small512):
    rows = {r.op_id: r for r in evaluate(small512, t4, "roofline").rows}
    lm = rows["lm_head"]
    assert lm.bound == "memory" and lm.launches == 0
    assert lm.bytes == get_op(small512, "lm_head").bytes_total
    assert lm.time_ns == lm.bytes / (320 * 0.70)  # GB/s == bytes/ns


def test_compute_bound_op_time_is_flops_over_effective_peak(t4, small512):
    fast_memory = replace(t4, mem_bw_GBps=1e9)
    row = next(r for r in evaluate(small512, fast_memory, "roofline").rows if r.op_id == "L0.mlp.fc1")
    assert row.bound == "compute"
    assert row.time_ns == row.flops / (65 * 1e3 * 0.60)  # TFLOP/s == 1e3 FLOP/ns


def test_fp32_graph_uses_fp32_peak_and_int8_needs_a_peak(t4):
    g = build_decode_graph(load_model("gpt2-small"), 8, dtype_bytes=4)
    row = next(r for r in evaluate(g, replace(t4, mem_bw_GBps=1e9), "roofline").rows if r.op_id == "L0.mlp.fc1")
    assert row.time_ns == row.flops / (8.1 * 1e3 * 0.60)
    with pytest.raises(InputError, match="fp16, fp32 only"):
        evaluate(build_decode_graph(load_model("gpt2-small"), 8, dtype_bytes=1), t4, "roofline")


@pytest.mark.parametrize("mode, launch_ns, launches", [("graph", 3000, 125), ("cpp", 9000, 125), ("eager", 25000, 310)])
def test_launch_overhead_adds_per_kernel(t4, small512, mode, launch_ns, launches):
    base = evaluate(small512, t4, "roofline")
    r = evaluate(small512, t4, mode)
    assert r.launches == launches == 12 * sum(LAUNCHES[mode].get(x, 0) for x in LAYER_ROLES) + \
        sum(LAUNCHES[mode].get(x, 0) for x in ("embed", "ln_f", "lm_head"))
    assert r.latency_ns_per_token - base.latency_ns_per_token == pytest.approx(launches * launch_ns, rel=1e-12)
    for a, b in zip(r.rows, base.rows):
        assert a.time_ns - b.time_ns == pytest.approx(a.launches * launch_ns, rel=1e-12, abs=1e-9)


@pytest.mark.parametrize("mode, power_W", [("roofline", 28.0), ("graph", 28.0), ("eager", 21.0)])
def test_energy_is_decode_power_times_time(t4, small512, mode, power_W):
    r = evaluate(small512, t4, mode)
    assert r.power_W == pytest.approx(power_W)
    assert r.energy_pJ_per_token == pytest.approx(power_W * r.latency_ns_per_token * 1e3, rel=1e-12)
    assert r.energy_tdp_pJ_per_token == pytest.approx(70 * r.latency_ns_per_token * 1e3, rel=1e-12)
    assert all(row.energy_pJ == pytest.approx(power_W * row.time_ns * 1e3) for row in r.rows)


def test_bad_mode_device_and_capacity(t4, small512):
    with pytest.raises(InputError) as exc:
        evaluate(small512, t4, "ggml")
    assert exc.value.path == "mode" and "roofline, graph, cpp, eager" in exc.value.message
    with pytest.raises(InputError, match="unknown device 'p100'"):
        load_device("p100")
    with pytest.raises(InputError, match="needs 3.12 GB"):
        evaluate(build_decode_graph(load_model("gpt2-xl"), 1), replace(t4, mem_capacity_GB=1.0), "graph")


@pytest.mark.parametrize("change, path", [
    ({"eta_m": 1.5}, "eta_m"),
    ({"launch_us": {"graph": 3.0, "turbo": 1.0}}, "launch_us.turbo"),
    ({"decode_power_frac": {"roofline": 0.4, "graph": 0.4, "cpp": 0.4}}, "decode_power_frac"),
    ({"peak_tflops": {"fp16": -1}}, "peak_tflops.fp16"),
])
def test_bad_device_field_names_its_path(change, path):
    data = {"name": "x", "kind": "gpu", **preset_payload(load_preset("gpu", "t4")), **change}
    with pytest.raises(InputError) as exc:
        build(DeviceSpec, data, path="device")
    assert exc.value.path == f"device.{path}"


def test_baseline_table_rows_and_skipped_modes():
    rows = baseline_table("gpt2-small", 256, ["t4", "xeon_gold_6154"], ["graph", "ggml"])
    assert [(r["device"], r["mode"]) for r in rows] == [("t4", "graph"), ("xeon_gold_6154", "ggml")]
    assert rows[0]["tokens_per_s"] == pytest.approx(1e9 / rows[0]["latency_ns_per_token"])
    with pytest.raises(InputError, match="'warp'"):
        baseline_table("gpt2-small", 256, ["t4"], ["warp"])


# gpu-baselines.md §7.7, T4 row, fp16, L_ctx = 512: predicted ms/token. The `roofline` column there is
# the ideal bound (eta = 1); the other columns use eta_m = 0.7. The table is rounded to 3 digits.
SECTION_7_7_T4 = {
    "gpt2-small": {"ideal": 0.83, "graph": 1.56, "cpp": 2.31, "eager": 8.9},
    "gpt2-medium": {"ideal": 2.37, "graph": 4.12, "cpp": 5.59, "eager": 18.6},
    "gpt2-large": {"ideal": 5.12, "graph": 8.42, "cpp": 10.6, "eager": 30.1},
    "gpt2-xl": {"ideal": 10.2, "graph": 16.1, "cpp": 19.0, "eager": 44.8},
}


@pytest.mark.parametrize("model", list(SECTION_7_7_T4))
def test_section_7_7_t4_predictions_within_rounding(t4, model):
    g = build_decode_graph(load_model(model), 512)
    ideal = replace(t4, eta_m=1.0, eta_c=1.0)
    for mode, ms in SECTION_7_7_T4[model].items():
        r = evaluate(g, ideal, "roofline") if mode == "ideal" else evaluate(g, t4, mode)
        assert r.latency_ns_per_token / 1e6 == pytest.approx(ms, rel=0.015), mode


def test_t4_gpt2_small_in_the_section_1_anchor_band(t4, small512):
    # §1: PyTorch-eager T4 decode of GPT-2-small class ~5-12 ms/token; bandwidth roofline ~0.8 ms.
    assert 5e6 <= evaluate(small512, t4, "eager").latency_ns_per_token <= 12e6
    ideal = evaluate(small512, replace(t4, eta_m=1.0, eta_c=1.0), "roofline").latency_ns_per_token
    assert ideal == pytest.approx(0.8e6, rel=0.05)
