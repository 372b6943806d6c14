"""Property tests on random request streams: nothing lost or duplicated, every request completes,
the independent checker finds no violation, the numba kernel equals its Python twin, and its
schedule is that of a plain reference controller (tests/reference_scheduler.py)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from numba import njit

from conftest import make_spec
from dram_streams import random_stream
from reference_scheduler import reference_schedule
from twin_run import traces

from hwsim.dram_pim.commands import Cmd
from hwsim.dram_pim.controller import command_csv, simulate
from hwsim.dram_pim.device import earliest

HERE = Path(__file__).parent


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 300))
def test_every_request_completes_once(seed, n):
    spec, addrs, writes, arrive = random_stream(seed, n)
    res = simulate(spec, addrs, writes, arrive, record=True)
    assert (res.done_tick >= 0).all() and (res.accept_tick >= 0).all()
    if arrive is not None:
        assert (res.accept_tick >= arrive).all()
    assert (res.done_tick > res.accept_tick).all()
    c = res.stats["commands"]
    assert c.get("RD", 0) + c.get("RDA", 0) == int((~writes).sum())
    assert c.get("WR", 0) + c.get("WRA", 0) == int(writes.sum())
    assert res.stats["row_hits"] + res.stats["row_misses"] + res.stats["row_conflicts"] == n
    # Reads return in no less than the read latency after acceptance.
    t = spec.timing
    assert ((res.done_tick - res.accept_tick)[~writes] >= t.nCL + t.nBL).all()


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 400))
def test_checker_accepts_controller_traces(seed, n, tmp_path_factory):
    from hwsim.dram_pim.checker import check_file

    spec, addrs, writes, arrive = random_stream(seed, n)
    res = simulate(spec, addrs, writes, arrive, record=True)
    path = tmp_path_factory.mktemp("cmds") / "cmds.csv"
    path.write_text(command_csv(spec, res.commands))
    report = check_file(path, spec)
    assert report.ok, [str(v) for v in report.violations[:5]]


def test_numba_kernel_equals_python_twin():
    seeds = list(range(18))  # every config of dram_streams.CONFIGS with both front ends
    compiled = traces(seeds, 250)
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    out = subprocess.run([sys.executable, str(HERE / "twin_run.py"), ",".join(map(str, seeds)), "250"],
                         capture_output=True, text=True, env=env, check=True)
    assert json.loads(out.stdout) == json.loads(json.dumps(compiled))
    assert sum(len(v[0]) for v in compiled.values()) > 2000


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 600))
def test_skipping_idle_decisions_changes_nothing(seed, n):
    """The kernel jumps over ticks at which a bound proves nothing can issue; the exhaustive loop
    (a decision at every tick after an issue) must give the same schedule, request by request."""
    spec, addrs, writes, arrive = random_stream(seed, n)
    fast = simulate(spec, addrs, writes, arrive, record=True)
    ref = simulate(spec, addrs, writes, arrive, record=True, exhaustive=True)
    for k in ("accept_tick", "done_tick", "row_class"):
        assert np.array_equal(getattr(fast, k), getattr(ref, k)), k
    for k in ("tick", "cmd", "bank", "row", "column"):
        assert np.array_equal(getattr(fast.commands, k), getattr(ref.commands, k)), k


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 300))
def test_kernel_schedules_as_the_plain_reference_controller(seed, n):
    """The kernel's per-bank lists, hit counts, cached earliest ticks and skipped ticks must make
    the decisions of a controller that scans every queued request in age order at every tick."""
    spec, addrs, writes, arrive = random_stream(seed, n)
    res = simulate(spec, addrs, writes, arrive, record=True)
    accept, done, cls, log = reference_schedule(spec, addrs, writes, arrive)
    assert np.array_equal(res.accept_tick, accept)
    assert np.array_equal(res.done_tick, done)
    assert np.array_equal(res.row_class, cls)
    c = res.commands
    assert list(zip(c.tick.tolist(), c.cmd.tolist(), c.bank.tolist(), c.row.tolist(), c.column.tolist())) == log


@njit
def _earliest_table(s, cmds, n_banks):
    """earliest(s, c, bank) for every bank and every command of `cmds`, in one compiled call (from
    Python, a call per entry made this test take 86 s)."""
    out = np.empty((n_banks, cmds.shape[0]), dtype=np.int64)
    for b in range(n_banks):
        for j in range(cmds.shape[0]):
            out[b, j] = earliest(s, cmds[j], b)
    return out


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_cache_version_unchanged_means_earliest_unchanged(seed):
    """The scheduler's earliest-tick cache trusts a value while its version (scheduler._cached)
    holds: after any command, every (bank, cached command) whose version did not move must have
    the same earliest tick. Random commands of every kind (PIM and rank-wide ones too) are issued,
    on a 2-channel, 2-rank test device and on the shipped presets."""
    from hwsim.dram_pim.device import CACHED_CMDS, H_BOUND, H_META, META_WIDTH, Device, issue
    from hwsim.dram_pim.scheduler import _count_issue
    from hwsim.dram_pim.spec import load_dram_spec

    rng = np.random.default_rng(seed)
    presets = ("GDDR6_16Gbps_x16", "GDDR6_AiM", "HBM2_2Gbps")
    spec = make_spec() if seed % 4 == 0 else load_dram_spec(preset=presets[seed % 4 - 1])
    dev = Device(spec)
    s = dev.state
    n_banks, n_ch = dev.n_banks, spec.organization.channels
    bpc, bpr = n_banks // n_ch, n_banks // (n_ch * spec.organization.ranks)
    lists = int(s[H_BOUND]) + 2 * n_banks * len(Cmd)
    v0 = lists + len(Cmd) * (1 + len(Cmd))
    vb = v0 + n_ch * len(Cmd)

    cmds, bank = np.array(CACHED_CMDS, dtype=np.int64), np.arange(n_banks)

    def versions():
        return s[v0 + (bank // bpc)[:, None] * len(Cmd) + cmds[None, :]] + s[vb + bank][:, None]

    def ticks():
        return _earliest_table(s, cmds, n_banks)

    tick = 0
    for _ in range(60):
        before_v, before_t = versions(), ticks()
        c, b = int(rng.integers(len(Cmd))), int(rng.integers(n_banks))
        tick += int(rng.integers(0, 12))
        issue(s, c, b, int(rng.integers(4)), tick)
        rank_wide = bool(s[int(s[H_META]) + c * META_WIDTH] != 0)
        _count_issue(s, lists, v0 + (b // bpc) * len(Cmd), vb, b, c, bpr, rank_wide)
        same = versions() == before_v
        assert (ticks()[same] == before_t[same]).all(), (Cmd(c).name, b)
