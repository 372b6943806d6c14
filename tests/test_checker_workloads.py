"""The independent checker on the command traces of every shipped workload: no violation.

DRAM workloads run with fewer requests and PIM-GPT workloads with one generated token. The
small models and every VMM example run by default; the large models (6-7 M commands per token)
are marked slow (run them with `pytest -m slow`).
"""

from pathlib import Path

import pytest
import yaml

from hwsim.cli import main
from hwsim.dram_pim.checker import check_file
from hwsim.dram_pim.pim import load_pim
from hwsim.dram_pim.spec import load_dram_spec
from hwsim.workload import load_workload

ROOT = Path(__file__).resolve().parent.parent
DRAM = sorted((ROOT / "workloads" / "dram").glob("*.yaml")) + [ROOT / "workloads" / "smoke.yaml"]
PIM = sorted((ROOT / "workloads" / "pim_gpt").glob("*.yaml"))
SMALL = {"gpt2-small", "gpt3-small"}


def _run_and_check(tmp_path, workload: Path, sets: list[str], dspec):
    out = tmp_path / "run"
    args = ["run", str(workload), "-o", str(out), "--json", "--set", "dump_commands=true"]
    for s in sets:
        args += ["--set", s]
    assert main(args) == 0
    report = check_file(out / "commands.csv", dspec)
    assert report.n_commands > 0
    assert report.ok, [str(v) for v in report.violations[:5]]
    return report


@pytest.mark.parametrize("workload", DRAM, ids=lambda p: p.stem)
def test_dram_workload_traces_are_legal(tmp_path, workload, capsys):
    wl = load_workload(workload)
    src = wl.config.dram
    dspec = load_dram_spec(preset=src.preset, overrides=src.overrides or None)
    _run_and_check(tmp_path, workload, ["traffic.requests=3000"], dspec)


def _pim_params(workload: Path):
    from hwsim.asic.workload import pim_value

    wl = load_workload(workload)
    return wl, load_pim(pim_value(wl.config.hardware.pim)).dram_spec


@pytest.mark.parametrize("workload", [p for p in PIM if p.stem.startswith("vmm") or p.stem in SMALL],
                         ids=lambda p: p.stem)
def test_pim_workload_traces_are_legal(tmp_path, workload, capsys):
    wl, dspec = _pim_params(workload)
    sets = [] if wl.kind == "vmm" else ["run.generated_tokens=1"]
    _run_and_check(tmp_path, workload, sets, dspec)


@pytest.mark.slow
@pytest.mark.parametrize("workload", [p for p in PIM if not p.stem.startswith("vmm") and p.stem not in SMALL],
                         ids=lambda p: p.stem)
def test_large_model_traces_are_legal(tmp_path, workload, capsys):
    wl, dspec = _pim_params(workload)
    _run_and_check(tmp_path, workload, ["run.generated_tokens=1"], dspec)
