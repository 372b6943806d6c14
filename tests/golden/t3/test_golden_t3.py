"""Golden summaries of the 16 shipped T3 workloads (workloads/t3/*.yaml) at 1024 tokens (reduced
from the shipped 8192 to keep the test fast). A change in any simulated number fails here;
regenerate deliberately with `pytest tests/golden --update-golden` and explain it in the commit."""

from __future__ import annotations

from pathlib import Path

import pytest

from hwsim.workload import load_workload, run_workload

ROOT = Path(__file__).resolve().parents[3]
WORKLOADS = sorted((ROOT / "workloads" / "t3").glob("*.yaml"))
GOLDEN = Path(__file__).resolve().parent
TOKENS = 1024


def _run(path: Path) -> dict:
    wl = load_workload(path, [f"tokens={TOKENS}"])
    return run_workload(wl).summary


@pytest.mark.parametrize("path", WORKLOADS, ids=[p.stem for p in WORKLOADS])
def test_golden_t3_summary(path: Path, check_golden):
    check_golden(_run(path), GOLDEN / f"{path.stem}.json")


def test_every_main_case_has_a_golden():
    assert len(WORKLOADS) == 16
