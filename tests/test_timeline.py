"""Chrome/Perfetto trace output: valid JSON, named tracks, bounded by window and event cap."""

import json

from hwsim.cli import main
from hwsim.timeline import Timeline


def test_window_and_cap():
    tl = Timeline(window_start_ps=1000, window_end_ps=5000, max_events=3)
    for t in range(0, 10000, 1000):
        tl.span("p", "t", "e", t, 500)
    doc = json.loads(tl.to_json())
    spans = [e for e in doc["traceEvents"] if e["ph"] == "X"]
    assert [e["ts"] for e in spans] == [0.001, 0.002, 0.003]  # microseconds
    assert doc["otherData"]["dropped_events"] == 2  # 4000 and 5000 were in the window but over the cap


def test_dram_run_trace(tmp_path):
    trace = tmp_path / "trace.json"
    assert main(["run", "workloads/smoke.yaml", "-o", str(tmp_path / "r"), "--trace", str(trace), "--json"]) == 0
    doc = json.loads(trace.read_text())
    names = {e["args"]["name"] for e in doc["traceEvents"] if e["ph"] == "M"}
    assert "channel 0" in names and "bank 0" in names
    assert any(e["name"] == "ACT" for e in doc["traceEvents"])


def test_pim_gpt_run_trace_has_category_and_channel_tracks(tmp_path, capsys):
    trace = tmp_path / "trace.json"
    assert main(["run", "workloads/pim_gpt/gpt2-small.yaml", "-o", str(tmp_path / "r"), "--trace", str(trace),
                 "--json", "--set", "run.generated_tokens=1"]) == 0
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    doc = json.loads(trace.read_text())
    meta = {(e["pid"], e.get("tid")): e["args"]["name"] for e in doc["traceEvents"] if e["ph"] == "M"}
    names = set(meta.values())
    assert {"asic", "pim_vmm", "transfer", "PIM channels"} <= names
    assert {f"channel {c}" for c in range(8)} <= names
    spans = [e for e in doc["traceEvents"] if e["ph"] == "X"]
    by_track = {}
    for e in spans:
        by_track.setdefault(meta.get((e["pid"], e["tid"])), []).append(e)
    ch0 = by_track["channel 0"]
    # every PIM instruction appears on every channel track, inside the token
    assert len(ch0) == len(by_track["channel 7"]) > 0
    end_us = max(e["ts"] + e["dur"] for e in spans)
    assert end_us <= summary["latency_ns_per_token"] / 1000 + 1e-6
