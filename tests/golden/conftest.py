"""Golden end-to-end outputs of the shipped workloads.

Regenerate with `pytest tests/golden --update-golden` (the option is defined here, so pass the
tests/golden folder, or a file in it, on the command line). `HWSIM_UPDATE_GOLDEN=1` does the same
from any working directory. Review the diff of tests/golden/ before committing.
"""

from __future__ import annotations

import os

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
