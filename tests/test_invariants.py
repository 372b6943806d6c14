"""Debug-mode conservation checks (hwsim.invariants): they pass on real results and catch doctored ones."""

import dataclasses

import numpy as np
import pytest

from hwsim.cli import main
from hwsim.dram_pim.commands import Cmd
from hwsim.dram_pim.controller import simulate
from hwsim.dram_pim.pim import load_pim
from hwsim.dram_pim.spec import load_dram_spec
from hwsim.invariants import (InvariantError, check_protocol, check_requests_complete,
                              check_vmm_reads_every_weight_once, debug_mode, enabled)
from hwsim.mapping.lowering import lower_vmm
from hwsim.mapping.partition import place_matrix


@pytest.fixture(scope="module")
def dram_run():
    spec = load_dram_spec(preset="GDDR6_16Gbps_x16")
    rng = np.random.default_rng(5)
    addrs = rng.integers(0, 1 << 20, 3000).astype(np.uint64) * 32
    is_write = rng.random(3000) < 0.3
    return spec, is_write, simulate(spec, addrs, is_write, record=True)


def test_requests_complete_once_on_a_real_run(dram_run):
    spec, is_write, res = dram_run
    check_requests_complete(is_write, res.accept_tick, res.done_tick, res.commands)
    check_protocol(spec, res.commands)


def test_lost_duplicated_or_early_requests_are_caught(dram_run):
    spec, is_write, res = dram_run
    log = res.commands
    first_rd = int(np.flatnonzero(log.cmd == int(Cmd.RD))[0])
    keep = np.ones(len(log), bool)
    keep[first_rd] = False
    lost = dataclasses.replace(log, **{f: getattr(log, f)[keep] for f in ("tick", "cmd", "bank", "row", "column")})
    with pytest.raises(InvariantError, match="read and"):
        check_requests_complete(is_write, res.accept_tick, res.done_tick, lost)
    dup = dataclasses.replace(log, cmd=log.cmd.copy())
    dup.cmd[np.flatnonzero(log.cmd == int(Cmd.ACT))[0]] = int(Cmd.WR)   # one write too many
    with pytest.raises(InvariantError, match="write column commands"):
        check_requests_complete(is_write, res.accept_tick, res.done_tick, dup)
    done = res.done_tick.copy()
    done[7] = res.accept_tick[7]
    with pytest.raises(InvariantError, match="request 7"):
        check_requests_complete(is_write, res.accept_tick, done)
    accept = res.accept_tick.copy()
    accept[11] = -1
    with pytest.raises(InvariantError, match="never accepted"):
        check_requests_complete(is_write, accept, res.done_tick)


def test_protocol_violation_is_caught(dram_run):
    spec, _, res = dram_run
    log = res.commands
    i = int(np.flatnonzero(log.cmd == int(Cmd.RD))[0])
    tick = log.tick.copy()
    tick[i] = tick[i - 1]          # a RD moved onto the command before it (its ACT or a bus neighbour)
    with pytest.raises(InvariantError, match="timing violations"):
        check_protocol(spec, dataclasses.replace(log, tick=tick))


@pytest.mark.parametrize("d_in, d_out, channels", [(1024, 16, 1), (768, 2304, 8), (1600, 6400, 8), (4096, 1024, 8)])
def test_every_weight_multiplied_once(d_in, d_out, channels):
    ps = load_pim({"preset": "pim_gpt", "channels": channels})
    p = place_matrix("w", d_in, d_out, ps)
    low = lower_vmm(p, ps)
    kw = dict(lanes=ps.mac_lanes, banks_per_channel=ps.banks_per_channel)
    check_vmm_reads_every_weight_once(p, low, **kw)
    mac = np.flatnonzero(low.cmd == int(Cmd.MAC_AB))
    twice = dataclasses.replace(low, col=low.col.copy())
    twice.col[mac[1]] = twice.col[mac[0]]
    twice.row[mac[1]] = twice.row[mac[0]]
    twice.bank[mac[1]] = twice.bank[mac[0]]
    with pytest.raises(InvariantError, match="issued 2 times"):
        check_vmm_reads_every_weight_once(p, twice, **kw)
    keep = np.ones(len(low), bool)
    keep[mac[-1]] = False
    dropped = dataclasses.replace(low, **{f: getattr(low, f)[keep] for f in ("cmd", "bank", "row", "col")})
    with pytest.raises(InvariantError, match="never multiplied"):
        check_vmm_reads_every_weight_once(p, dropped, **kw)


def test_debug_switch(monkeypatch):
    monkeypatch.delenv("HWSIM_DEBUG", raising=False)
    assert not enabled()
    monkeypatch.setenv("HWSIM_DEBUG", "1")
    assert enabled()
    with debug_mode(False):
        assert not enabled()
    monkeypatch.setenv("HWSIM_DEBUG", "0")
    with debug_mode(True):
        assert enabled()
    assert not enabled()


@pytest.mark.parametrize("workload", ["workloads/smoke.yaml", "workloads/dram/mixed.yaml", "workloads/dram/pingpong.yaml"])
def test_debug_runs_of_shipped_dram_workloads_pass(tmp_path, capsys, workload):
    assert main(["run", workload, "-o", str(tmp_path / "r"), "--json", "--debug",
                 "--set", "traffic.requests=5000"]) == 0


@pytest.mark.parametrize("gpus, ch_sim", [("symmetric", 1), ("explicit", 4)])
def test_t3_fused_run_reduces_every_partial_once(gpus, ch_sim):
    from test_t3_system import small_setup

    from hwsim.invariants import check_t3_reduction_once
    from hwsim.t3 import system as S
    from hwsim.t3.sim import simulate

    st = small_setup(tp=4, gpus=gpus, ch_sim=ch_sim)
    res = simulate(st, gemm=S.GEMM_T3, coll=S.COLL_NONE, record=True)
    check_t3_reduction_once(st, res)
    q = res.requests
    for kind, what in ((S.K_NMC, "incoming updates"), (S.K_DMA, "DMA reads"), (S.K_STORE, "local updates")):
        i = int(np.flatnonzero(q["kind"] == kind)[0])
        j = int(np.flatnonzero((q["kind"] == kind) & (q["b"] != q["b"][i]) & (q["gpu"] == q["gpu"][i]))[0])
        doctored = dict(q, b=q["b"].copy())
        doctored["b"][j] = q["b"][i]            # one burst reduced twice, another never
        res.requests = doctored
        with pytest.raises(InvariantError, match=what):
            check_t3_reduction_once(st, res)
    res.requests = dict(q, done=q["done"].copy())
    res.requests["done"][3] = -1
    with pytest.raises(InvariantError, match="never completed"):
        check_t3_reduction_once(st, res)


@pytest.mark.parametrize("workload, setting", [("workloads/t3/tnlg_fc2_tp16.yaml", "tokens=512"),
                                              ("workloads/pim_gpt/gpt2-xl.yaml", "run.generated_tokens=1")])
def test_debug_run_of_a_shipped_workload_passes_and_changes_nothing(tmp_path, capsys, workload, setting):
    args = ["run", workload, "--json", "--set", setting]
    assert main(args + ["-o", str(tmp_path / "d"), "--debug"]) == 0
    assert main(args + ["-o", str(tmp_path / "n")]) == 0
    for name in ("summary.json", "stats.json"):
        assert (tmp_path / "d" / name).read_bytes() == (tmp_path / "n" / name).read_bytes()
