"""The command line as scripts use it: every command has --help with examples, --json where it
prints results, and the documented exit codes."""

import json

import pytest

from hwsim.cli import build_parser, main

COMMANDS = ["run", "dram", "check", "presets", "validate", "schema", "suite", "sweep", "plot", "compare"]


@pytest.mark.parametrize("cmd", COMMANDS)
def test_help_has_examples(cmd, capsys):
    assert main([cmd, "--help"]) == 0
    out = capsys.readouterr().out
    assert "examples:" in out and f"hwsim {cmd}" in out


def test_every_command_is_listed():
    sub = next(a for a in build_parser()._actions if a.__class__.__name__ == "_SubParsersAction")
    assert sorted(sub.choices) == sorted(COMMANDS)


def test_json_output_of_presets_validate_and_plot(tmp_path, capsys):
    assert main(["presets", "dram", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {"GDDR6_16Gbps_x16", "GDDR6_AiM", "HBM2_2Gbps"} <= {r["name"] for r in rows}
    assert all(r["kind"] == "dram" and r["description"] for r in rows)
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: dram\n")
    assert main(["validate", "workloads/smoke.yaml", str(bad), "--json"]) == 2
    verdicts = json.loads(capsys.readouterr().out)
    assert verdicts["workloads/smoke.yaml"] == "ok" and str(bad) in verdicts[str(bad)]
    pytest.importorskip("matplotlib")
    assert main(["run", "workloads/smoke.yaml", "-o", str(tmp_path / "r"), "--json"]) == 0
    capsys.readouterr()
    assert main(["plot", str(tmp_path / "r"), "--json"]) == 0
    paths = json.loads(capsys.readouterr().out)
    assert paths and all(p.endswith((".png", ".svg")) for p in paths)


def test_version_and_no_command(capsys):
    assert main(["--version"]) == 0
    assert "hwsim" in capsys.readouterr().out
    assert main([]) == 2
