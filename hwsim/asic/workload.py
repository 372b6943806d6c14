"""Workload kinds `pim_gpt` (token generation of a GPT model on PIM-GPT) and `vmm` (one VMM on
the PIM), their runners and the suite table.

`pim_gpt`: the model is placed on the PIM (`place_model`), then every generated token is
simulated exactly (contexts prompt+1 .. prompt+generated): the controller compiles the decode op
graph of that context into instructions and executes them on the event engine
(`hwsim.asic.controller`). The same op graph is evaluated by the GPU/CPU roofline baselines and
joined on op id (ops.csv). docs/pim_gpt.md describes every choice.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from typing import Any, Literal

from hwsim import progress
from hwsim.asic.controller import CATEGORIES, CompileOptions, Compiler, Executor, PimSystemPort
from hwsim.asic.spec import AsicSpec, load_asic
from hwsim.asic.vector_unit import ZERO, VectorUnit
from hwsim.config import spec
from hwsim.engine import Engine
from hwsim.errors import InputError
from hwsim.models import ModelSpec, load_model

DEFAULT_DEVICES = ("t4", "xeon_gold_6154")
DEFAULT_MODES = ("roofline", "graph", "eager", "ggml")
DEFAULT_ENERGY = ("pim_gpt_dram", "pim_gpt_asic")
# The paper's two baselines (pim-gpt.md §8): the suite table reports speedups against these.
SUITE_DEVICES = ("t4", "xeon_gold_6154")


# --------------------------------------------------------------------------------------------
# Configuration


@dataclass(frozen=True, kw_only=True)
class RunSpec:
    """Which tokens to generate and how the controller runs."""

    prompt_tokens: int = spec("tokens already in the KV cache before the first generated token (their "
                              "prefill is not simulated)", unit="tokens", min=0, default=0)
    generated_tokens: int | None = spec(
        "tokens to generate; each is simulated exactly at its own context length (null: up to the "
        "model's context)", unit="tokens", min=1, default=None)
    policy: Literal["serial", "overlap"] = spec(
        "serial: an instruction starts only when the ASIC and all PIM channels are idle (the paper's "
        "simulator); overlap: ASIC work and data movement overlap PIM work where dependencies allow",
        default="serial")
    include_embedding: bool = spec("simulate the token + position embedding lookup", default=True)
    include_lm_head: bool = spec("simulate the final LM head VMM (d x vocab) and the argmax", default=True)
    include_final_layernorm: bool = spec(
        "simulate the final LayerNorm (ln_f) and its parameter fetch (timing and baselines; functional "
        "mode always applies it, the logits need it)", default=True)


@dataclass(frozen=True, kw_only=True)
class Hardware:
    """The PIM-GPT system."""

    pim: Any = spec("PIM: a pim preset name or {preset: NAME, channels: N, ...} (hwsim presets pim)",
                    default="pim_gpt")
    asic: Any = spec("ASIC: an asic preset name or {preset: NAME, clock_MHz: F, ...} (hwsim presets asic)",
                     default="pim_gpt_asic")


@dataclass(frozen=True, kw_only=True)
class Baselines:
    """GPU/CPU roofline baselines evaluated on the same op graph."""

    devices: tuple[str, ...] = spec("gpu/cpu presets", default=DEFAULT_DEVICES)
    modes: tuple[str, ...] = spec("software modes (a device's missing modes are skipped)", default=DEFAULT_MODES)


@dataclass(frozen=True, kw_only=True)
class PimGptWorkload:
    """`kind: pim_gpt`: token generation of one GPT model on PIM-GPT."""

    name: str | None = spec("workload name", default=None)
    description: str = spec("what the workload is for", default="")
    model: Any = spec("model: a preset name (hwsim presets models), {preset: NAME, field: value} or an inline "
                      "mapping of every ModelSpec field")
    run: RunSpec = spec("tokens and policy", default_factory=RunSpec)
    hardware: Hardware = spec("PIM and ASIC", default_factory=Hardware)
    baselines: Baselines = spec("GPU/CPU baselines", default_factory=Baselines)
    energy: tuple[str, ...] = spec("energy tables (presets) whose entries together price every action",
                                   default=DEFAULT_ENERGY)
    dump_commands: bool = spec("also write every DRAM/PIM command issued (commands.csv, for hwsim check)",
                               default=False)

    def validate(self, file: str | None, path: str) -> None:
        model = load_model(self.model, file, "model")
        load_asic(self.hardware.asic, file, "hardware.asic")
        from hwsim.dram_pim.pim import load_pim

        load_pim(pim_value(self.hardware.pim), file, "hardware.pim")
        tokens(self.run, model, file)
        _check_baselines(self.baselines, file)
        _energy_tables(self.energy, file)


def pim_value(value: Any) -> Any:
    """A `hardware.pim` value: a mapping without `preset` overrides the default preset `pim_gpt`
    (so `--set hardware.pim.channels=16` works on any workload)."""
    if isinstance(value, dict) and "preset" not in value:
        return {"preset": "pim_gpt", **value}
    return value


def tokens(run: RunSpec, model: ModelSpec, file: str | None = None) -> tuple[int, int]:
    """(prompt, generated) with the default applied; beyond the context is an InputError."""
    p = run.prompt_tokens
    if p >= model.context:
        raise InputError(file, "run.prompt_tokens", f"got {p}; the context of {model.name} is {model.context} "
                         "tokens and at least one must be generated")
    g = model.context - p if run.generated_tokens is None else run.generated_tokens
    if p + g > model.context:
        raise InputError(file, "run.generated_tokens",
                         f"got {g}; prompt_tokens + generated_tokens = {p + g} exceeds the context of "
                         f"{model.name} ({model.context} tokens)")
    return p, g


def _check_baselines(b: Baselines, file: str | None) -> None:
    from hwsim.baselines import MODES, list_devices

    for i, dev in enumerate(b.devices):
        if dev not in list_devices():
            raise InputError(file, f"baselines.devices[{i}]",
                             f"unknown device {dev!r}; valid: {', '.join(list_devices())}")
    for i, mode in enumerate(b.modes):
        if mode not in MODES:
            raise InputError(file, f"baselines.modes[{i}]", f"got {mode!r}; expected one of {', '.join(MODES)}")


def _energy_tables(names: tuple[str, ...], file: str | None):
    """One merged EnergyTable; an action priced by two tables is an error."""
    from hwsim.energy import EnergyTable, load_energy_table

    if not names:
        raise InputError(file, "energy", "expected at least one energy table")
    entries: dict = {}
    for i, name in enumerate(names):
        t = load_energy_table(name, file=file, path=f"energy[{i}]")
        for k, v in t.entries.items():
            if k in entries:
                raise InputError(file, f"energy[{i}]", f"table {name!r} prices {k!r} again")
            entries[k] = v
    return EnergyTable("+".join(names), entries)


# --------------------------------------------------------------------------------------------
# Run


ENERGY_GROUPS = (
    ("pim_activate", ("ACT", "ACT_AB", "PRE", "PREA")),
    ("pim_mac", ("MAC_AB",)),
    ("pim_read_write", ("RD", "RDA", "WR", "WRA", "WR_GB", "RD_MAC", "WR_BIAS", "UPD")),
    ("pim_refresh", ("REFab", "REFpb")),
    ("pim_io", ("pim_io",)),
    ("pim_standby", ("pim_standby_active", "pim_standby_precharged")),
    ("asic_compute", ("asic.add", "asic.mul", "asic.cmp", "asic.bit")),
    ("asic_sram", ("asic.sram_read", "asic.sram_write")),
    ("asic_leakage", ("asic.leakage",)),
    ("link", ("link.io", "link.dram_read")),
)


def _group_of(action: str) -> str:
    for g, members in ENERGY_GROUPS:
        if action in members:
            return g
    return "other"


def _mac_rate_per_ns(pim_spec) -> float:
    """Peak MAC rate of all banks: mac_lanes per bank per MAC_AB, one MAC_AB per nCCD_L."""
    t = pim_spec.dram_spec.timing
    return pim_spec.banks_total * pim_spec.mac_lanes / (t.nCCD_L * t.tCK_ps / 1000.0)


def bound_ns(model: ModelSpec, ctx: int, pim_spec, include_lm_head: bool) -> float:
    """Weights and the KV cache (q.K^T and p.V over ctx tokens) streamed at the peak MAC rate."""
    d, f = model.d_model, model.d_ff
    elems = model.n_layers * (4 * d * d + 2 * d * f + 2 * d * ctx)
    if include_lm_head:
        elems += d * model.vocab
    return elems / _mac_rate_per_ns(pim_spec)


@dataclass
class _Totals:
    latency_ps: list = field(default_factory=list)
    contexts: list = field(default_factory=list)
    breakdown_ps: dict = field(default_factory=lambda: dict.fromkeys(CATEGORIES, 0))
    token_breakdown: list = field(default_factory=list)
    asic = ZERO
    link_bits: int = 0
    pim_counts: dict = field(default_factory=dict)
    hits: int = 0
    misses: int = 0
    offchip: int = 0
    instructions: int = 0
    refresh_ps: int = 0
    phases_ps: dict = field(default_factory=dict)
    last = None


def simulate(model: ModelSpec, pim_spec, asic: AsicSpec, prompt: int, generated: int, *, policy: str = "serial",
             include_embedding: bool = True, include_lm_head: bool = True, memo: bool = True,
             keep_segments: bool = False, file: str | None = None, on_token=None, record: bool = False,
             include_final_layernorm: bool = True):
    """Place `model` and simulate `generated` tokens; return (_Totals, PimSystem, ModelPlacement)."""
    from hwsim.dram_pim.pim import PimSystem
    from hwsim.mapping.partition import place_model

    mp = place_model(model, pim_spec, model.context, include_lm_head=include_lm_head, file=file)
    params_fit(model, asic, file)
    system = PimSystem(pim_spec, mp, record=record)
    port = PimSystemPort(system, mp)
    vu = VectorUnit(asic)
    comp = Compiler(model, vu, port, CompileOptions(include_embedding, include_lm_head, asic.params,
                                                    include_final_layernorm=include_final_layernorm))
    engine = Engine()
    ex = Executor(engine, port, asic, vu, pim_spec.channels, policy, memo=memo, keep_segments=keep_segments)
    tot = _Totals()
    for j in range(generated):
        ctx = prompt + j + 1
        tr = ex.run_token(comp.token(ctx, ctx - 1, lazy=ex.runs_compiled))
        lat = tr.latency_ps
        tot.latency_ps.append(lat)
        tot.contexts.append(ctx)
        tot.token_breakdown.append(tr.breakdown_ps)
        for k, v in tr.breakdown_ps.items():
            tot.breakdown_ps[k] += v
        tot.asic = tot.asic + tr.asic_cost
        tot.link_bits += tr.link_bits
        for k, v in port.energy_counts(lat / 1000.0).items():
            tot.pim_counts[k] = tot.pim_counts.get(k, 0) + v
        tot.hits += tr.row_hits
        tot.misses += tr.row_misses
        tot.offchip += tr.offchip_bytes
        progress.step("token", j + 1, generated)
        tot.instructions += tr.instructions
        tot.refresh_ps += tr.refresh_ps
        for k, v in tr.phases_ps.items():
            tot.phases_ps[k] = tot.phases_ps.get(k, 0) + v
        tot.last = tr
        if on_token is not None:
            on_token(j, ctx, tr)
    return tot, system, mp


def params_fit(model: ModelSpec, asic: AsicSpec, file: str | None = None) -> None:
    """The ASIC's SRAM must hold the live vectors and the parameters it keeps (InputError otherwise)."""
    from hwsim.asic.controller import layer_param_elems

    d = model.d_model
    per_layer = layer_param_elems(model) * 2
    need_params = per_layer if asic.params == "fetch" else per_layer * model.n_layers + 4 * d
    if need_params > asic.sram.param_KiB * 1024:
        raise InputError(file, "hardware.asic.sram.param_KiB",
                         f"got {asic.sram.param_KiB}; {model.name} needs {math.ceil(need_params / 1024)} KiB of "
                         f"parameters on chip (params: {asic.params})")
    # Live vectors: the residual stream plus the largest of (q, k, v and the scores of every head
    # at full context), (FC1 output and FC2 partial sums: one d-vector per 1024-element input window),
    # (the logits).
    windows = -(-model.d_ff // 1024)
    live = d + max(3 * d + model.n_heads * model.context, model.d_ff + windows * d, model.vocab)
    if live * 2 > asic.sram.vector_KiB * 1024:
        raise InputError(file, "hardware.asic.sram.vector_KiB",
                         f"got {asic.sram.vector_KiB}; {model.name} needs {math.ceil(live * 2 / 1024)} KiB of live "
                         "vectors (residual, q/k/v and scores at full context, FC1 output and partial sums, logits)")


def _baselines(model: ModelSpec, contexts: list[int], b: Baselines, include_embedding: bool, include_lm_head: bool,
               include_final_layernorm: bool = True):
    """Per (device, mode): mean per-token latency and energy over `contexts` and the per-op rows of
    the last context. Baseline op times are affine in the context when every attention op is
    memory-bound (batch 1), so the mean over consecutive contexts is the mean of the two ends;
    otherwise every context is evaluated."""
    from hwsim.baselines import evaluate, load_device
    from hwsim.graph import build_decode_graph

    first, last = contexts[0], contexts[-1]

    def graph(ctx):
        return build_decode_graph(model, ctx, include_lm_head=include_lm_head, include_embedding=include_embedding,
                                  include_final_layernorm=include_final_layernorm)

    g_first, g_last = graph(first), graph(last)
    out, rows = {}, {}
    for dev_name in b.devices:
        dev = load_device(dev_name)
        for mode in [m for m in b.modes if m in dev.modes]:
            r0, r1 = evaluate(g_first, dev, mode), evaluate(g_last, dev, mode)
            affine = all(r.bound == "memory" for r in (*r0.rows, *r1.rows)
                         if r.kind in ("attn_score", "attn_context", "softmax"))
            if affine or len(contexts) <= 2:
                lat = (r0.latency_ns_per_token + r1.latency_ns_per_token) / 2 if len(contexts) > 1 \
                    else r1.latency_ns_per_token
                en = (r0.energy_pJ_per_token + r1.energy_pJ_per_token) / 2 if len(contexts) > 1 \
                    else r1.energy_pJ_per_token
            else:
                rs = [evaluate(graph(c), dev, mode) for c in contexts]
                lat = sum(r.latency_ns_per_token for r in rs) / len(rs)
                en = sum(r.energy_pJ_per_token for r in rs) / len(rs)
            out.setdefault(dev_name, {})[mode] = {"latency_ns_per_token": lat, "energy_pJ_per_token": en}
            rows[(dev_name, mode)] = {r.op_id: r.time_ns for r in r1.rows}
    return out, rows, g_last


def run(wl, **options):
    """Simulate a `pim_gpt` workload (see the module docstring); returns a RunResult."""
    from hwsim.dram_pim.pim import load_pim
    from hwsim.workload import RunResult

    cfg: PimGptWorkload = wl.config
    file = wl.file
    model = load_model(cfg.model, file, "model")
    asic = load_asic(cfg.hardware.asic, file, "hardware.asic")
    pim_spec = load_pim(pim_value(cfg.hardware.pim), file, "hardware.pim")
    prompt, gen = tokens(cfg.run, model, file)
    functional, fwall = None, {}
    if options.get("weights"):
        functional, prompt, gen, fwall = _functional(wl, model, options, gen)
        if prompt + gen > model.context:
            raise InputError(file, "--generate", f"got {gen}; prompt + generate exceeds the context of {model.name}")
    table_e = _energy_tables(cfg.energy, file)
    memo = not options.get("no_memo", False)
    trace_path = options.get("trace")
    on_token, trace_events = _trace_collector() if trace_path else (None, None)
    tot, system, mp = simulate(model, pim_spec, asic, prompt, gen, policy=cfg.run.policy,
                               include_embedding=cfg.run.include_embedding, include_lm_head=cfg.run.include_lm_head,
                               memo=memo, keep_segments=bool(trace_path), file=file,
                               on_token=on_token, record=cfg.dump_commands,
                               include_final_layernorm=cfg.run.include_final_layernorm)
    n = len(tot.latency_ps)
    total_ps = sum(tot.latency_ps)
    # Energy: PIM counts, ASIC ops and SRAM, ASIC leakage over the whole run, link transfers.
    counts = dict(tot.pim_counts)
    counts.update({k: v for k, v in tot.asic.counts().items() if v})
    counts["asic.leakage"] = total_ps / 1000.0
    if tot.link_bits:
        counts["link.io"] = tot.link_bits
        counts["link.dram_read"] = tot.link_bits
    energy = table_e.breakdown_pJ(counts)
    energy_total = sum(energy.values())
    groups: dict[str, float] = {}
    for k, v in energy.items():
        g = _group_of(k)
        groups[g] = groups.get(g, 0.0) + v / n
    lat_ns = total_ps / 1000.0 / n
    bounds = [bound_ns(model, c, pim_spec, cfg.run.include_lm_head) for c in tot.contexts]
    base, base_rows, g_last = _baselines(model, tot.contexts, cfg.baselines, cfg.run.include_embedding,
                                         cfg.run.include_lm_head, cfg.run.include_final_layernorm)
    e_tok = energy_total / n
    for dev, modes in base.items():
        for mode, r in modes.items():
            r["speedup"] = r["latency_ns_per_token"] / lat_ns
            r["energy_efficiency"] = r["energy_pJ_per_token"] / e_tok
    breakdown_ns = {k: v / 1000.0 / n for k, v in tot.breakdown_ps.items()}
    hits, misses = tot.hits, tot.misses
    from hwsim.graph import graph_totals
    gpu_bytes = graph_totals(g_last)["bytes_total"]
    summary = {
        "model": model.name,
        "policy": cfg.run.policy,
        "channels": pim_spec.channels,
        "banks": pim_spec.banks_total,
        "asic_clock_MHz": asic.clock_MHz,
        "prompt_tokens": prompt,
        "generated_tokens": gen,
        "context_first": tot.contexts[0],
        "context_last": tot.contexts[-1],
        "include_embedding": cfg.run.include_embedding,
        "include_lm_head": cfg.run.include_lm_head,
        "include_final_layernorm": cfg.run.include_final_layernorm,
        "latency_ns_per_token": lat_ns,
        "latency_ns_first_token": tot.latency_ps[0] / 1000.0,
        "latency_ns_last_token": tot.latency_ps[-1] / 1000.0,
        "tokens_per_s": 1e9 / lat_ns,
        "bound_ns_per_token": sum(bounds) / n,
        "bound_fraction": (sum(bounds) / n) / lat_ns,
        "breakdown_ns": breakdown_ns,
        "non_vmm_fraction": 1.0 - breakdown_ns["pim_vmm"] / lat_ns,
        "refresh_ns_per_token": tot.refresh_ps / 1000.0 / n,
        "mode_switches_per_token": system.mode_switches / n,
        "pim_phases_ns": {k: v / 1000.0 / n for k, v in sorted(tot.phases_ps.items())},
        "energy_pJ_per_token": e_tok,
        "energy_breakdown_pJ": dict(sorted(groups.items())),
        "power_W": e_tok / lat_ns / 1000.0,
        "row_hit_rate": hits / (hits + misses) if hits + misses else 0.0,
        "offchip_bytes_per_token": tot.offchip / n,
        "offchip_reduction_vs_gpu": gpu_bytes / (tot.offchip / n) if tot.offchip else None,
        "baselines": base,
    }
    if functional is not None:
        summary["functional"] = functional
    stats = _stats(tot, energy, counts, n, model, pim_spec, system)
    files = {"ops.csv": _ops_csv(tot.last, g_last, base_rows, lat_ns), "tokens.csv": _tokens_csv(tot)}
    if cfg.dump_commands:
        files["commands.csv"] = system.trace_csv()
    if trace_path:
        trace_events.write(trace_path)
    perf = {"memo_hits": system.memo_hits, "memo_misses": system.memo_misses,
            **{f"functional_{k}": v for k, v in fwall.items()}}
    return RunResult(stats=stats, summary=summary, files=files, table=_table(summary), perf=perf)


def _functional(wl, model: ModelSpec, options: dict, generated: int):
    """Functional mode (`--weights`): real BF16 arithmetic through the simulated banks
    (`hwsim.asic.functional.run_functional`). The timing run then uses the same contexts: prompt =
    the prompt ids, generated = --generate (default: the workload's generated_tokens).
    Returns (summary without wall-clock fields, prompt, generated, wall-clock fields)."""
    try:
        from hwsim.asic.functional import run_functional
    except ImportError:  # pragma: no cover - the functional module ships with hwsim
        raise InputError(wl.file, "--weights", "functional mode is not available in this build") from None
    gen = options.get("generate") or generated
    ids = options.get("prompt_ids")
    if ids is None:  # GPT-2's <|endoftext|> token starts an unconditional generation
        ids = [50256] if model.vocab > 50256 else [0]
    res = run_functional(wl, options["weights"], ids, gen, options.get("dump_logits"))
    wall = {k: res.pop(k) for k in ("setup_s", "decode_s") if k in res}
    return res, len(res["prompt_ids"]), int(res["steps"]), wall


def _trace_collector():
    """(on_token callback, Timeline): every instruction part as a span on its category's track
    (ASIC, transfer, PIM VMM, KV write, other) and the PIM work of every instruction on one track per
    channel, named by its op id (hwsim.timeline bounds the event count)."""
    from hwsim.timeline import Timeline

    tl = Timeline()

    def on_token(j, ctx, tr):
        for a, b, cat, op in tr.segments or ():
            tl.span("PIM-GPT", cat, op, a, b - a, token=j, context=ctx)
        for c, a, b, op in tr.channel_spans or ():
            tl.span("PIM channels", f"channel {c}", op, a, b - a, token=j, context=ctx)
    return on_token, tl


def _stats(tot: _Totals, energy: dict, counts: dict, n: int, model, pim_spec, system) -> dict:
    s: dict[str, float] = {
        "pim_gpt.tokens": n,
        "pim_gpt.instructions": tot.instructions,
        "pim_gpt.latency_ps.total": sum(tot.latency_ps),
        "pim_gpt.latency_ps.min": min(tot.latency_ps),
        "pim_gpt.latency_ps.max": max(tot.latency_ps),
        "pim.row_hits": tot.hits,
        "pim.row_misses": tot.misses,
        "pim.offchip_bytes": tot.offchip,
        "pim.refresh_ps": tot.refresh_ps,
        **{f"pim.phase_ps.{k}": v for k, v in tot.phases_ps.items()},
        "link.bits": tot.link_bits,
    }
    for k, v in tot.breakdown_ps.items():
        s[f"pim_gpt.breakdown_ps.{k}"] = v
    for k, v in counts.items():
        s[f"counts.{k}"] = v
    for k, v in energy.items():
        s[f"energy_pJ.{k}"] = v
    return dict(sorted(s.items()))


def _ops_csv(tr, graph, base_rows: dict, lat_ns: float) -> str:
    """One row per op id of the last token: simulated busy ns, baseline ns and speedup per device/mode."""
    from hwsim.graph import ops_in_order

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    keys = sorted(base_rows)
    w.writerow(["op_id", "kind", "layer", "sim_ns", *[f"{d}.{m}_ns" for d, m in keys],
                *[f"speedup_{d}.{m}" for d, m in keys]])
    for op in ops_in_order(graph):
        sim = tr.op_ps.get(op.id, 0) / 1000.0
        base = [base_rows[k].get(op.id, 0.0) for k in keys]
        w.writerow([op.id, op.kind, "" if op.layer is None else op.layer, _g(sim), *[_g(b) for b in base],
                    *[_g(b / sim) if sim else "" for b in base]])
    return buf.getvalue()


def _tokens_csv(tot: _Totals) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["token", "context", "latency_ns", *[f"{c}_ns" for c in CATEGORIES]])
    for j, (ctx, lat, bd) in enumerate(zip(tot.contexts, tot.latency_ps, tot.token_breakdown)):
        w.writerow([j, ctx, _g(lat / 1000.0), *[_g(bd[c] / 1000.0) for c in CATEGORIES]])
    return buf.getvalue()


