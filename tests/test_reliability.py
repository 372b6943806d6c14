"""Reliability: fuzzed workloads give a valid run or a clean error; outputs are deterministic;
no partial output folders; YAML cannot execute code."""

import copy
import json
import os
import random
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hwsim.cli import main
from hwsim.errors import InputError
from hwsim.workload import load_workload

ROOT = Path(__file__).resolve().parent.parent
WORKLOADS = sorted(p for p in (ROOT / "workloads").rglob("*.yaml"))
RUNNABLE_FAST = {"dram"}  # kinds cheap enough to simulate inside the fuzz loop


def _paths(d, prefix=()):
    if isinstance(d, dict):
        for k, v in d.items():
            yield prefix + (k,)
            yield from _paths(v, prefix + (k,))


def _mutate(data, rnd: random.Random):
    data = copy.deepcopy(data)
    paths = list(_paths(data))
    if not paths:
        return data
    path = rnd.choice(paths)
    parent = data
    for k in path[:-1]:
        parent = parent[k]
    key = path[-1]
    op = rnd.choice(["drop", "retype", "negative", "zero", "string", "list", "unknown", "null", "huge"])
    if op == "drop":
        del parent[key]
    elif op == "retype":
        parent[key] = {"nested": parent[key]}
    elif op == "negative":
        parent[key] = -abs(parent[key]) if isinstance(parent[key], (int, float)) else -1
    elif op == "zero":
        parent[key] = 0
    elif op == "string":
        parent[key] = "not-a-value"
    elif op == "list":
        parent[key] = [parent[key], parent[key]]
    elif op == "unknown":
        parent[f"{key}_typo"] = parent[key]
    elif op == "null":
        parent[key] = None
    else:
        parent[key] = 10 ** 12
    return data


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(index=st.integers(0, 10 ** 6), seed=st.integers(0, 10 ** 9), truncate=st.booleans())
def test_fuzzed_workloads_load_or_fail_cleanly(tmp_path, index, seed, truncate):
    src = WORKLOADS[index % len(WORKLOADS)]
    rnd = random.Random(seed)
    if truncate:
        text = src.read_text()
        text = text[: rnd.randrange(len(text) + 1)]
    else:
        text = yaml.safe_dump(_mutate(yaml.safe_load(src.read_text()), rnd))
    f = tmp_path / src.name
    f.write_text(text)
    try:
        wl = load_workload(f)
    except InputError as exc:
        assert str(f) in str(exc)
        return
    if wl.kind in RUNNABLE_FAST and getattr(wl.config, "traffic", None) is not None:
        if wl.config.traffic.requests <= 5000:
            assert main(["run", str(f), "-o", str(tmp_path / "out"), "--overwrite", "--json"]) in (0, 2)


