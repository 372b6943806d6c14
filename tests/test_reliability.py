"""Reliability: fuzzed workloads give a valid run or a clean error; outputs are deterministic;
no partial output folders; YAML cannot execute code."""

import copy
import json
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


def test_validate_all_shipped_workloads(capsys):
    assert main(["validate", *map(str, WORKLOADS)]) == 0
