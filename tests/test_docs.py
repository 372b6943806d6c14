"""Docs never rot: the tutorial's commands run, and the generated reference is current."""

import re
import shlex
import shutil
from pathlib import Path

import pytest

from hwsim.cli import main
from hwsim.docgen import reference_markdown

ROOT = Path(__file__).resolve().parent.parent


def console_commands(md: str) -> list[str]:
    blocks = re.findall(r"```console\n(.*?)```", md, flags=re.S)
    return [line[2:].strip() for block in blocks for line in block.splitlines() if line.startswith("$ ")]


def test_tutorial_commands_run(tmp_path, monkeypatch, capsys):
    pytest.importorskip("matplotlib")
    shutil.copytree(ROOT / "workloads", tmp_path / "workloads")
    monkeypatch.chdir(tmp_path)
    cmds = console_commands((ROOT / "docs" / "tutorial.md").read_text())
    assert len(cmds) >= 8
    for cmd in cmds:
        argv = shlex.split(cmd)
        assert argv[0] == "hwsim"
        assert main(argv[1:]) == 0, cmd
    assert (tmp_path / "runs" / "queue-sweep" / "sweep.csv").exists()
    assert len((tmp_path / "runs" / "pim-channels" / "sweep.csv").read_text().splitlines()) == 4
    assert (tmp_path / "runs" / "t3-op" / "plots" / "queue_occupancy.png").exists()


def test_workload_reference_is_current():
    assert (ROOT / "docs" / "workload-reference.md").read_text() == reference_markdown()