def _g(x: float) -> str:
    return f"{x:.6g}"


def _table(s: dict) -> list[tuple[str, Any]]:
    rows = [("model", s["model"]), ("policy", s["policy"]),
            ("tokens (prompt + generated)", f"{s['prompt_tokens']} + {s['generated_tokens']}"),
            ("latency per token (us)", s["latency_ns_per_token"] / 1000),
            ("  first / last token (us)", f"{s['latency_ns_first_token'] / 1000:.2f} / "
                                          f"{s['latency_ns_last_token'] / 1000:.2f}"),
            ("  MAC-rate bound (us)", s["bound_ns_per_token"] / 1000),
            ("tokens/s", s["tokens_per_s"]),
            ("energy per token (uJ)", s["energy_pJ_per_token"] / 1e6),
            ("average power (W)", s["power_W"]),
            ("row hit rate", s["row_hit_rate"]),
            ("non-VMM share of latency", s["non_vmm_fraction"])]
    for k, v in s["breakdown_ns"].items():
        rows.append((f"  {k} (us/token)", v / 1000))
    for dev, modes in s["baselines"].items():
        for mode, r in modes.items():
            rows.append((f"speedup vs {dev} {mode}", r["speedup"]))
            rows.append((f"energy efficiency vs {dev} {mode}", r["energy_efficiency"]))
    return rows