def test_cli_fuzz_exit_codes(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    for text in ["kind: [", "- a\n- b\n", "kind: nope\n", "kind: dram\n", "kind: dram\ndram: {preset: X}\n",
                 "kind: dram\ndram: {preset: GDDR6_16Gbps_x16}\ntraffic: {requests: -5}\n"]:
        bad.write_text(text)
        assert main(["run", str(bad), "-o", str(tmp_path / "o")]) == 2
        err = capsys.readouterr().err
        assert "Traceback" not in err and str(bad) in err
        assert not (tmp_path / "o").exists()


def test_yaml_cannot_execute_code(tmp_path, capsys):
    bad = tmp_path / "evil.yaml"
    bad.write_text("kind: !!python/object/apply:os.system ['echo pwned > %s']\n" % (tmp_path / "pwned"))
    assert main(["validate", str(bad)]) == 2
    assert not (tmp_path / "pwned").exists()


def test_same_input_same_bytes(tmp_path):
    outs = []
    for i in range(2):
        assert main(["run", "workloads/dram/mixed.yaml", "-o", str(tmp_path / f"r{i}"), "--json",
                     "--set", "traffic.requests=3000"]) == 0
        outs.append({n: (tmp_path / f"r{i}" / n).read_bytes() for n in ("stats.json", "summary.json",
                                                                          "config.resolved.yaml")})
    assert outs[0] == outs[1]
    assert "wall_s" not in json.loads(outs[0]["stats.json"])


def test_interrupted_write_leaves_nothing(tmp_path, monkeypatch):
    from hwsim import outputs

    def boom(*a, **k):
        raise KeyboardInterrupt

    target = tmp_path / "run"
    monkeypatch.setattr(outputs.Path, "rename", boom)
    with pytest.raises(KeyboardInterrupt):
        outputs.write_run_folder(target, {"a.json": "{}", "b.json": "{}"})
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def _interrupt_at_line(k: int, action) -> bool:
    """Run `action()` with a KeyboardInterrupt raised at its k-th traced line (any frame, the standard
    library's included); True if it was raised, False if `action` finished first. (An interrupt
    inside zipfile's writer surfaces as the ValueError its clean-up raises; a ValueError with no
    interrupt behind it is the writer's own and is raised.)"""
    import sys
    seen = 0

    def trace(frame, event, arg):
        nonlocal seen
        if event == "line":
            seen += 1
            if seen == k:
                raise KeyboardInterrupt
        return trace
    sys.settrace(trace)
    try:
        action()
    except (KeyboardInterrupt, ValueError):
        if seen < k:
            raise
        return True
    finally:
        sys.settrace(None)
    return False


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # zipfile's __del__ after an interrupt
@pytest.mark.parametrize("kind", ["folder", "file", "npz"])
def test_an_interrupt_at_any_line_of_an_atomic_write_leaves_all_or_nothing(tmp_path, kind):
    """A signal's exception can come at any line, including the one right after the temporary is
    made (a sweep worker was once stopped there and left a `.p0001.*.tmp` folder)."""
    import numpy as np
    from hwsim import outputs, weights
    writers = {"folder": lambda p: outputs.write_run_folder(p, {"a.json": "{}", "sub/b.json": "[]"}, overwrite=True),
               "file": lambda p: outputs.write_atomic(p, "text"),
               "npz": lambda p: weights.save_npz({"w": np.zeros(3, np.float32)}, p)}
    write = writers[kind]
    k = 1
    while True:
        target = tmp_path / f"t{k}" / "out"
        target.parent.mkdir()
        interrupted = _interrupt_at_line(k, lambda: write(target))
        left = sorted(p.name for p in target.parent.iterdir())
        assert left in ([], ["out"]), (k, left)            # never a temporary
        if not interrupted:
            assert left == ["out"]
            break
        k += 1
        assert k < 5000, "the writer never finished"
    assert k > 5                                            # the interrupt did land inside the writer


def test_a_sweep_worker_acts_on_the_first_stop_signal_only():
    """The sweep and the pool both terminate a worker; the second SIGTERM must not interrupt the
    clean-up that the first one started."""
    import signal
    from hwsim import interrupts
    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        interrupts.install_worker_signal_handlers()
        assert signal.getsignal(signal.SIGTERM) is interrupts._handle_in_worker
        with pytest.raises(interrupts.WorkerStop) as stop:
            interrupts._handle_in_worker(signal.SIGTERM, None)
        assert stop.value.code == 143
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        for s, h in saved.items():
            signal.signal(s, h)


def test_validate_all_shipped_workloads(capsys):
    assert main(["validate", *map(str, WORKLOADS)]) == 0


# ---- malformed trace files: hwsim dram and hwsim check --------------------------------------------

_TRACE_LINES = st.sampled_from([
    "0x0 READ 0", "0x40 WRITE 3", "0x1fffc0 READ 9", "LD 0x1000", "ST 0x2000", "LD 4096", "# note", "",
    "0x READ 1", "0xZZ READ 2", "0x0 FETCH 3", "0x0 READ -4", "0x0 READ", "READ 0x0 0", "LD", "ST 0x",
    "0x0 READ 1e3", "0x0 READ 99999999999999999999", "0x40 write 5", "\t0x80 READ 6 extra", "\x00\x01",
    "0x" + "f" * 40 + " READ 7", "LD -0x10", "ST 0x10 0x20",
])


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(_TRACE_LINES, max_size=12))
def test_fuzzed_request_traces_run_or_fail_cleanly(tmp_path, capsys, lines):
    trace = tmp_path / "fuzz.trace"
    trace.write_text("\n".join(lines) + "\n")
    code = main(["dram", str(trace), "--preset", "GDDR6_16Gbps_x16", "--json", str(tmp_path / "o.json")])
    err = capsys.readouterr().err
    assert code in (0, 2), err
    assert "Traceback" not in err
    if code == 2:
        assert str(trace) in err


