"""`kind: t3` workloads: strict validation, the summary contract, byte-identical reruns, the
Perfetto timeline and the suite table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hwsim.errors import InputError
from hwsim.outputs import dumps_json
from hwsim.t3.workload import CONFIGS, suite_table
from hwsim.workload import load_workload, run_workload

ROOT = Path(__file__).resolve().parents[1]
MAIN = sorted((ROOT / "workloads" / "t3").glob("*.yaml"))
LARGE = sorted((ROOT / "workloads" / "t3_large").glob("*.yaml"))
SMALL = ["tokens=1024"]


def _write(tmp_path, text):
    p = tmp_path / "wl.yaml"
    p.write_text(text)
    return p


BASE = "kind: t3\nmodel: {name: m, hidden: 3072}\nsublayer: fc2\ntp: 8\n"


def test_shipped_workloads_are_the_16_cases_and_the_tp32_study():
    assert len(MAIN) == 16 and len(LARGE) == 12
    cases = {(load_workload(p).config.model.name, load_workload(p).config.sublayer, load_workload(p).config.tp)
             for p in MAIN}
    assert cases == {(m, s, t) for m in ("Mega-GPT-2", "T-NLG") for s in ("op", "fc2", "fc1", "ip") for t in (8, 16)}
    assert {load_workload(p).config.tp for p in LARGE} == {32}


def test_tp_that_does_not_divide_the_hidden_size_names_the_field(tmp_path):
    with pytest.raises(InputError) as e:
        load_workload(_write(tmp_path, BASE.replace("tp: 8", "tp: 7")))
    assert e.value.path == "tp" and "divide the hidden size" in e.value.message


@pytest.mark.parametrize("text, path", [
    (BASE.replace("sublayer: fc2", "sublayer: fc3"), "sublayer"),
    (BASE + "tokens: 1001\n", "tokens"),
    (BASE + "system: {link: {bandwidth_GBps: 0}}\n", "system.link.bandwidth_GBps"),
    (BASE + "system: {tracker: {entires: 4}}\n", "system.tracker.entires"),
    (BASE + "system: {mca: {threshold: -2}}\n", "system.mca.threshold"),
    (BASE.replace("hidden: 3072", "hidden: 3080") .replace("tp: 8", "tp: 4"), "model.hidden"),
])
def test_bad_fields_are_input_errors_naming_the_field(tmp_path, text, path):
    with pytest.raises(InputError) as e:
        load_workload(_write(tmp_path, text))
    assert e.value.path == path


def test_simulated_channels_must_divide_the_channels(tmp_path):
    wl = load_workload(_write(tmp_path, BASE + "tokens: 1024\nsystem: {sim: {channels_simulated: 3}}\n"))
    with pytest.raises(InputError) as e:
        run_workload(wl)
    assert e.value.path == "system.sim.channels_simulated"


@pytest.fixture(scope="module")
def small_run():
    wl = load_workload(ROOT / "workloads" / "t3" / "megagpt2_op_tp8.yaml", SMALL)
    return wl, run_workload(wl)


def test_summary_holds_every_configuration_with_its_metrics(small_run):
    _, res = small_run
    configs = res.summary["configs"]
    assert sorted(configs) == sorted(CONFIGS)
    t_seq = configs["sequential"]["time_ns"]
    for name, c in configs.items():
        for key in ("time_ns", "speedup_vs_sequential", "dram_bytes_total", "dram_bytes_read", "dram_bytes_written",
                    "link_bytes", "tracker_peak_entries", "dma_count", "energy_pJ", "energy_breakdown_pJ"):
            assert key in c, (name, key)
        assert c["speedup_vs_sequential"] == pytest.approx(t_seq / c["time_ns"])
        assert sorted(c["dram_bytes_read"]) == ["ag", "dma", "gemm", "nmc", "rs"]
        assert c["dram_bytes_total"] == sum(c["dram_bytes_read"].values()) + sum(c["dram_bytes_written"].values())
        e = c["energy_breakdown_pJ"]
        assert c["energy_pJ"] == pytest.approx(e["dram_commands"] + e["near_memory_adds"] + e["link_transfers"])
    assert configs["t3"]["dma_count"] == 6 * res.summary["gemm"]["tiles_per_stage"]
    assert configs["sequential"]["energy_breakdown_pJ"]["near_memory_adds"] == 0
    assert configs["t3"]["energy_breakdown_pJ"]["near_memory_adds"] > 0
    # AG is not fused: its traffic is the same in every configuration
    ag = {n: (c["dram_bytes_read"]["ag"], c["dram_bytes_written"]["ag"]) for n, c in configs.items()}
    assert len(set(ag.values())) == 1


def test_stats_are_flat_sorted_and_free_of_wall_clock(small_run):
    _, res = small_run
    keys = list(res.stats)
    assert keys == sorted(keys)
    assert all(isinstance(v, (int, float)) for v in res.stats.values())
    assert not any("wall" in k for k in keys)


def test_reruns_are_byte_identical(small_run):
    wl, res = small_run
    again = run_workload(wl)
    assert dumps_json(again.stats) == dumps_json(res.stats)
    assert dumps_json(again.summary) == dumps_json(res.summary)


def test_trace_option_writes_a_perfetto_timeline(tmp_path):
    wl = load_workload(ROOT / "workloads" / "t3" / "tnlg_fc2_tp16.yaml", SMALL)
    path = tmp_path / "trace.json"
    run_workload(wl, trace=str(path))
    doc = json.loads(path.read_text())
    names = {e.get("args", {}).get("name") for e in doc["traceEvents"] if e["ph"] == "M"}
    assert any(n and "GEMM stages" in n for n in names)
    assert any(n and "DMA" in n for n in names)
    assert any(n and "link out" in n for n in names)
    counters = [e for e in doc["traceEvents"] if e["ph"] == "C"]
    assert counters and {"compute", "communication"} <= set(counters[0]["args"])


def test_cli_run_and_suite_table(tmp_path):
    from hwsim.cli import main

    out = tmp_path / "run"
    assert main(["run", str(MAIN[0]), "-o", str(out), "--set", "tokens=1024"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    headers, rows, agg = suite_table([("a", summary), ("b", summary)])
    assert len(rows) == 2 and len(rows[0]) == len(headers)
    assert agg["t3_mca_speedup_geomean_%"] == rows[0][headers.index("t3_mca_%")]