# --------------------------------------------------------------------------------------------
# Suite table


from hwsim.asic.plots import plot_run, plot_suite  # noqa: E402,F401  (found by `hwsim plot`)


def suite_table(results: list[tuple[str, dict]]):
    """(headers, rows, aggregates): one row per model with latency, energy, row hits and the speedup
    and energy efficiency against T4 and Xeon Gold 6154 in every baseline mode; aggregates give the
    min-max range of each ratio column. `vmm` summaries get their own small table."""
    if results and all("d_in" in s for _, s in results):
        return _vmm_suite_table(results)
    pairs = []
    for _, s in results:
        for dev in SUITE_DEVICES:
            for mode in s.get("baselines", {}).get(dev, {}):
                if (dev, mode) not in pairs:
                    pairs.append((dev, mode))
    headers = ["workload", "model", "us/token", "uJ/token", "row hits", "non-VMM"]
    headers += [f"x {d}.{m}" for d, m in pairs] + [f"EE {d}.{m}" for d, m in pairs]
    rows = []
    for name, s in results:
        b = s.get("baselines", {})
        row = [name, s["model"], round(s["latency_ns_per_token"] / 1000, 2), round(s["energy_pJ_per_token"] / 1e6, 2),
               round(s["row_hit_rate"], 4), round(s["non_vmm_fraction"], 4)]
        row += [round(b[d][m]["speedup"], 1) if m in b.get(d, {}) else "" for d, m in pairs]
        row += [round(b[d][m]["energy_efficiency"], 1) if m in b.get(d, {}) else "" for d, m in pairs]
        rows.append(row)
    aggregates = {}
    for i, h in enumerate(headers[2:], start=2):
        vals = [r[i] for r in rows if isinstance(r[i], (int, float))]
        if vals:
            aggregates[f"{h} range"] = f"{min(vals):g} - {max(vals):g}"
    return headers, rows, aggregates