_CMD_ROWS = st.tuples(st.integers(-2, 400), st.sampled_from(["0", "1", "x", "-1"]), st.sampled_from(["0", "3", "9"]),
                      st.sampled_from(["0", "1", "7", "b"]), st.integers(-1, 20000),
                      st.sampled_from(["0", "5", "63", "64", "q"]),
                      st.sampled_from(["ACT", "RD", "WR", "PRE", "PREA", "REFab", "RDA", "WRA", "NOP", "rd", ""]))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(_CMD_ROWS, max_size=10), header=st.booleans(), cut=st.integers(0, 400))
def test_fuzzed_command_traces_check_or_fail_cleanly(tmp_path, capsys, rows, header, cut):
    text = ("tick,channel,rank,bankgroup,bank,row,column,command\n" if header else "") + "".join(
        ",".join(map(str, r)) + "\n" for r in sorted(rows, key=lambda r: r[0]))
    f = tmp_path / "cmds.csv"
    f.write_text(text[:cut] if cut < len(text) else text)
    code = main(["check", str(f), "--preset", "GDDR6_16Gbps_x16"])
    out = capsys.readouterr()
    assert code in (0, 2, 3) and "Traceback" not in out.err, out.err  # 3: violations found
    if code == 2:
        assert str(f) in out.err


# ---- outputs are never overwritten without --overwrite ---------------------------------------------

def test_existing_run_folder_is_kept_without_overwrite(tmp_path, capsys):
    out = tmp_path / "r"
    args = ["run", "workloads/smoke.yaml", "-o", str(out), "--json"]
    assert main(args + ["--set", "traffic.requests=200"]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    capsys.readouterr()
    assert main(args + ["--set", "traffic.requests=300"]) == 2
    err = capsys.readouterr().err
    assert str(out) in err and "--overwrite" in err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert main(args + ["--set", "traffic.requests=300", "--overwrite"]) == 0
    assert json.loads((out / "summary.json").read_text())["reads"] + \
        json.loads((out / "summary.json").read_text())["writes"] == 300


# ---- interrupts: SIGTERM / SIGINT leave only complete results; a sweep resumes ---------------------

def _hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob(".*") if p.is_dir() or p.suffix == ".tmp")


