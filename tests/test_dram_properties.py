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
from hwsim.dram_pim.device import earliest, earliest_from_floor, rank_floor

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
def _tables(s, cmds, n_banks):
    """Per bank and command of `cmds`, in one compiled call (from Python, a call per entry made an
    earlier form of this test take 86 s): earliest(); the rank floor; earliest from the floor."""
    full = np.empty((n_banks, cmds.shape[0]), dtype=np.int64)
    floor = np.empty_like(full)
    composed = np.empty_like(full)
    for b in range(n_banks):
        for j in range(cmds.shape[0]):
            full[b, j] = earliest(s, cmds[j], b)
            floor[b, j] = rank_floor(s, cmds[j], b)
            composed[b, j] = earliest_from_floor(s, cmds[j], b, floor[b, j])
    return full, floor, composed


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_rank_floors_compose_to_earliest_and_move_only_when_listed(seed):
    """The scheduler times FLOOR_CMDS as its rank's floor plus the bank-group and bank levels, and
    recomputes a floor only after a command whose list (`floor_raise_lists`) names it. So after any
    command, the composition must equal earliest() for every bank, every floor must be the same for
    all banks of a rank, and a floor the issued command does not list must not have moved. Random
    commands of every kind (PIM and rank-wide ones too; half of them ACTs a few cycles apart, so
    that tFAW binds) on a 2-channel, 2-rank test device and on the shipped presets."""
    from hwsim.dram_pim.device import FLOOR_CMDS, H_FLOOR, Device, issue
    from hwsim.dram_pim.spec import load_dram_spec

    rng = np.random.default_rng(seed)
    presets = ("GDDR6_16Gbps_x16", "GDDR6_AiM", "HBM2_2Gbps")
    spec = make_spec() if seed % 4 == 0 else load_dram_spec(preset=presets[seed % 4 - 1])
    dev = Device(spec)
    s = dev.state
    n_banks, o = dev.n_banks, spec.organization
    bpr = n_banks // (o.channels * o.ranks)
    lists = int(s[H_FLOOR]) + o.channels * o.ranks * len(Cmd)
    cmds = np.array(FLOOR_CMDS, dtype=np.int64)
    tick = 0
    for _ in range(60):
        _, before, _ = _tables(s, cmds, n_banks)
        # half ACTs, a few cycles apart, so that the windows (tFAW) bind too
        c = int(Cmd.ACT) if rng.random() < 0.5 else int(rng.integers(len(Cmd)))
        b = int(rng.integers(n_banks))
        tick += int(rng.integers(0, 4))
        issue(s, c, b, int(rng.integers(4)), tick)
        full, floor, composed = _tables(s, cmds, n_banks)
        assert (composed == full).all(), Cmd(c).name
        per_rank = floor.reshape(-1, bpr, len(cmds))
        assert (per_rank == per_rank[:, :1]).all()
        r = lists + c * (1 + len(Cmd))  # the issued command's list: a count, then the commands
        listed = set(s[r + 1:r + 1 + s[r]].tolist())
        unlisted = [j for j, cmd in enumerate(FLOOR_CMDS) if int(cmd) not in listed]
        assert (floor[:, unlisted] == before[:, unlisted]).all(), (Cmd(c).name, b)
