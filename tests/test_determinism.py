"""Same input, same stats.json and summary.json, byte for byte: across runs, with and without
memoisation, and with numba on and off (NUMBA_DISABLE_JIT=1, a small case in a subprocess)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hwsim.cli import main

TINY = {"name": "tiny", "n_layers": 2, "d_model": 128, "n_heads": 2, "d_ff": 512, "vocab": 1000, "context": 64}
FILES = ("stats.json", "summary.json")


def _tiny(tmp_path: Path) -> Path:
    p = tmp_path / "tiny.yaml"
    p.write_text(f"kind: pim_gpt\nmodel: {json.dumps(TINY)}\nrun: {{prompt_tokens: 5, generated_tokens: 3}}\n")
    return p


def _outputs(folder: Path) -> dict:
    return {name: (folder / name).read_bytes() for name in FILES}


def test_memo_and_plain_and_numba_off_are_byte_identical(tmp_path):
    wl = _tiny(tmp_path)
    assert main(["run", str(wl), "-o", str(tmp_path / "memo"), "--json"]) == 0
    assert main(["run", str(wl), "-o", str(tmp_path / "plain"), "--json", "--no-memo"]) == 0
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    subprocess.run([sys.executable, "-m", "hwsim", "run", str(wl), "-o", str(tmp_path / "nojit"), "--json"],
                   check=True, env=env, capture_output=True)
    ref = _outputs(tmp_path / "memo")
    assert _outputs(tmp_path / "plain") == ref
    assert _outputs(tmp_path / "nojit") == ref


def test_paper_workload_memo_vs_plain(tmp_path):
    wl = "workloads/pim_gpt/gpt2-small.yaml"
    sets = ["--set", "run.generated_tokens=2"]
    assert main(["run", wl, "-o", str(tmp_path / "memo"), "--json", *sets]) == 0
    assert main(["run", wl, "-o", str(tmp_path / "plain"), "--json", "--no-memo", *sets]) == 0
    assert _outputs(tmp_path / "memo") == _outputs(tmp_path / "plain")


@pytest.mark.slow
def test_long_instructions_with_forced_refreshes_memo_vs_plain(tmp_path):
    """GPT-2 large's lm_head.t7 is long enough that refreshes are forced into it: from a few tokens
    on, its runs replay by start phase (docs/pim_mapping.md §7); 40 tokens, ~40 s without the memo."""
    wl = "workloads/pim_gpt/gpt2-large.yaml"
    sets = ["--set", "run.generated_tokens=40"]
    assert main(["run", wl, "-o", str(tmp_path / "memo"), "--json", *sets]) == 0
    assert main(["run", wl, "-o", str(tmp_path / "plain"), "--json", "--no-memo", *sets]) == 0
    assert _outputs(tmp_path / "memo") == _outputs(tmp_path / "plain")


def test_smoke_dram_numba_off_identical(tmp_path):
    assert main(["run", "workloads/smoke.yaml", "-o", str(tmp_path / "jit"), "--json"]) == 0
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    subprocess.run([sys.executable, "-m", "hwsim", "run", "workloads/smoke.yaml", "-o", str(tmp_path / "nojit"),
                    "--json"], check=True, env=env, capture_output=True)
    assert _outputs(tmp_path / "jit") == _outputs(tmp_path / "nojit")


def test_a_tiny_memo_that_evicts_gives_the_same_bytes(tmp_path, monkeypatch):
    import hwsim.dram_pim.pim as pim
    wl = "workloads/pim_gpt/gpt2-small.yaml"
    sets = ["--set", "run.generated_tokens=2"]
    assert main(["run", wl, "-o", str(tmp_path / "full"), "--json", *sets]) == 0
    monkeypatch.setattr(pim, "MEMO_ENTRIES", 3)
    assert main(["run", wl, "-o", str(tmp_path / "lru"), "--json", *sets]) == 0
    full = json.loads((tmp_path / "full" / "run.json").read_text())
    lru = json.loads((tmp_path / "lru" / "run.json").read_text())
    assert lru["memo_misses"] > full["memo_misses"]          # entries really were evicted and re-simulated
    assert _outputs(tmp_path / "lru") == _outputs(tmp_path / "full")


def test_numba_cache_is_keyed_on_every_kernel_source(tmp_path):
    """A cached kernel must not outlive a change to code it inlines (device.py into scheduler.py):
    the cache folder is named after a digest of all kernel sources, unless NUMBA_CACHE_DIR is set."""
    from hwsim import kernel_source_digest
    for package in ("dram_pim", "t3"):
        (tmp_path / package).mkdir()
        (tmp_path / package / "a.py").write_text("x = 1\n")
    before = kernel_source_digest(tmp_path)
    (tmp_path / "dram_pim" / "a.py").write_text("x = 2\n")    # an edit to an inlined helper's module
    assert kernel_source_digest(tmp_path) != before
    code = "import os, hwsim; from numba.core import config; print(os.environ['NUMBA_CACHE_DIR'], config.CACHE_DIR)"
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    chosen, numba_dir = out.stdout.split()
    import hwsim
    digest = kernel_source_digest(Path(hwsim.__file__).resolve().parent)
    assert chosen == numba_dir and chosen.endswith(f"numba-{digest}")
    env["NUMBA_CACHE_DIR"] = str(tmp_path / "mine")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == [str(tmp_path / "mine")] * 2
