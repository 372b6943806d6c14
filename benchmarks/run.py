"""hwsim benchmarks (not timed tests): median wall time, peak RSS and throughput per scenario.

    python benchmarks/run.py [--quick] [--json OUT] [--only NAME ...]

Each scenario runs in a fresh subprocess after a warm-up run (so the numba cache is warm), and is
repeated; the median wall time and the largest peak RSS are reported. `cold_start` empties a
private numba cache first. Figures go into docs/performance.md by hand, with the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

DRAM_SNIPPET = """
import sys, time, numpy as np
sys.path.insert(0, "benchmarks")
from dram_traces import trace_addresses
from hwsim.dram_pim.spec import load_dram_spec
from hwsim.dram_pim.controller import simulate
spec = load_dram_spec(preset="GDDR6_16Gbps_x16")
n = int(sys.argv[2])
addrs = trace_addresses(spec, sys.argv[1], n)
simulate(spec, addrs[:10], np.zeros(10, bool))  # load the compiled kernel from the numba cache
walls = []
for _ in range(2):  # the first full-size run, as one `hwsim dram` does, then a repeat (a sweep worker's)
    t0 = time.perf_counter()
    res = simulate(spec, addrs, np.zeros(n, bool))
    walls.append(time.perf_counter() - t0)
print(walls[0], walls[1], res.stats["cycles"])
"""


def _run(cmd: list[str], env: dict | None = None) -> tuple[float, float, str]:
    """(wall seconds, peak RSS MiB of this child alone, stdout). The child's own rusage comes from
    wait4: RUSAGE_CHILDREN would give the largest peak of every child so far."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=err, text=True, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{err.read()[-2000:]}")
        return wall, usage.ru_maxrss / 1024.0, out.read()


def dram(kind: str, n: int, repeats: int) -> dict:
    cmd = [sys.executable, "-c", DRAM_SNIPPET, kind, str(n)]
    _run(cmd)  # warm the numba cache
    sims, repeats_s, rss, cycles = [], [], 0.0, 0
    for _ in range(repeats):
        _, r, out = _run(cmd)
        sim_s, repeat_s, cycles = out.split()
        sims.append(float(sim_s))
        repeats_s.append(float(repeat_s))
        rss = max(rss, r)
    med = statistics.median(sims)
    # The first run in a process also pays the first touch of its arrays' pages (1,500-3,500 page
    # faults, 4-17 ms on the stop-21 VM: docs/performance.md §3.1); the repeat, in the same process,
    # does not.
    return {"scenario": f"dram_{kind}", "requests": n, "cycles": int(cycles), "sim_s_median": med,
            "requests_per_s": n / med, "requests_per_s_repeat": n / statistics.median(repeats_s),
            "peak_rss_MiB": rss, "target": ">= 1,000,000 requests/s"}


def cli(name: str, args: list[str], repeats: int, target: str, env: dict | None = None,
        warm: bool = True) -> dict:
    cmd = [sys.executable, "-m", "hwsim", *args]
    if warm:
        _run(cmd, env)
    walls, rss = [], 0.0
    for _ in range(repeats):
        w, r, _ = _run(cmd, env)
        walls.append(w)
        rss = max(rss, r)
    return {"scenario": name, "wall_s_median": statistics.median(walls), "peak_rss_MiB": rss, "target": target}


def cold_start(repeats: int) -> dict:
    walls = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as cache, tempfile.TemporaryDirectory() as out:
            env = dict(os.environ, NUMBA_CACHE_DIR=cache)
            w, _, _ = _run([sys.executable, "-m", "hwsim", "run", "workloads/smoke.yaml", "-o",
                            f"{out}/r", "--json"], env)
            walls.append(w)
    return {"scenario": "cold_start_smoke", "wall_s_median": statistics.median(walls), "target": "< 15 s"}


def _pim_commands(stats: dict) -> int:
    """DRAM commands simulated in a PIM-GPT run (memo replays included: they are timed commands)."""
    from hwsim.dram_pim.commands import Cmd

    return sum(int(stats.get(f"counts.{c.name}", 0)) for c in Cmd)


def pim_run(name: str, model: str, prompt: int, generated: int, out: str, target: str) -> dict:
    """One PIM-GPT decode (warm numba cache): wall, peak RSS, tokens/s and commands/s."""
    args = ["run", f"workloads/pim_gpt/{model}.yaml", "-o", out, "--overwrite", "--json",
            "--set", f"run.prompt_tokens={prompt}", "--set", f"run.generated_tokens={generated}"]
    wall, rss, _ = _run([sys.executable, "-m", "hwsim", *args])
    stats = json.loads((Path(out) / "stats.json").read_text())
    sim_s = json.loads((Path(out) / "run.json").read_text())["wall_s"]
    cmds = _pim_commands(stats)
    return {"scenario": name, "model": model, "tokens": generated, "wall_s": wall, "sim_s": sim_s,
            "peak_rss_MiB": rss, "dram_commands": cmds, "commands_per_s": cmds / sim_s,
            "tokens_per_s": generated / sim_s, "target": target}


