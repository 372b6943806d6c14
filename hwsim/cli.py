"""The `hwsim` command line. Wiring only: every model lives in the package modules.

Exit codes: 0 ok, 2 bad usage or bad input (one line naming file, field and what is allowed),
1 internal failure.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from hwsim import __version__
from hwsim.errors import InputError

EPILOG = """examples:
  hwsim run workloads/smoke.yaml -o runs/smoke
  hwsim dram trace.txt --preset GDDR6_16Gbps_x16 --json out.json --dump-commands cmds.csv
  hwsim check cmds.csv --preset GDDR6_16Gbps_x16
  hwsim presets dram
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # usage errors: exit 2 with one line, like InputError
        self.print_usage(sys.stderr)
        raise SystemExit(_fail(f"hwsim: {message}", 2))


def _fail(message: str, code: int) -> int:
    print(message, file=sys.stderr)
    return code


def _dram_spec_from_args(args):
    from hwsim.config import apply_overrides
    from hwsim.dram_pim.spec import load_dram_spec

    overrides = apply_overrides({}, args.set) if args.set else None
    label = args.spec or ("--preset/--set" if args.set else "--preset")
    return load_dram_spec(preset=args.preset, spec_file=args.spec, overrides=overrides, file=label)


def cmd_dram(args) -> int:
    from hwsim import invariants
    from hwsim.dram_pim.controller import command_csv, simulate
    from hwsim.dram_pim.trace import read_request_trace
    from hwsim.outputs import dumps_json, write_atomic

    dspec = _dram_spec_from_args(args)
    trace = read_request_trace(args.trace, args.format)
    debug = args.debug or invariants.enabled()
    res = simulate(dspec, trace.addresses, trace.is_write, trace.arrive_cycle,
                   record=args.dump_commands is not None or debug)
    if debug:
        invariants.check_dram_run(dspec, trace.is_write, res)
    out = {"trace": str(args.trace), "format": trace.format, "dram": dspec.name, **res.stats}
    if args.json:
        write_atomic(args.json, dumps_json(out))
    if args.dump_commands:
        write_atomic(args.dump_commands, command_csv(dspec, res.commands))
    print(dumps_json(out), end="")
    return 0


def cmd_check(args) -> int:
    from hwsim.dram_pim.checker import check_file
    from hwsim.outputs import dumps_json, write_atomic

    dspec = _dram_spec_from_args(args)
    report = check_file(args.trace, dspec)
    if args.json:
        write_atomic(args.json, dumps_json(report.to_dict()))
    for v in report.violations[: args.max_report]:
        print(v)
    print(f"{report.n_commands} commands checked, {len(report.violations)} violations")
    return 0 if report.ok else 3


def cmd_presets(args) -> int:
    from hwsim.presets import KINDS, list_presets, load_preset

    kinds = [args.kind] if args.kind else list(KINDS)
    rows = []
    for kind in kinds:
        for name in list_presets(kind):
            rows.append((kind, name, str(load_preset(kind, name).get("description", ""))))
    if args.json:
        _print_json([{"kind": k, "name": n, "description": d} for k, n, d in rows])
        return 0
    from hwsim.report import print_rows

    print_rows(("kind", "name", "description"), rows)
    return 0


def _print_json(obj) -> None:
    from hwsim.outputs import dumps_json

    sys.stdout.write(dumps_json(obj))


def cmd_run(args) -> int:
    from hwsim.runner import run_to_folder

    run_to_folder(args.workload, out_dir=args.out, overrides=args.set, overwrite=args.overwrite,
                  argv=sys.argv, json_stdout=args.json, options=_run_options(args), progress_s=args.progress,
                  debug=args.debug or None)
    return 0


def _run_options(args) -> dict:
    opts = {}
    for key in ("weights", "prompt_ids", "generate", "dump_logits", "trace", "no_memo"):
        value = getattr(args, key, None)
        if value not in (None, False):
            opts[key] = value
    return opts


def cmd_validate(args) -> int:
    from hwsim.workload import load_workload

    results = {}
    for f in args.files:
        try:
            load_workload(f, args.set)
            results[f] = "ok"
        except InputError as exc:
            results[f] = str(exc)
    if args.json:
        _print_json(results)
    else:
        for f, verdict in results.items():
            print(f"{f}: ok" if verdict == "ok" else verdict)
    return 2 if any(v != "ok" for v in results.values()) else 0


def cmd_schema(args) -> int:
    import json

    from hwsim.schema import workload_schema

    print(json.dumps(workload_schema(args.kind), indent=2))
    return 0


