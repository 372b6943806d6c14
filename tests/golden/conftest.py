"""Golden end-to-end outputs of the shipped workloads.

Regenerate with `pytest tests/golden --update-golden` (the option is defined here, so pass the
tests/golden folder, or a file in it, on the command line). `HWSIM_UPDATE_GOLDEN=1` does the same
from any working directory. Review the diff of tests/golden/ before committing.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest


def pytest_addoption(parser):
    try:
        parser.addoption("--update-golden", action="store_true", default=False,
                         help="rewrite the golden files under tests/golden/ instead of comparing")
    except ValueError:  # already added by another conftest
        pass


@pytest.fixture
def update_golden(request) -> bool:
    try:
        flag = bool(request.config.getoption("--update-golden"))
    except ValueError:  # the option was not registered (conftest not loaded at startup)
        flag = False
    return flag or os.environ.get("HWSIM_UPDATE_GOLDEN", "") not in ("", "0")


def _compare(got, want, where=""):
    if isinstance(want, dict):
        assert isinstance(got, dict) and sorted(got) == sorted(want), f"{where}: keys differ"
        for k in want:
            _compare(got[k], want[k], f"{where}.{k}" if where else k)
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), f"{where}: lengths differ"
        for i, (g, w) in enumerate(zip(got, want)):
            _compare(g, w, f"{where}[{i}]")
    elif isinstance(want, float) and not isinstance(want, bool):
        assert math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-9), f"{where}: {got!r} != golden {want!r}"
    else:
        assert got == want, f"{where}: {got!r} != golden {want!r}"


@pytest.fixture
def check_golden(update_golden):
    """check_golden(summary, path): compare with the golden JSON at `path` (floats to 1e-9), or
    rewrite it with --update-golden; a missing golden is written and fails the test."""
    def check(got: dict, gold: Path) -> None:
        got = json.loads(json.dumps(got, sort_keys=True))
        if update_golden or not gold.exists():
            gold.write_text(json.dumps(got, indent=2, sort_keys=True) + "\n")
            if not update_golden:
                pytest.fail(f"no golden file {gold.name}: written now; review and commit it")
            return
        _compare(got, json.loads(gold.read_text()))
    return check
