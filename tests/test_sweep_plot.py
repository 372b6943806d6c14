"""Sweeps (local pool, Dask LocalCluster, resume), plots and compare."""

import json

import pytest

from hwsim.cli import main
from hwsim.sweep import run_sweep

WL = "workloads/dram/random.yaml"
GRID = ["dram.overrides.controller.read_queue=8,32", "traffic.requests=300,600"]


def test_sweep_local_resume_and_outputs(tmp_path):
    out = tmp_path / "sw"
    rep = run_sweep(WL, GRID, str(out), jobs=2, progress=False)
    assert len(rep["points"]) == 4
    lines = (out / "sweep.csv").read_text().splitlines()
    assert lines[0].startswith("point,dram.overrides.controller.read_queue,traffic.requests,cycles")
    assert len(lines) == 5
    # A deeper queue never makes random reads slower here.
    by = {(p["dram.overrides.controller.read_queue"], p["traffic.requests"]): p["cycles"] for p in rep["points"]}
    assert by[(32, 600)] <= by[(8, 600)]
    # Resume: delete one point; only it is recomputed, the others are untouched.
    stamp = (out / "p0000" / "run.json").stat().st_mtime_ns
    import shutil
    shutil.rmtree(out / "p0003")
    rep2 = run_sweep(WL, GRID, str(out), jobs=1, progress=False)
    assert (out / "p0000" / "run.json").stat().st_mtime_ns == stamp
    assert (out / "p0003" / "summary.json").exists()
    assert rep2["points"] == rep["points"]


def test_sweep_same_results_any_jobs(tmp_path):
    a = run_sweep(WL, GRID, str(tmp_path / "a"), jobs=1, progress=False)
    b = run_sweep(WL, GRID, str(tmp_path / "b"), jobs=2, progress=False)
    assert a["points"] == b["points"]
    for p in ("p0000", "p0003"):
        assert (tmp_path / "a" / p / "stats.json").read_bytes() == (tmp_path / "b" / p / "stats.json").read_bytes()


def test_sweep_on_dask_local_cluster(tmp_path):
    distributed = pytest.importorskip("dask.distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        rep = run_sweep(WL, GRID, str(tmp_path / "d"), scheduler=cluster.scheduler_address, progress=False)
    local = run_sweep(WL, GRID, str(tmp_path / "l"), jobs=1, progress=False)
    assert rep["points"] == local["points"]


def test_sweep_bad_grid_is_clean_error(tmp_path, capsys):
    assert main(["sweep", WL, "--grid", "nope.key=1,2", "-o", str(tmp_path / "x")]) == 2
    assert "nope" in capsys.readouterr().err
    assert main(["sweep", WL, "--grid", "traffic.requests", "-o", str(tmp_path / "x")]) == 2
    assert not (tmp_path / "x").exists()


def test_plot_sweep_and_run_and_compare(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out = tmp_path / "sw"
    run_sweep(WL, GRID, str(out), jobs=1, progress=False)
    assert main(["plot", str(out), "--metric", "cycles"]) == 0
    pngs = list((out / "plots").glob("*.png"))
    assert pngs and all(p.stat().st_size > 1000 for p in pngs)
    assert all(p.with_suffix(".csv").exists() for p in pngs)
    assert main(["plot", str(out / "p0000")]) == 0
    assert (out / "p0000" / "plots" / "row_buffer.png").exists()
    capsys.readouterr()
    assert main(["compare", str(out / "p0000"), str(out / "p0002"), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    cycles = next(r for r in data["rows"] if r[0] == "cycles")
    assert cycles[3] == pytest.approx(cycles[2] / cycles[1], rel=1e-5)
    assert main(["plot", str(tmp_path)]) == 2


def test_pim_gpt_run_and_suite_plots(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out = tmp_path / "g"
    assert main(["run", "workloads/pim_gpt/gpt2-small.yaml", "-o", str(out), "--json",
                 "--set", "run.generated_tokens=2"]) == 0
    assert main(["plot", str(out)]) == 0
    names = {p.name for p in (out / "plots").iterdir()}
    for stem in ("speedup_energy_efficiency", "latency_breakdown", "energy_breakdown", "latency_vs_context",
                 "roofline"):
        assert {f"{stem}.png", f"{stem}.svg", f"{stem}.csv"} <= names, stem


def test_t3_run_and_suite_plots(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    import csv

    run = tmp_path / "t3" / "op"
    assert main(["run", "workloads/t3/megagpt2_op_tp8.yaml", "-o", str(run), "--json", "--set", "tokens=512"]) == 0
    assert main(["plot", str(run)]) == 0
    for stem in ("speedup", "dram_traffic_by_stream", "queue_occupancy"):
        assert (run / "plots" / f"{stem}.png").stat().st_size > 1000
    rows = list(csv.reader((run / "plots" / "speedup.csv").open()))
    summary = json.loads((run / "summary.json").read_text())
    assert float(rows[2][1]) == pytest.approx(summary["configs"]["t3"]["speedup_vs_sequential"])
    suite = tmp_path / "suite"
    assert main(["suite", "workloads/t3", "-o", str(suite), "--json", "--set", "tokens=512"]) == 0
    capsys.readouterr()
    assert main(["plot", str(suite)]) == 0
    assert (suite / "plots" / "suite_speedup.png").exists()
    assert len(list(csv.reader((suite / "plots" / "suite_speedup.csv").open()))) == 17
