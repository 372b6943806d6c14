"""Where a PIM-GPT run's time goes, without a profiler's per-call overhead.

    python benchmarks/pim_split.py WORKLOAD.yaml [--set key=value ...]

Runs `hwsim run WORKLOAD` into a temporary folder (extra arguments are passed on; its own output
is discarded) with a perf_counter accumulator around a few functions of the token loop and prints,
for each, its total wall time, its share of the token loop (`Executor.run_token`), its call count
and its mean time. cProfile charges every Python call a fixed overhead, so it overstates call-heavy
code against the numba kernels (it put the attention placements at 7.6 % of a GPT-3-XL token loop;
this split and a microbenchmark give 0.3 %). The wrappers cost about 0.5 us per call; the first
call of a kernel includes loading it from numba's cache (~0.1 s), so use runs of tens of tokens.
Nested entries overlap (`port.vmm` includes the flushes, replays and misses under it); `compile
token` runs outside the token loop.
"""

from __future__ import annotations

import collections
import contextlib
import io
import sys
import tempfile
import time

import hwsim.asic.controller as controller
import hwsim.asic.workload as workload
import hwsim.dram_pim.memo as memo
import hwsim.dram_pim.pim as pim
import hwsim.dram_pim.serial as serial
import hwsim.mapping.kv_cache as kv_cache
from hwsim.cli import main

TIMED = (
    (workload, "simulate", "simulate"),
    (controller.Executor, "run_token", "token loop"),
    (controller.Executor, "encode", "encode program"),
    (controller.Compiler, "token", "compile token"),
    (controller.PimSystemPort, "run_serial", "port.run_serial"),
    (serial, "run_items", "compiled loop"),
    (controller.PimSystemPort, "vmm", "port.vmm"),
    (controller.PimSystemPort, "kv_append", "port.kv_append"),
    (controller.PimSystemPort, "energy_counts", "energy counts"),
    (pim.PimSystem, "flush_refresh", "flush_refresh"),
    (pim.PimSystem, "_rel_state", "memo key"),
    (pim.PimSystem, "_replay", "memo replay"),
    (pim.PimSystem, "_run", "timed (miss)"),
    (pim.PimSystem, "time_missed", "miss (all)"),
    (pim, "lower_vmm", "lower VMM"),
    (kv_cache.KvLayout, "append_commands", "lower KV append"),
    (memo.MemoTable, "insert", "memo insert"),
)


def _timed(fn, label: str, total: collections.Counter, calls: collections.Counter):
    def wrapper(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            total[label] += time.perf_counter() - t0
            calls[label] += 1
    return wrapper


def run(argv: list[str]) -> int:
    total: collections.Counter = collections.Counter()
    calls: collections.Counter = collections.Counter()
    for cls, name, label in TIMED:
        setattr(cls, name, _timed(getattr(cls, name), label, total, calls))
    with tempfile.TemporaryDirectory() as out, contextlib.redirect_stdout(io.StringIO()):
        rc = main(["run", *argv, "--overwrite", "-o", f"{out}/run", "--json"])
    loop = total["token loop"] or 1.0
    print(f"{'':16s} {'total s':>8s} {'% loop':>7s} {'calls':>8s} {'us/call':>9s}")
    for label, seconds in total.most_common():
        n = calls[label]
        print(f"{label:16s} {seconds:8.3f} {100 * seconds / loop:7.1f} {n:8d} {seconds / n * 1e6:9.1f}")
    return rc


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
