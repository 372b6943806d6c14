"""Trace mode and run folders from the command line: formats, outputs, clean errors."""

import json

import pytest

from hwsim.cli import main

REQUIRED = {"cycles", "reads", "writes", "row_hits", "row_misses", "row_conflicts", "read_latency_avg_cycles",
            "bandwidth_GBps", "n_act", "n_pre", "n_ref", "wall_s", "requests_per_s"}


def test_dramsim3_trace_json_and_commands(tmp_path, capsys):
    trace = tmp_path / "t.trc"
    trace.write_text("0x0 READ 0\n0x40 WRITE 3\n# comment\n\n0x80000 READ 10\n")
    out, cmds = tmp_path / "o.json", tmp_path / "c.csv"
    assert main(["dram", str(trace), "--preset", "GDDR6_16Gbps_x16", "--json", str(out),
                 "--dump-commands", str(cmds)]) == 0
    data = json.loads(out.read_text())
    assert REQUIRED <= set(data)
    assert data["format"] == "dramsim3" and data["reads"] == 2 and data["writes"] == 1
    lines = cmds.read_text().splitlines()
    assert lines[0] == "tick,channel,rank,bankgroup,bank,row,column,command"
    assert sum(line.endswith(",RD") for line in lines) == 2
    assert main(["check", str(cmds), "--preset", "GDDR6_16Gbps_x16"]) == 0


def test_ramulator_trace_autodetected(tmp_path, capsys):
    trace = tmp_path / "t.txt"
    trace.write_text("LD 0x1000\nST 0x2000\nLD 4096\n")
    assert main(["dram", str(trace), "--preset", "HBM2_2Gbps"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["format"] == "ramulator" and data["reads"] == 2 and data["writes"] == 1


def test_spec_file_with_shorthand_and_overrides(tmp_path, capsys):
    spec = tmp_path / "d.yaml"
    spec.write_text("""
organization: {channels: 1, ranks: 1, bankgroups: 4, banks_per_group: 4,
               rows: 16384, columns: 64, burst_bytes: 32}
timing: {tCK_ps: 570, nBL: 2, nCL: 24, nCWL: 6, nRCD: 27, nRP: 27,
         nRAS: 53, nRC: 79, nWR: 27, nRTP: 4, nCCD_S: 2, nCCD_L: 4, nRRD_S: 8,
         nRRD_L: 8, nWTR_S: 9, nWTR_L: 11, nFAW: 29, nRFC: 211, nREFI: 3333}
controller: {scheduler: frfcfs, page_policy: open, read_queue: 32, write_queue: 32,
             write_high_watermark: 0.8, write_low_watermark: 0.2, refresh: all_bank}
address_mapping: [row, bank, bankgroup, rank, column, channel]
""")
    trace = tmp_path / "t.txt"
    trace.write_text("LD 0x0\n")
    assert main(["dram", str(trace), "--spec", str(spec), "--set", "timing.nCL=30"]) == 0
    data = json.loads(capsys.readouterr().out)
    # ACT at 0, RD at nRCD = 27, data at 27 + nCL 30 + nBL 2.
    assert data["cycles"] == 59


@pytest.mark.parametrize("content, where", [
    ("0x0 READ\n", "line 1"),
    ("0x0 FETCH 3\n", "line 1.command"),
    ("0xZZ READ 3\n", "line 1.address"),
    ("0x0 READ 5\n0x40 READ 4\n", "line 2.cycle"),
    ("0x0 READ 99999999999999999999\n", "line 1.cycle"),       # found by the trace fuzzer: was an OverflowError
    ("LD\n", "line 1"),
    ("", "holds no requests"),
])
def test_malformed_traces_exit_2(tmp_path, capsys, content, where):
    trace = tmp_path / "bad.txt"
    trace.write_text(content)
    assert main(["dram", str(trace), "--preset", "GDDR6_16Gbps_x16"]) == 2
    err = capsys.readouterr().err
    assert str(trace) in err and where in err and "Traceback" not in err


@pytest.mark.parametrize("args, needle", [
    (["--preset", "nope"], "valid: GDDR6_16Gbps_x16"),
    (["--preset", "GDDR6_16Gbps_x16", "--set", "timing.nRC=3"], "timing.nRC: got 3"),
    (["--preset", "GDDR6_16Gbps_x16", "--set", "timing.nCL=-1"], "timing.nCL: got -1"),
    (["--preset", "GDDR6_16Gbps_x16", "--set", "timing.bogus=1"], "timing.bogus: unknown key"),
    (["--preset", "GDDR6_16Gbps_x16", "--set", "controller.scheduler=lifo"], "controller.scheduler"),
    (["--preset", "GDDR6_16Gbps_x16", "--set", "organization.rows=1000"], "power of two"),
])
def test_bad_specs_exit_2(tmp_path, capsys, args, needle):
    trace = tmp_path / "t.txt"
    trace.write_text("LD 0x0\n")
    assert main(["dram", str(trace), *args]) == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err


def test_a_negative_traffic_seed_exits_2(tmp_path, capsys):
    """Found by the workload fuzzer: numpy's generator refused it with a traceback (exit 1)."""
    out = tmp_path / "run"
    assert main(["run", "workloads/smoke.yaml", "-o", str(out), "--set", "traffic.seed=-5"]) == 2
    err = capsys.readouterr().err
    assert "traffic.seed: got -5" in err and "Traceback" not in err and not out.exists()


def test_run_folder_and_no_overwrite(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", "workloads/smoke.yaml", "-o", str(out)]) == 0
    names = {p.name for p in out.iterdir()}
    assert {"config.resolved.yaml", "stats.json", "summary.json", "run.json", "commands.csv"} <= names
    before = (out / "stats.json").read_text()
    assert main(["run", "workloads/smoke.yaml", "-o", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["run", "workloads/smoke.yaml", "-o", str(out), "--overwrite"]) == 0
    assert (out / "stats.json").read_text() == before  # deterministic, byte for byte
    assert main(["check", str(out / "commands.csv"), "--preset", "GDDR6_16Gbps_x16"]) == 0


def test_version_presets_help(capsys):
    assert main(["--version"]) == 0
    assert "hwsim 0.1.0" in capsys.readouterr().out
    assert main(["presets", "dram"]) == 0
    out = capsys.readouterr().out
    assert "GDDR6_AiM" in out and "HBM2_2Gbps" in out
    assert main(["bogus-command"]) == 2


def test_dramsim3_addresses_are_hex_without_prefix(tmp_path):
    # DRAMSim3 reads the address with std::hex: "1000" is 0x1000. Ramulator 2 uses std::stoll:
    # "4096" without 0x is decimal.
    from hwsim.dram_pim.trace import read_request_trace

    d3 = tmp_path / "d3.trc"
    d3.write_text("1000 READ 0\n0x40 WRITE 3\nff WRITE 5\n")
    t = read_request_trace(d3)
    assert t.format == "dramsim3" and t.addresses.tolist() == [0x1000, 0x40, 0xFF]
    assert t.arrive_cycle.tolist() == [0, 3, 5]
    ram = tmp_path / "r.txt"
    ram.write_text("LD 4096\nST 0x1000\n")
    assert read_request_trace(ram).addresses.tolist() == [4096, 4096]
