"""Golden summaries of the shipped PIM-GPT workloads (workloads/pim_gpt/*.yaml) at 2 generated
tokens (the shipped prompt, so the same contexts as the workloads' first two tokens), and of the
`vmm` examples. A change in any simulated number fails here; regenerate deliberately with
`pytest tests/golden --update-golden` and explain the change in the commit."""

from __future__ import annotations

from pathlib import Path

import pytest

from hwsim.workload import load_workload, run_workload

ROOT = Path(__file__).resolve().parents[2]
WORKLOADS = sorted((ROOT / "workloads" / "pim_gpt").glob("*.yaml"))
GOLDEN = Path(__file__).resolve().parent / "pim_gpt"
TOKENS = 2


def _run(path: Path) -> dict:
    wl = load_workload(path, [f"run.generated_tokens={TOKENS}"] if not path.name.startswith("vmm_") else None)
    return run_workload(wl).summary


@pytest.mark.parametrize("path", WORKLOADS, ids=[p.stem for p in WORKLOADS])
def test_golden_summary(path: Path, check_golden):
    got = _run(path)
    # the physical floor holds for every shipped workload (weights + KV at the peak MAC rate)
    if path.name.startswith("vmm_"):
        assert got["latency_ns"] >= got["bound_ns"] > 0
    else:
        assert got["latency_ns_per_token"] >= got["bound_ns_per_token"] > 0
    check_golden(got, GOLDEN / f"{path.stem}.json")


def test_every_shipped_model_workload_is_present():
    names = {p.stem for p in WORKLOADS}
    for m in ("gpt2-small", "gpt2-medium", "gpt2-large", "gpt2-xl", "gpt3-small", "gpt3-medium", "gpt3-large",
              "gpt3-xl"):
        assert m in names