def _warm_pim(tmp: str) -> None:
    """GPT-2 small's whole-context decode first, so that the numba cache holds every PIM-GPT kernel:
    a 2-token decode never fills the memo table, so its eviction kernels (memo.compact, memo.rehash)
    were compiled inside the first timed run (GPT-2 small 4.1 s instead of 2.1-2.5 s)."""
    _run([sys.executable, "-m", "hwsim", "run", "workloads/pim_gpt/gpt2-small.yaml", "-o", f"{tmp}/warm", "--overwrite",
          "--json", "--set", "run.prompt_tokens=0", "--set", "run.generated_tokens=1024"])


def pim_full(tmp: str) -> list[dict]:
    """Scenario 2: every paper model decoding its whole context (prompt 0)."""
    from hwsim.models import load_model

    _warm_pim(tmp)
    out = []
    for model in PIM_MODELS:
        ctx = load_model(model).context
        out.append(pim_run("pim_gpt_full", model, 0, ctx, f"{tmp}/full-{model}", "suite < 60 s, RSS < 2 GB"))
    return out


def scaling(tmp: str, tokens: list[int]) -> list[dict]:
    """Scenario 5: wall time against generated tokens (gpt3-small, context 2048) and model size
    (each model, 64 tokens centred on the middle of its context)."""
    _warm_pim(tmp)
    out = [pim_run("scaling_tokens", "gpt3-small", 0, n, f"{tmp}/tok-{n}", "linear in commands")
           for n in tokens]
    from hwsim.models import load_model

    for model in PIM_MODELS:
        ctx = load_model(model).context
        out.append(pim_run("scaling_model", model, ctx // 2 - 32, 64, f"{tmp}/size-{model}", "linear in commands"))
    return out


PIM_MODELS = ("gpt2-small", "gpt2-medium", "gpt2-large", "gpt2-xl", "gpt3-small", "gpt3-medium", "gpt3-large",
              "gpt3-xl")


def _cpu_model() -> dict:
    """The CPU's model name, family and model number from /proc/cpuinfo (Linux; else nothing):
    VMs of one type name ("AMD EPYC") have differed by 1.5-2x in speed between sessions."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return {}
    keys = {"model name": "cpu_model", "cpu family": "cpu_family", "model": "cpu_model_number"}
    out = {}
    for line in lines:
        key, _, value = line.partition(":")
        if key.strip() in keys and keys[key.strip()] not in out:
            out[keys[key.strip()]] = value.strip()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer repeats and smaller inputs")
    ap.add_argument("--json", help="write the results as JSON")
    ap.add_argument("--only", nargs="*",
                    help="scenario names to run (dram, pim_gpt, t3, cold, warm, pim_full, scaling); "
                         "default: all but pim_full and scaling (tens of minutes)")
    args = ap.parse_args()
    repeats = 1 if args.quick else 3
    n = 20_000 if args.quick else 100_000
    only = set(args.only or ["dram", "pim_gpt", "t3", "cold", "warm"])
    results = []
    tmp = tempfile.mkdtemp()
    if "dram" in only:
        from dram_traces import KINDS  # beside this script

        for kind in KINDS:
            results.append(dram(kind, n, repeats))
    if "warm" in only:
        results.append(cli("warm_start_smoke", ["run", "workloads/smoke.yaml", "-o", f"{tmp}/smoke",
                                                "--overwrite", "--json"], repeats, "< 2 s"))
    if "cold" in only:
        results.append(cold_start(repeats))
    if "pim_gpt" in only and (ROOT / "workloads/pim_gpt").is_dir():
        results.append(cli("pim_gpt_suite", ["suite", "workloads/pim_gpt", "-o", f"{tmp}/pim", "--overwrite",
                                             "--json"], 1, "< 60 s, peak RSS < 2 GB"))
    if "t3" in only and (ROOT / "workloads/t3").is_dir():
        results.append(cli("t3_suite", ["suite", "workloads/t3", "-o", f"{tmp}/t3", "--overwrite", "--json"],
                           1, "< 180 s"))
    if "pim_full" in only:
        results += pim_full(tmp)
    if "scaling" in only:
        results += scaling(tmp, [128, 256, 512] if args.quick else [128, 256, 512, 1024, 2048])
    machine = {"python": platform.python_version(), "machine": platform.machine(),
               "processor": platform.processor() or platform.uname().machine, "cpus": os.cpu_count(),
               **_cpu_model()}
    for r in results:
        print(json.dumps(r))
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine, "results": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