def _vmm_suite_table(results):
    headers = ["workload", "d_in", "d_out", "channels", "cycles", "latency_ns", "bound_ns", "MAC util", "row hits"]
    rows = [[n, s["d_in"], s["d_out"], s["channels"], s["cycles"], s["latency_ns"], round(s["bound_ns"], 1),
             round(s["mac_utilisation"], 3), round(s["row_hit_rate"], 4)] for n, s in results]
    return headers, rows, {}


# --------------------------------------------------------------------------------------------
# kind: vmm


@dataclass(frozen=True, kw_only=True)
class VmmShape:
    d_in: int = spec("input vector length (rows of W)", min=1)
    d_out: int = spec("output vector length (columns of W)", min=1)


@dataclass(frozen=True, kw_only=True)
class VmmHardware:
    pim: Any = spec("PIM: a pim preset name or {preset: NAME, channels: N, ...}", default="pim_gpt")


@dataclass(frozen=True, kw_only=True)
class VmmWorkload:
    """`kind: vmm`: one y = x W on the PIM (placement, command stream, exact timing)."""

    name: str | None = spec("workload name", default=None)
    description: str = spec("what the workload is for", default="")
    vmm: VmmShape = spec("matrix shape")
    hardware: VmmHardware = spec("PIM", default_factory=VmmHardware)
    strategy: str = spec("placement strategy (hwsim.mapping.partition)", default="pim_gpt")
    dump_commands: bool = spec("also write the command trace (commands.csv)", default=False)

    def validate(self, file: str | None, path: str) -> None:
        from hwsim.dram_pim.pim import load_pim
        from hwsim.mapping.partition import STRATEGIES

        load_pim(pim_value(self.hardware.pim), file, "hardware.pim")
        if self.strategy not in STRATEGIES:
            raise InputError(file, "strategy",
                             f"got {self.strategy!r}; expected one of {', '.join(sorted(STRATEGIES))}")


