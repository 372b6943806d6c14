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


T3 = sorted((ROOT / "workloads" / "t3").glob("*.yaml"))
T3_LARGE = sorted((ROOT / "workloads" / "t3_large").glob("*.yaml"))


def _check_t3(workload: Path, tokens: int):
    from hwsim.dram_pim.checker import check_trace
    from hwsim.t3 import system as S
    from hwsim.t3.memctrl import POL_FRFCFS, POL_MCA
    from hwsim.t3.sim import command_rows, simulate
    from hwsim.t3.workload import build_setup

    wl = load_workload(workload, [f"tokens={tokens}"])
    setup = build_setup(wl.config)
    for gemm, coll, policy in [(S.GEMM_T3, S.COLL_NONE, POL_FRFCFS), (S.GEMM_T3, S.COLL_NONE, POL_MCA),
                               (S.GEMM_BASE, S.COLL_NONE, POL_FRFCFS), (S.GEMM_NONE, S.COLL_RS_NMC, POL_FRFCFS)]:
        res = simulate(setup, gemm=gemm, coll=coll, policy=policy, record=True)
        rows = command_rows(setup, res)
        assert len(rows) > 100
        violations = check_trace(setup.dspec_dev, rows)
        assert violations == [], [str(v) for v in violations[:5]]


@pytest.mark.parametrize("workload", T3, ids=lambda p: p.stem)
def test_t3_workload_traces_are_legal(workload):
    """The fused T3 runs (FR-FCFS and MCA), the baseline GEMM and the RS with near-memory updates of
    every shipped T3 case, at 512 tokens (the shipped 8,192 are 16x longer, not different)."""
    _check_t3(workload, 512)


@pytest.mark.slow
@pytest.mark.parametrize("workload", T3_LARGE, ids=lambda p: p.stem)
def test_t3_large_workload_traces_are_legal(workload):
    _check_t3(workload, 1024)
