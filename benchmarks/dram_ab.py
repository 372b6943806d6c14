"""Paired in-process A/B of two versions of the DRAM controller kernel (a speed measurement, not a
test): the kernels alternate on the same 100,000-request traces in one process, in ABBA order, and
the figure is the median of the per-round time ratios, which cancels the slow phases of a shared
VM that best-of-N figures pick up (docs/performance.md §5, stop 19).

    python benchmarks/dram_ab.py OLD_SCHEDULER_PY [NEW_SCHEDULER_PY] [--traces random,conflict]
                                 [--rounds 20] [--requests 100000]

OLD_SCHEDULER_PY (and NEW_SCHEDULER_PY, default the working tree's hwsim/dram_pim/scheduler.py) are
copies of scheduler.py, e.g. `git show 2bd5406:hwsim/dram_pim/scheduler.py > /tmp/old.py`. Both run
on the working tree's device model, so both must use its device-state layout. Both kernels are
compiled into a private numba cache first (about 10 s each). Every round checks that the two
kernels give the same done ticks.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ["NUMBA_CACHE_DIR"] = tempfile.mkdtemp(prefix="hwsim-ab-")  # before numba is imported

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dram_traces import kernel_trial, load_kernel  # noqa: E402  (beside this script)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("old", type=Path)
    ap.add_argument("new", type=Path, nargs="?", default=ROOT / "hwsim/dram_pim/scheduler.py")
    ap.add_argument("--traces", default="random,conflict,sequential")
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--requests", type=int, default=100_000)
    args = ap.parse_args()
    kernels = {"old": load_kernel(args.old, "_ab_old"), "new": load_kernel(args.new, "_ab_new")}
    n = args.requests
    for kind in args.traces.split(","):
        run = kernel_trial(kind, n)
        for module in kernels.values():
            run(module)  # compile or load
        times = {"old": [], "new": []}
        ratios = []
        for r in range(args.rounds):
            order = ("old", "new") if r % 2 == 0 else ("new", "old")
            done = {}
            for key in order:
                wall, done[key] = run(kernels[key])
                times[key].append(wall)
            if not np.array_equal(done["old"], done["new"]):
                raise SystemExit(f"{kind}: the two kernels give different done ticks")
            ratios.append(times["old"][-1] / times["new"][-1])
        ratios.sort()
        q = len(ratios) // 4
        rate = {k: n / np.median(v) / 1e6 for k, v in times.items()}
        print(f"{kind:10s} old {rate['old']:.3f} M req/s, new {rate['new']:.3f} M req/s (medians); "
              f"new/old paired median {np.median(ratios):.3f}x (quartiles {ratios[q]:.3f}-{ratios[-1 - q]:.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