def run_vmm(wl, **options):
    from hwsim.dram_pim.pim import PimSystem, load_pim
    from hwsim.mapping.partition import check_placement, place_matrix
    from hwsim.workload import RunResult

    cfg: VmmWorkload = wl.config
    ps = load_pim(pim_value(cfg.hardware.pim), wl.file, "hardware.pim")
    p = place_matrix("w", cfg.vmm.d_in, cfg.vmm.d_out, ps, strategy=cfg.strategy)
    info = check_placement(p, ps)
    if info["rows_per_bank"] > ps.rows_per_bank:
        raise InputError(wl.file, "vmm", f"{cfg.vmm.d_in} x {cfg.vmm.d_out} needs {info['rows_per_bank']} rows per "
                         f"bank; a bank has {ps.rows_per_bank}")
    record = cfg.dump_commands or bool(options.get("trace"))
    s = PimSystem(ps, record=record)
    r = s.vmm(p, memo=False)
    bound = cfg.vmm.d_in * cfg.vmm.d_out / _mac_rate_per_ns(ps)
    commands = dict(r.commands)
    if r.mode_switches:
        commands["TMOD"] = r.mode_switches     # register <-> normal mode changes (aim_simulator TMOD)
    summary = {
        "d_in": cfg.vmm.d_in, "d_out": cfg.vmm.d_out, "channels": ps.channels, "banks": ps.banks_total,
        "cycles": r.latency_cycles, "tCK_ps": r.tCK_ps, "latency_ns": r.latency_ns,
        "commands": dict(sorted(commands.items())), "phase_cycles": r.cycles,
        "row_hits": r.row_hits, "row_misses": r.row_misses, "row_hit_rate": r.row_hit_rate,
        "bytes_in": r.bytes_in, "bytes_out": r.bytes_out, "macs": r.macs,
        "bound_ns": bound, "mac_utilisation": bound / r.latency_ns,
        "rows_per_bank": info["rows_per_bank"], "column_utilisation": info["column_utilisation"],
    }
    stats = {"vmm.cycles": r.latency_cycles, "vmm.row_hits": r.row_hits, "vmm.row_misses": r.row_misses,
             "vmm.bytes_in": r.bytes_in, "vmm.bytes_out": r.bytes_out, "vmm.macs": r.macs}
    stats.update({f"vmm.commands.{k}": v for k, v in commands.items()})
    stats.update({f"vmm.phase_cycles.{k}": v for k, v in r.cycles.items()})
    files = {"commands.csv": r.trace_csv(s.dram)} if record else {}
    if options.get("trace"):
        from hwsim.outputs import write_atomic
        write_atomic(options["trace"], r.trace_csv(s.dram))
    table = [(k, v) for k, v in summary.items() if not isinstance(v, dict)]
    table += [(f"commands.{k}", v) for k, v in summary["commands"].items()]
    return RunResult(stats=dict(sorted(stats.items())), summary=summary, files=files, table=table)
