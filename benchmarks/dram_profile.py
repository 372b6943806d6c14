"""Source-line profile of the DRAM controller kernel under `perf` (a measurement, not a test).

numba writes no perf map for its JIT code, so `perf report` shows bare addresses. This script
compiles the kernel with numba's debug line info (NUMBA_DEBUGINFO=1, a private cache), keeps its
object code and the address it was loaded at, and maps perf's samples back to source lines:

    perf record -o /tmp/k.data python benchmarks/dram_profile.py run random --runs 50 --dir /tmp/kp
    python benchmarks/dram_profile.py report /tmp/k.data --dir /tmp/kp [--top 40]

numba's line info names the kernel's file for code inlined from device.py too, so `run` compiles
a copy of scheduler.py shifted down by SHIFT lines: lines at or past SHIFT are the kernel's
(scheduler.py), lines before it come from device.py's inlined helpers. The debug build is a
little slower than the normal one (about 10 % on random), and a sample's line is that of the
instruction it fell on, which on an out-of-order core is often just after the slow one.
"""

from __future__ import annotations

import argparse
import ast
import bisect
import collections
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCHEDULER = ROOT / "hwsim/dram_pim/scheduler.py"
DEVICE = ROOT / "hwsim/dram_pim/device.py"
SHIFT = 1000  # the kernel copy's first line
FUNCTIONS = ("simulate_requests",)  # the compiled functions whose samples are mapped (the rest is inlined)


def run(kind: str, runs: int, out: Path, requests: int) -> None:
    """Compile the shifted kernel copy with line info, record where it was loaded, run it `runs` times."""
    os.environ["NUMBA_CACHE_DIR"] = tempfile.mkdtemp(prefix="hwsim-prof-")
    os.environ["NUMBA_DEBUGINFO"] = "1"
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from dram_traces import kernel_trial, load_kernel

    out.mkdir(parents=True, exist_ok=True)
    shifted = out / "scheduler_shifted.py"
    shifted.write_text("\n" * (SHIFT - 1) + SCHEDULER.read_text())
    kernel = load_kernel(shifted, "_profiled")
    trial = kernel_trial(kind, requests)
    trial(kernel)  # compile
    for name in FUNCTIONS:
        (cres,) = getattr(kernel, name).overloads.values()
        address = cres.library.get_pointer_to_function(cres.fndesc.llvm_func_name)
        (out / f"{name}.o").write_bytes(cres.library.serialize_using_object_code()[2][0])
        (out / f"{name}.addr").write_text(f"{address:x} {cres.fndesc.llvm_func_name}\n")
    times = [trial(kernel)[0] for _ in range(runs)]
    print(f"{kind}: {runs} runs, {' '.join(f'{1e3 * t:.0f}' for t in times)} ms")


def _line_table(obj: Path, symbol: str) -> tuple[int, list[int], list[int]]:
    """(the symbol's offset in the object, instruction offsets, their source lines)."""
    offset = next(int(p[0], 16) for p in (line.split() for line in
                  subprocess.run(["nm", str(obj)], capture_output=True, text=True, check=True).stdout.splitlines())
                  if p[-1] == symbol)
    dump = subprocess.run(["objdump", "-d", "-l", "--no-show-raw-insn", str(obj)], capture_output=True, text=True,
                          check=True).stdout
    addrs, lines, current = [], [], None
    for text in dump.splitlines():
        m = re.match(r"^/\S+:(\d+)", text)
        if m:
            current = int(m.group(1))
            continue
        m = re.match(r"^\s+([0-9a-f]+):", text)
        if m and current is not None:
            addrs.append(int(m.group(1), 16))
            lines.append(current)
    return offset, addrs, lines


def _functions(path: Path, shift: int) -> list[tuple[int, int, str]]:
    """(first line, last line, name) of every function in `path`, its lines moved by `shift`."""
    tree = ast.parse(path.read_text())
    return [(n.lineno + shift, n.end_lineno + shift, n.name) for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)]


def report(data: Path, out: Path, top: int) -> None:
    """Samples per source line and per function, as shares of the mapped samples."""
    ips = [int(x, 16) for x in subprocess.run(["perf", "script", "-i", str(data), "-F", "ip"], capture_output=True,
                                               text=True, check=True).stdout.split()]
    per_line: collections.Counter = collections.Counter()
    for name in FUNCTIONS:
        address, symbol = (out / f"{name}.addr").read_text().split()
        offset, addrs, lines = _line_table(out / f"{name}.o", symbol)
        base = int(address, 16) - offset
        end = addrs[-1] + 16 if addrs else 0
        for ip in ips:
            rel = ip - base
            if addrs and addrs[0] <= rel < end:
                per_line[lines[bisect.bisect_right(addrs, rel) - 1]] += 1
    mapped = sum(per_line.values())
    if not mapped:
        raise SystemExit(f"no sample of {data} falls in the kernel: was it recorded with `run` and --dir {out}?")
    sched, dev = SCHEDULER.read_text().splitlines(), DEVICE.read_text().splitlines()
    functions = _functions(SCHEDULER, SHIFT - 1) + _functions(DEVICE, 0)

    def where(line: int) -> tuple[str, str]:
        """(file:line, source text) of a line of the shifted compile."""
        if line >= SHIFT:
            n = line - SHIFT + 1
            return f"scheduler.py:{n}", sched[n - 1].strip() if n <= len(sched) else ""
        return f"device.py:{line}", dev[line - 1].strip() if line <= len(dev) else ""

    def owner(line: int) -> str:
        """The innermost function holding the line."""
        inside = [(last - first, name) for first, last, name in functions if first <= line <= last
                  and (line >= SHIFT) == (first >= SHIFT)]
        return min(inside)[1] if inside else "?"

    print(f"{len(ips)} samples, {mapped} in the kernel ({100 * mapped / len(ips):.1f} %)")
    by_function = collections.Counter()
    for line, count in per_line.items():
        by_function[owner(line)] += count
    print("per function (inlined helpers on their own):")
    for name, count in by_function.most_common():
        print(f"  {100 * count / mapped:5.1f} %  {name}")
    print(f"top {top} lines:")
    for line, count in per_line.most_common(top):
        loc, text = where(line)
        print(f"  {100 * count / mapped:5.1f} %  {loc:<18} {text[:90]}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="what", required=True)
    r = sub.add_parser("run", help="compile with line info and run (under perf record)")
    r.add_argument("trace", choices=("sequential", "random", "conflict"))
    r.add_argument("--runs", type=int, default=50)
    r.add_argument("--requests", type=int, default=100_000)
    r.add_argument("--dir", type=Path, required=True, help="where the object code and addresses go")
    p = sub.add_parser("report", help="map a perf.data of `run` to source lines")
    p.add_argument("data", type=Path)
    p.add_argument("--dir", type=Path, required=True)
    p.add_argument("--top", type=int, default=40)
    args = ap.parse_args()
    if args.what == "run":
        run(args.trace, args.runs, args.dir, args.requests)
    else:
        report(args.data, args.dir, args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