def cmd_suite(args) -> int:
    from hwsim.suite import run_suite

    run_suite(args.folder, out_dir=args.out, overrides=args.set, overwrite=args.overwrite,
              json_stdout=args.json)
    return 0


def cmd_sweep(args) -> int:
    from hwsim.sweep import run_sweep

    out = args.out or str(Path("runs") / f"sweep-{Path(args.workload).stem}")
    report = run_sweep(args.workload, args.grid, out, base_overrides=args.set, jobs=args.jobs,
                       scheduler=args.scheduler)
    if args.json:
        from hwsim.outputs import dumps_json
        sys.stdout.write(dumps_json(report))
    else:
        from hwsim.report import print_rows
        keys = list(report["grid"])
        metrics = [k for k in report["points"][0] if k not in keys and k != "point"][:6]
        print_rows(["point", *keys, *metrics], [[p[k] for k in ["point", *keys, *metrics]]
                                                for p in report["points"]], title=f"sweep -> {out}")
    return 0


def cmd_compare(args) -> int:
    from hwsim.compare import compare_runs

    headers, rows = compare_runs(args.runs)
    if args.json:
        import json
        print(json.dumps({"headers": headers, "rows": rows}, indent=2))
    else:
        from hwsim.report import print_rows
        print_rows(headers, rows)
    return 0


def cmd_plot(args) -> int:
    from hwsim.plot import plot_folder

    paths = [str(p) for p in plot_folder(args.folder, args.metric)]
    if args.json:
        _print_json(paths)
    else:
        print("\n".join(paths))
    return 0


