"""Golden summaries of the 16 shipped T3 workloads (workloads/t3/*.yaml) at 1024 tokens (reduced
from the shipped 8192 to keep the test fast). A change in any simulated number fails here;
regenerate deliberately with `pytest tests/golden --update-golden` and explain it in the commit."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from hwsim.workload import load_workload, run_workload

ROOT = Path(__file__).resolve().parents[3]
WORKLOADS = sorted((ROOT / "workloads" / "t3").glob("*.yaml"))
GOLDEN = Path(__file__).resolve().parent
TOKENS = 1024


def _run(path: Path) -> dict:
    wl = load_workload(path, [f"tokens={TOKENS}"])
    return json.loads(json.dumps(run_workload(wl).summary, sort_keys=True))


def _compare(got, want, where=""):
    if isinstance(want, dict):
        assert isinstance(got, dict) and sorted(got) == sorted(want), f"{where}: keys differ"
        for k in want:
            _compare(got[k], want[k], f"{where}.{k}" if where else k)
    elif isinstance(want, float) and not isinstance(want, bool):
        assert math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-9), f"{where}: {got!r} != golden {want!r}"
    else:
        assert got == want, f"{where}: {got!r} != golden {want!r}"


@pytest.mark.parametrize("path", WORKLOADS, ids=[p.stem for p in WORKLOADS])
def test_golden_t3_summary(path: Path, update_golden: bool):
    got = _run(path)
    gold = GOLDEN / f"{path.stem}.json"
    if update_golden or not gold.exists():
        gold.write_text(json.dumps(got, indent=2, sort_keys=True) + "\n")
        if not update_golden:
            pytest.fail(f"no golden file {gold.name}: written now; review and commit it")
        return
    _compare(got, json.loads(gold.read_text()))


def test_every_main_case_has_a_golden():
    assert len(WORKLOADS) == 16
