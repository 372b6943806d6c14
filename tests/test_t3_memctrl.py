"""T3 memory-controller front end on a standalone two-class stream: every request served once, the
command trace passes the independent checker, MCA favours compute and admits communication under
its threshold, the starvation limit bounds communication waits; and the system kernel's pure-Python
twin (NUMBA_DISABLE_JIT=1) gives the same command trace as the compiled kernel."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hwsim.dram_pim.checker import check_trace
from hwsim.dram_pim.commands import META, RANK, Cmd
from hwsim.dram_pim.device import Device
from hwsim.dram_pim.spec import load_dram_spec, with_channels
from hwsim.t3.memctrl import (CLS_COMM, CLS_COMPUTE, M_LOG, M_NLOG, M_OCC_MAX, M_THR, OP_RD, OP_UPD, OP_WR, POL_FRFCFS,
                              POL_MCA, make_mc_state, make_mcfg, run_stream)

HERE = Path(__file__).resolve().parent


def _stream(seed, n=3000, channels=2):
    rng = np.random.default_rng(seed)
    spec = with_channels(load_dram_spec(preset="HBM2_2Gbps"), channels)
    o = spec.organization
    banks = channels * o.banks_per_rank
    cls = (rng.random(n) < 0.4).astype(np.int64)                       # 40% communication
    op = np.where(cls == CLS_COMM, rng.choice([OP_RD, OP_UPD], n), rng.choice([OP_RD, OP_RD, OP_WR], n))
    bank = rng.integers(0, banks, n)
    row = np.where(rng.random(n) < 0.7, bank % 4, rng.integers(0, 64, n))  # some row locality
    col = rng.integers(0, o.columns, n)
    arrive = np.sort(rng.integers(0, n * 1500, n))                     # about 1.5 ns apart: loaded
    R = (bank.astype(np.int64), row.astype(np.int64), col.astype(np.int64), op.astype(np.int64), cls, arrive)
    return spec, R, (bank // o.banks_per_rank).astype(np.int64)


def _run(spec, R, channel, policy, starve_ps=2000_000, thr=None):
    dev = Device(spec)
    n = len(R[0])
    M = make_mc_state(spec.organization.channels, dev.n_banks, spec.organization.channels, 64, n,
                      spec.timing.nREFI, 4 * n + 1000)
    if thr is not None:
        M[M_THR][:] = thr
    done, status = run_stream(dev.state, M, R, make_mcfg(spec, policy=policy, qcap=64, starvation_ps=starve_ps),
                              channel, spec.organization.channels)
    assert status == 0
    log = M[M_LOG][:M[M_NLOG][0]]
    return done, log, M


def _rows(spec, log):
    o = spec.organization
    rows = []
    for t, c, b, row, col, _ in log.tolist():
        cmd = Cmd(c)
        ch = b // o.banks_per_rank
        if META[cmd].scope == RANK:
            rows.append((t, ch, 0, -1, -1, -1, -1, cmd))
        else:
            bg, bk = (b // o.banks_per_group) % o.bankgroups, b % o.banks_per_group
            col_ok = cmd in (Cmd.RD, Cmd.WR, Cmd.UPD)
            rows.append((t, ch, 0, bg, bk, row if cmd != Cmd.PRE else -1, col if col_ok else -1, cmd))
    return rows


@pytest.mark.parametrize("policy", [POL_FRFCFS, POL_MCA])
@pytest.mark.parametrize("seed", [1, 2])
def test_every_request_is_served_once_and_the_trace_is_legal(policy, seed):
    spec, R, ch = _stream(seed)
    done, log, _ = _run(spec, R, ch, policy)
    assert (done >= R[5]).all()
    col = np.isin(log[:, 1], [int(Cmd.RD), int(Cmd.WR), int(Cmd.UPD)])
    assert sorted(log[col, 5].tolist()) == list(range(len(done)))      # one column command each
    assert check_trace(spec, _rows(spec, log)) == []


def test_mca_serves_compute_faster_and_communication_later():
    spec, R, ch = _stream(3)
    d_fr, _, _ = _run(spec, R, ch, POL_FRFCFS)
    d_mca, _, _ = _run(spec, R, ch, POL_MCA, thr=8)
    lat = lambda d, c: float(np.mean((d - R[5])[R[4] == c]))               # noqa: E731
    assert lat(d_mca, CLS_COMPUTE) < lat(d_fr, CLS_COMPUTE)
    assert lat(d_mca, CLS_COMM) > lat(d_fr, CLS_COMM)


def test_mca_threshold_bounds_communication_occupancy():
    spec, R, ch = _stream(4)
    _, _, M = _run(spec, R, ch, POL_MCA, starve_ps=10**12, thr=5)     # no starvation escape
    # a communication request enters only while fewer than 5 requests are queued
    assert int(M[M_OCC_MAX][:, CLS_COMM].max()) <= 5


def test_starvation_limit_bounds_the_wait_for_admission():
    spec, R, ch = _stream(5)
    starve = 300_000
    done, _, _ = _run(spec, R, ch, POL_MCA, starve_ps=starve, thr=1)
    comm = R[4] == CLS_COMM
    d_long, _, _ = _run(spec, R, ch, POL_MCA, starve_ps=10**12, thr=1)
    assert np.max((done - R[5])[comm]) < np.max((d_long - R[5])[comm])


def test_compiled_kernel_and_pure_python_twin_agree():
    code = (
        "import json, sys; sys.path.insert(0, %r)\n"
        "from test_t3_system import small_setup\n"
        "from hwsim.t3 import system as S\n"
        "from hwsim.t3.memctrl import POL_MCA\n"
        "from hwsim.t3.sim import simulate\n"
        "st = small_setup(tp=2, tokens=128, hidden=256, channels=2)\n"
        "r = simulate(st, gemm=S.GEMM_T3, coll=S.COLL_NONE, policy=POL_MCA, record=True)\n"
        "print(json.dumps([r.time_ps, r.log.tolist()]))\n" % str(HERE))
    outs = []
    for jit_off in ("0", "1"):
        env = dict(os.environ, NUMBA_DISABLE_JIT=jit_off)
        p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600)
        assert p.returncode == 0, p.stderr[-2000:]
        outs.append(json.loads(p.stdout.strip().splitlines()[-1]))
    assert outs[0] == outs[1]
