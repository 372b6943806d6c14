"""GPU/CPU roofline baseline for one decode step (gpu-baselines.md §7).

Per op: `time_ns = max(flops / (peak·eta_c), bytes / (BW·eta_m)) + launches·t_launch(mode)`.
Fusion is expressed by how many kernel launches each graph op carries in a software mode
(`LAUNCHES`, §7.2); an op fused into a neighbour's kernel carries 0. Energy per op is the
device's decode power for the mode (§7.5) times the op's time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import networkx as nx

from hwsim.config import build, field_path, spec
from hwsim.errors import InputError
from hwsim.graph import build_decode_graph, decode_step, graph_totals, ops_in_order
from hwsim.models import ModelSpec, load_model
from hwsim.presets import list_presets, load_preset, preset_payload

DEVICE_KINDS = ("gpu", "cpu")
DTYPES = {1: "int8", 2: "fp16", 4: "fp32"}

# One launch per fused kernel: LN, QKV GEMM, KV append, fused attention (score+softmax+context),
# O-proj, add, LN, FC1+GELU, FC2, add = 10 per layer; per token embed, final LN and LM head
# + 2 sampling kernels = 5 (§7.2 `graph`/`cpp`).
_FUSED = {"ln1": 1, "attn.qkv": 1, "attn.kv_write": 1, "attn.score": 1, "attn.proj": 1,
          "attn.residual": 1, "ln2": 1, "mlp.fc1": 1, "mlp.fc2": 1, "mlp.residual": 1,
          "embed": 1, "ln_f": 1, "lm_head": 3}

LAUNCHES: dict[str, dict[str, int]] = {
    "roofline": {},
    "graph": _FUSED,
    "cpp": _FUSED,
    # HF GPT-2 eager (§7.2, inference from GPT2Attention/GPT2MLP): addmm ×4, KV torch.cat ×2,
    # score bmm + scale fill + div + causal-mask where, softmax, context bmm + head-merge copy,
    # 2 LN, 2 adds, 8 tanh-GELU element-wise ops = 25 per layer; per token wte + wpe lookups + add,
    # final LN, LM head matmul + 5 logits/argmax/sync ops = 10.
    "eager": {"ln1": 1, "attn.qkv": 1, "attn.kv_write": 2, "attn.score": 4, "attn.softmax": 1,
              "attn.context": 2, "attn.proj": 1, "attn.residual": 1, "ln2": 1, "mlp.fc1": 1,
              "mlp.gelu": 8, "mlp.fc2": 1, "mlp.residual": 1, "embed": 3, "ln_f": 1, "lm_head": 6},
    # ggml-class CPU runtime (§7.3: ~15 ops per layer): KV copies ×2, score matmul + scale/mask,
    # everything else one op each; per token two row lookups, final LN, LM head + sampling = 5.
    "ggml": {"ln1": 1, "attn.qkv": 1, "attn.kv_write": 2, "attn.score": 2, "attn.softmax": 1,
             "attn.context": 1, "attn.proj": 1, "attn.residual": 1, "ln2": 1, "mlp.fc1": 1,
             "mlp.gelu": 1, "mlp.fc2": 1, "mlp.residual": 1, "embed": 2, "ln_f": 1, "lm_head": 2},
}
MODES = tuple(LAUNCHES)


@dataclass(frozen=True)
class DeviceSpec:
    """A GPU or CPU for the roofline baseline."""

    name: str = spec("device name")
    kind: Literal["gpu", "cpu"] = spec("device kind")
    peak_tflops: dict[str, float] = spec("dense peak by dtype (fp16: tensor/matrix units)", unit="TFLOP/s")
    mem_bw_GBps: float = spec("peak DRAM bandwidth", unit="GB/s", min=0, exclusive_min=True)
    tdp_W: float = spec("TDP / board power", unit="W", min=0, exclusive_min=True)
    eta_m: float = spec("achievable fraction of mem_bw_GBps", min=0, exclusive_min=True)
    eta_c: float = spec("achievable fraction of peak_tflops", min=0, exclusive_min=True)
    launch_us: dict[str, float] = spec("per-kernel launch/dispatch overhead by software mode", unit="us")
    decode_power_frac: dict[str, float] = spec("average decode power as a fraction of tdp_W, by mode")
    mem_capacity_GB: float | None = spec("device memory; None: not checked", unit="GB", default=None,
                                         min=0, exclusive_min=True)

    def validate(self, file: str | None, path: str) -> None:
        def fail(field: str, message: str) -> None:
            raise InputError(file, field_path(path, field), message)

        for field in ("eta_m", "eta_c"):
            if getattr(self, field) > 1:
                fail(field, f"got {getattr(self, field)!r}; expected a value in (0, 1]")
        for dtype, tflops in self.peak_tflops.items():
            if dtype not in DTYPES.values() or tflops <= 0:
                fail(f"peak_tflops.{dtype}",
                     f"got {tflops!r}; expected a value > 0 for one of {', '.join(DTYPES.values())}")
        for mode, us in self.launch_us.items():
            if mode not in MODES[1:] or us < 0:
                fail(f"launch_us.{mode}", f"got {us!r}; expected a value >= 0 for one of {', '.join(MODES[1:])}")
        for mode, frac in self.decode_power_frac.items():
            if mode not in self.modes or not 0 < frac <= 1:
                fail(f"decode_power_frac.{mode}",
                     f"got {frac!r}; expected a value in (0, 1] for one of {', '.join(self.modes)}")
        missing = [m for m in self.modes if m not in self.decode_power_frac]
        if missing:
            fail("decode_power_frac", f"missing modes: {', '.join(missing)}")

    @property
    def modes(self) -> tuple[str, ...]:
        """Software modes this device supports: `roofline` plus those with a launch overhead."""
        return ("roofline", *self.launch_us)


@dataclass(frozen=True)
class OpResult:
    """Baseline time and energy of one graph op."""

    op_id: str
    kind: str
    flops: int
    bytes: int
    bound: Literal["compute", "memory"]
    launches: int
    time_ns: float  # roofline time + launches × launch overhead
    energy_pJ: float


@dataclass(frozen=True)
class BaselineResult:
    """Per-op rows and per-token totals of one (graph, device, mode) evaluation."""

    device: str
    mode: str
    power_W: float
    rows: tuple[OpResult, ...]
    latency_ns_per_token: float
    energy_pJ_per_token: float
    energy_tdp_pJ_per_token: float  # upper bound: TDP × latency (§7.5)

    @property
    def launches(self) -> int:
        return sum(r.launches for r in self.rows)


def list_devices() -> list[str]:
    """Names of the shipped GPU and CPU presets."""
    return sorted(n for kind in DEVICE_KINDS for n in list_presets(kind))


def load_device(name: str) -> DeviceSpec:
    """The DeviceSpec of a shipped GPU or CPU preset."""
    for kind in DEVICE_KINDS:
        if name in list_presets(kind):
            data = preset_payload(load_preset(kind, name))
            return build(DeviceSpec, {"name": name, "kind": kind, **data}, file=f"<preset {kind}/{name}>")
    raise InputError(None, "device", f"unknown device {name!r}; valid: {', '.join(list_devices())}")


def list_modes(device: str | DeviceSpec) -> tuple[str, ...]:
    """Software modes available for `device`."""
    return _device(device).modes


def evaluate(graph: nx.DiGraph, device: str | DeviceSpec, mode: str) -> BaselineResult:
    """Roofline time and energy of every op of a decode-step graph on `device` in `mode`."""
    dev = _device(device)
    if mode not in dev.modes:
        raise InputError(None, "mode", f"got {mode!r}; expected one of {', '.join(dev.modes)} for {dev.name}")
    step = decode_step(graph)
    dtype = DTYPES.get(step.dtype_bytes)
    if dtype not in dev.peak_tflops:
        raise InputError(None, "dtype_bytes", f"got {step.dtype_bytes}; {dev.name} has peaks for "
                         f"{', '.join(dev.peak_tflops)} only")
    _check_capacity(step.model, step.context_len, step.dtype_bytes, dev)
    flops_per_ns = dev.peak_tflops[dtype] * 1e3 * dev.eta_c
    bytes_per_ns = dev.mem_bw_GBps * dev.eta_m
    launch_ns = dev.launch_us.get(mode, 0.0) * 1e3
    launches = LAUNCHES[mode]
    power_W = dev.tdp_W * dev.decode_power_frac[mode]
    rows = []
    for op in ops_in_order(graph):
        compute_ns = op.flops / flops_per_ns
        memory_ns = op.bytes_total / bytes_per_ns
        n = launches.get(op.role, 0)
        time_ns = max(compute_ns, memory_ns) + n * launch_ns
        rows.append(OpResult(op.id, op.kind, op.flops, op.bytes_total,
                             "compute" if compute_ns > memory_ns else "memory", n, time_ns, power_W * time_ns * 1e3))
    latency_ns = sum(r.time_ns for r in rows)
    return BaselineResult(dev.name, mode, power_W, tuple(rows), latency_ns,
                          sum(r.energy_pJ for r in rows), dev.tdp_W * latency_ns * 1e3)


def baseline_table(model: Any, context_len: int, devices: list[str | DeviceSpec],
                   modes: list[str] | None = None, *, dtype_bytes: int = 2) -> list[dict]:
    """One row per (device, mode) for `model` at `context_len`; modes a device lacks are skipped."""
    for mode in modes or ():
        if mode not in MODES:
            raise InputError(None, "modes", f"got {mode!r}; expected one of {', '.join(MODES)}")
    model_spec = load_model(model)
    graph = build_decode_graph(model_spec, context_len, dtype_bytes=dtype_bytes)
    totals = graph_totals(graph)
    table = []
    for dev in map(_device, devices):
        for mode in [m for m in (modes or dev.modes) if m in dev.modes]:
            r = evaluate(graph, dev, mode)
            table.append({"model": model_spec.name, "context_len": context_len, "device": dev.name, "mode": mode,
                          "latency_ns_per_token": r.latency_ns_per_token,
                          "tokens_per_s": 1e9 / r.latency_ns_per_token,
                          "energy_pJ_per_token": r.energy_pJ_per_token,
                          "energy_tdp_pJ_per_token": r.energy_tdp_pJ_per_token,
                          "launches": r.launches, "flops": totals["flops"], "bytes": totals["bytes_total"]})
    return table


def _device(device: str | DeviceSpec) -> DeviceSpec:
    return device if isinstance(device, DeviceSpec) else load_device(device)


def _check_capacity(model: ModelSpec, context_len: int, dtype_bytes: int, dev: DeviceSpec) -> None:
    need = model.n_params * dtype_bytes + model.kv_cache_bytes(context_len, dtype_bytes)
    if dev.mem_capacity_GB is not None and need > dev.mem_capacity_GB * 1e9:
        raise InputError(None, "device", f"{model.name} needs {need / 1e9:.2f} GB (weights + KV cache); "
                         f"{dev.name} has {dev.mem_capacity_GB} GB")