def _start(args: list[str]):
    """hwsim in a subprocess with SIGINT at its default: a test run launched as a background job
    inherits an ignored SIGINT, which hwsim (rightly) keeps ignored."""
    import signal
    import subprocess
    import sys
    return subprocess.Popen([sys.executable, "-m", "hwsim", *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _wait_for(pred, proc, timeout_s=120.0):
    import time
    t0 = time.monotonic()
    while not pred():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() - t0 < timeout_s, "timed out"
        time.sleep(0.05)


SLOW_SWEEP = ["sweep", "workloads/dram/random.yaml", "--grid", "traffic.seed=1,2,3,4,5,6",
              "--set", "traffic.requests=100000"]


@pytest.mark.parametrize("signame, jobs, code", [("SIGTERM", "2", 143), ("SIGINT", "1", 130)])
def test_interrupted_sweep_leaves_complete_points_and_resumes(tmp_path, signame, jobs, code):
    import signal
    out = tmp_path / "sw"
    proc = _start([*SLOW_SWEEP, "--jobs", jobs, "-o", str(out)])
    _wait_for(lambda: (out / "p0000" / "summary.json").exists() or (out / "p0001" / "summary.json").exists(), proc)
    proc.send_signal(getattr(signal, signame))
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert "Traceback" not in err
    assert _hidden(out) == []                      # no temporary or half-written folder
    done = sorted(p.parent.name for p in out.glob("p*/summary.json"))
    assert 1 <= len(done) < 6
    for d in out.glob("p*"):                         # every folder present is complete
        assert {"summary.json", "stats.json", "run.json", "config.resolved.yaml"} <= {p.name for p in d.iterdir()}
    stamps = {d: (out / d / "run.json").read_bytes() for d in done}
    proc = _start([*SLOW_SWEEP, "--jobs", jobs, "-o", str(out)])
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert len(list(out.glob("p*/summary.json"))) == 6
    assert {d: (out / d / "run.json").read_bytes() for d in done} == stamps   # finished points not rerun
    assert len((out / "sweep.csv").read_text().splitlines()) == 7


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a process has used, from /proc (Linux); 0 once it is gone (the
    caller's poll then reports its exit)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_sigterm_during_run_leaves_no_folder(tmp_path):
    """The signal lands during the run: once it has used 1 s of CPU (start-up and the kernel's cache
    load take 0.6-1.4 s on the development VMs), a 3,000,000-request run has seconds of simulation
    left. A fixed 4 s wait was too long on a faster VM, where the run had already finished."""
    import signal
    out = tmp_path / "r"
    proc = _start(["run", "workloads/dram/random.yaml", "-o", str(out), "--set", "traffic.requests=3000000"])
    _wait_for(lambda: _cpu_s(proc.pid) >= 1.0, proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143 and "Traceback" not in err, err
    assert list(tmp_path.iterdir()) == []


def test_signal_landing_in_numba_code_is_raised_in_the_hwsim_caller_once_numba_returns(tmp_path):
    """A signal that is handled inside numba's own Python code (a kernel's callback as it returns)
    raises nothing there; it is raised in the hwsim frame that called numba, at its very next line
    (a re-delivery timer used to land in the next kernel's callback every time). A second signal
    meanwhile is raised there too, once."""
    import importlib.util
    import signal
    import sys

    from hwsim.interrupts import Terminated, install_signal_handlers

    def module(folder, text):
        (tmp_path / folder).mkdir()
        path = tmp_path / folder / "fake.py"
        path.write_text(text)
        spec = importlib.util.spec_from_file_location(f"fake_{folder}", path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        return mod

    numba_like = module("numba", "import os, signal\n"
                        "def kernel_callback(log):\n"
                        "    os.kill(os.getpid(), signal.SIGTERM)\n"
                        "    os.kill(os.getpid(), signal.SIGTERM)\n"   # a second one while armed
                        "    log.append('callback finished')\n"
                        "    log.append('kernel returned')\n")
    hwsim_like = module("hwsim", "def caller(kernel, log):\n"
                        "    kernel(log)\n"
                        "    log.append('caller went on')\n")
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT), sys.gettrace()
    log = []
    try:
        install_signal_handlers()
        with pytest.raises(Terminated) as info:
            hwsim_like.caller(numba_like.kernel_callback, log)
    finally:
        signal.signal(signal.SIGTERM, before[0])
        signal.signal(signal.SIGINT, before[1])
    assert log == ["callback finished", "kernel returned"]
    paths = [entry.frame.code.path for entry in info.traceback]
    assert tmp_path / "hwsim" / "fake.py" in paths and tmp_path / "numba" / "fake.py" not in paths
    assert sys.gettrace() is before[2]           # the trace function armed for it is gone again


def test_stale_temporaries_of_a_killed_writer_are_removed_on_resume(tmp_path):
    from hwsim.sweep import run_sweep
    out = tmp_path / "sw"
    (out / ".p0000.abc.tmp").mkdir(parents=True)
    (out / ".p0000.abc.tmp" / "stats.json").write_text("{")
    (out / ".sweep.csv.x.tmp").write_text("partial")
    run_sweep("workloads/dram/random.yaml", ["traffic.seed=1,2"], str(out), base_overrides=["traffic.requests=200"],
              progress=False)
    assert _hidden(out) == [] and not list(out.glob(".*"))
    assert len(list(out.glob("p*/summary.json"))) == 2


def test_progress_lines_for_long_runs(tmp_path, capsys):
    assert main(["run", "workloads/pim_gpt/gpt2-small.yaml", "-o", str(tmp_path / "g"), "--json",
                 "--set", "run.generated_tokens=3", "--progress", "1e-9"]) == 0
    lines = [x for x in capsys.readouterr().err.splitlines() if x.startswith("hwsim: gpt2-small: token")]
    assert [x.split()[3] for x in lines] == ["1/3", "2/3", "3/3"]
    assert "left" in lines[0] and "left" not in lines[-1]
    assert main(["run", "workloads/t3/megagpt2_op_tp8.yaml", "-o", str(tmp_path / "t"), "--json",
                 "--set", "tokens=512", "--progress", "1e-9"]) == 0
    assert "simulation t3_mca 6/6" in capsys.readouterr().err
    assert main(["run", "workloads/smoke.yaml", "-o", str(tmp_path / "s"), "--progress", "-1"]) == 2


# ---- every error class the reliability issue lists: exit 2, file + field named, nothing written -----

SMOKE = "workloads/smoke.yaml"
GPT2 = "workloads/pim_gpt/gpt2-small.yaml"
VMM = "workloads/pim_gpt/vmm_1024x16_1ch.yaml"
T3 = "workloads/t3/megagpt2_op_tp8.yaml"

ERROR_CASES = [
    # (name, workload text or shipped file, --set overrides, text expected in the message)
    ("yaml syntax", "kind: dram\ndram: {preset: GDDR6_16Gbps_x16\n", [], "YAML"),
    ("unknown key", SMOKE, ["traffic.bogus=1"], "traffic.bogus"),
    ("wrong type", SMOKE, ["traffic.requests=many"], "traffic.requests"),
    ("negative size", SMOKE, ["traffic.requests=-5"], "traffic.requests"),
    ("zero channels", GPT2, ["hardware.pim.channels=0"], "channels"),
    ("zero timing", SMOKE, ["dram.overrides.timing.nCL=0"], "nCL"),
    ("nRC < nRAS + nRP", SMOKE, ["dram.overrides.timing.nRC=20"], "nRC"),
    ("unknown dram preset", SMOKE, ["dram.preset=DDR9"], "dram.preset"),
    ("unknown model preset", GPT2, ["model=gpt5"], "model"),
    ("unknown strategy", VMM, ["strategy=diagonal"], "strategy"),
    ("unknown policy", GPT2, ["run.policy=eager"], "run.policy"),
    ("model does not fit", "workloads/pim_gpt/gpt3-xl.yaml", ["hardware.pim.channels=1"], "model"),
    ("tokens beyond context", GPT2, ["run.generated_tokens=2000"], "run.generated_tokens"),
    ("tp does not divide hidden", T3, ["tp=7"], "tp"),
    ("zero tokens", T3, ["tokens=0"], "tokens"),
]


@pytest.mark.parametrize("name, source, sets, needle", ERROR_CASES, ids=[c[0] for c in ERROR_CASES])
def test_each_listed_error_class_is_clean(tmp_path, capsys, name, source, sets, needle):
    if source.endswith(".yaml") and "\n" not in source:
        f = tmp_path / Path(source).name
        f.write_text((ROOT / source).read_text())
    else:
        f = tmp_path / "bad.yaml"
        f.write_text(source)
    out = tmp_path / "out"
    args = ["run", str(f), "-o", str(out)] + [a for s in sets for a in ("--set", s)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and str(f) in err and needle in err, err
    assert len(err.strip().splitlines()) == 1, err
    assert not out.exists()


def test_mis_shaped_weight_file_is_clean(tmp_path, capsys):
    import numpy as np
    w = tmp_path / "w.npz"
    np.savez(w, wte=np.zeros((10, 4), np.float32))
    out = tmp_path / "out"
    assert main(["run", GPT2, "-o", str(out), "--weights", str(w), "--prompt-ids", "1,2", "--generate", "1"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and str(w) in err and "wte" in err, err
    assert not out.exists()