def build_parser() -> argparse.ArgumentParser:
    fmt = argparse.RawDescriptionHelpFormatter
    p = _Parser(prog="hwsim", description="Cycle-accurate simulator of memory-centric accelerators "
                "(PIM-GPT, T3) on a shared DRAM core, with GPU/CPU roofline baselines.",
                epilog=EPILOG, formatter_class=fmt)
    p.add_argument("--version", action="version", version=f"hwsim {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    def add(name, help_, epilog, fn):
        sp = sub.add_parser(name, help=help_, description=help_, epilog="examples:\n" + epilog,
                            formatter_class=fmt)
        sp.set_defaults(fn=fn)
        return sp

    def dram_source(sp):
        g = sp.add_mutually_exclusive_group(required=True)
        g.add_argument("--preset", help="DRAM preset name (hwsim presets dram)")
        g.add_argument("--spec", help="DRAM spec YAML file")
        sp.add_argument("--set", action="append", metavar="KEY=VALUE",
                        help="override a spec field, e.g. timing.nCL=20 (repeatable)")

    sp = add("run", "Run a workload file and write its run folder.",
             "  hwsim run workloads/smoke.yaml\n  hwsim run workloads/pim_gpt/gpt2-small.yaml -o runs/g2s "
             "--set run.generated_tokens=16\n", cmd_run)
    sp.add_argument("workload", help="workload YAML file")
    sp.add_argument("-o", "--out", help="output folder (default runs/<workload name>)")
    sp.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a workload field (repeatable)")
    sp.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    sp.add_argument("--json", action="store_true", help="print summary.json instead of a table")
    sp.add_argument("--weights", help="functional mode: GPT-2 weights (.npz)")
    sp.add_argument("--prompt-ids", help="functional mode: comma-separated prompt token ids")
    sp.add_argument("--generate", type=int, help="functional mode: tokens to generate")
    sp.add_argument("--dump-logits", help="functional mode: save float32 logits [steps, vocab] (.npy)")
    sp.add_argument("--trace", help="write a Chrome/Perfetto trace (JSON)")
    sp.add_argument("--no-memo", action="store_true", help="simulate every instruction (no memoisation)")
    sp.add_argument("--debug", action="store_true",
                    help="check conservation laws on the run's own results (also HWSIM_DEBUG=1)")
    sp.add_argument("--progress", type=float, metavar="SECONDS",
                    help="print a progress line on stderr every SECONDS (long runs; Ctrl-C cancels cleanly)")

    sp = add("dram", "Simulate a DRAMSim3 or Ramulator 2 request trace on a DRAM.",
             "  hwsim dram trace.txt --preset GDDR6_16Gbps_x16\n"
             "  hwsim dram trace.txt --spec my_dram.yaml --set controller.page_policy=closed --json out.json\n",
             cmd_dram)
    sp.add_argument("trace", help="request trace file")
    dram_source(sp)
    sp.add_argument("--format", default="auto", choices=["auto", "dramsim3", "ramulator"], help="trace format")
    sp.add_argument("--json", metavar="OUT", help="also write the results as JSON")
    sp.add_argument("--dump-commands", metavar="FILE", help="write the issued command trace (CSV)")
    sp.add_argument("--debug", action="store_true",
                    help="check that every request completes once and the commands pass the protocol checker")

    sp = add("check", "Verify a command trace against every timing rule (independent checker).",
             "  hwsim check cmds.csv --preset GDDR6_16Gbps_x16\n", cmd_check)
    sp.add_argument("trace", help="command trace CSV (as written by --dump-commands)")
    dram_source(sp)
    sp.add_argument("--json", metavar="OUT", help="write the report as JSON")
    sp.add_argument("--max-report", type=int, default=50, help="violations to print")

    sp = add("sweep", "Run a workload over a parameter grid (local processes or a Dask cluster).",
             "  hwsim sweep workloads/dram/random.yaml --grid controller.read_queue=8,32 -o runs/sw\n"
             "  hwsim sweep W.yaml --grid hardware.pim.channels=4,8,16,32 --jobs 2\n"
             "  hwsim sweep W.yaml --grid run.generated_tokens=16,32 --scheduler tcp://10.0.0.5:8786\n",
             cmd_sweep)
    sp.add_argument("workload")
    sp.add_argument("--grid", action="append", required=True, metavar="KEY=V1,V2",
                    help="a swept field and its values (repeat for a cartesian product)")
    sp.add_argument("--set", action="append", metavar="KEY=VALUE", help="fixed override for every point")
    sp.add_argument("--jobs", type=int, default=1, help="local worker processes")
    sp.add_argument("--scheduler", help="dask.distributed scheduler address (needs hwsim[distributed])")
    sp.add_argument("-o", "--out", help="sweep folder (default runs/sweep-<workload>); rerun to resume")
    sp.add_argument("--json", action="store_true", help="print sweep.json")

    sp = add("compare", "Compare the summaries of saved runs side by side, with ratios to the first.",
             "  hwsim compare runs/a runs/b\n", cmd_compare)
    sp.add_argument("runs", nargs="+", help="run folders (holding summary.json)")
    sp.add_argument("--json", action="store_true")

    sp = add("plot", "Draw PNG/SVG figures (with their CSVs) from a run, suite or sweep folder.",
             "  hwsim plot runs/sweep-random\n  hwsim plot runs/suite-pim_gpt\n", cmd_plot)
    sp.add_argument("folder")
    sp.add_argument("--metric", action="append", help="sweep metric to plot (repeatable; default: the first few)")
    sp.add_argument("--json", action="store_true", help="print JSON instead of text")

    sp = add("presets", "List shipped presets with a one-line description.",
             "  hwsim presets\n  hwsim presets gpu\n", cmd_presets)
    sp.add_argument("kind", nargs="?", help="dram, pim, asic, gpu, cpu, energy or models")
    sp.add_argument("--json", action="store_true", help="print JSON instead of text")

    sp = add("validate", "Check workload files without simulating.",
             "  hwsim validate workloads/pim_gpt/*.yaml\n", cmd_validate)
    sp.add_argument("files", nargs="+")
    sp.add_argument("--set", action="append", metavar="KEY=VALUE")
    sp.add_argument("--json", action="store_true", help="print JSON instead of text")

    sp = add("schema", "Print the JSON Schema of workload files.", "  hwsim schema pim_gpt\n", cmd_schema)
    sp.add_argument("kind", nargs="?", help="one workload kind (default: all)")

    sp = add("suite", "Run every workload of a folder and print the side-by-side table.",
             "  hwsim suite workloads/pim_gpt/\n", cmd_suite)
    sp.add_argument("folder")
    sp.add_argument("-o", "--out", help="output folder (default runs/suite-<folder name>)")
    sp.add_argument("--set", action="append", metavar="KEY=VALUE")
    sp.add_argument("--overwrite", action="store_true")
    sp.add_argument("--json", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    from hwsim.interrupts import Terminated, install_signal_handlers

    if argv is None:  # the real command line (tests call main(argv) in-process)
        install_signal_handlers()
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    if not getattr(args, "fn", None):
        parser.print_help()
        return 2
    try:
        return args.fn(args)
    except InputError as exc:
        return _fail(f"hwsim: error: {exc}", 2)
    except Terminated:
        return _fail("hwsim: terminated (SIGTERM); finished results are complete, nothing partial is left", 143)
    except KeyboardInterrupt:
        return _fail("hwsim: interrupted; finished results are complete, nothing partial is left", 130)
    except BrokenPipeError:
        return 0
    except Exception as exc:  # internal failure: keep the traceback for bug reports
        import traceback
        traceback.print_exc()
        return _fail(f"hwsim: internal error: {exc.__class__.__name__}: {exc}", 1)
