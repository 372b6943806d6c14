"""The PIM-GPT ASIC: clock, vector unit, SRAM buffers and the link to the PIM channels.

`AsicSpec` is built strictly from the preset `hwsim/presets/asic/<name>.yaml` plus overrides
(`load_asic`). Every number in the preset cites its source; values the paper does not give are
documented assumptions. Energies are not part of the spec: they live in the energy table named by
`energy_table` (default `pim_gpt_asic`), so a new table never needs a new simulation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from hwsim.config import build, field_path, spec
from hwsim.errors import InputError
from hwsim.presets import preset_or_mapping

OP_CLASSES = ("add", "mul", "cmp", "bit")


@dataclass(frozen=True, kw_only=True)
class OpLatency:
    """Pipeline depth of each vector-unit operation class (one new operation per lane per cycle)."""

    add: int = spec("BF16 add/subtract", unit="cycles", min=1)
    mul: int = spec("BF16 multiply", unit="cycles", min=1)
    cmp: int = spec("compare / max / clamp", unit="cycles", min=1)
    bit: int = spec("integer or bit operation (fast inverse sqrt, exponent tricks)", unit="cycles", min=1)


@dataclass(frozen=True, kw_only=True)
class Sram:
    """On-chip SRAM buffers."""

    vector_KiB: float = spec("activation buffer (vectors, scores, partial sums)", unit="KiB", min=0,
                             exclusive_min=True)
    param_KiB: float = spec("parameter buffer (LayerNorm gains/biases, linear biases)", unit="KiB", min=0,
                            exclusive_min=True)


@dataclass(frozen=True, kw_only=True)
class Link:
    """ASIC-to-PIM interface: one GDDR6 channel interface per PIM channel, used in parallel."""

    GBps_per_channel: float = spec("bandwidth of one channel's interface", unit="GB/s", min=0, exclusive_min=True)
    latency_ns: float = spec("one-way latency (PHY, controller pipeline, flight)", unit="ns", min=0)


@dataclass(frozen=True, kw_only=True)
class AsicSpec:
    """The PIM-GPT ASIC."""

    name: str = spec("preset name", default="custom")
    technology: str = spec("process (documentation only)", default="")
    clock_MHz: float = spec("ASIC clock (the paper sweeps 1000 down to 100)", unit="MHz", min=0, exclusive_min=True)
    lanes: int = spec("BF16 vector lanes", min=1)
    issue: Literal["chained", "single"] = spec(
        "chained: each lane chains the operations of a pass (a function pipeline; one element per lane "
        "per cycle); single: single-issue SIMD (one operation per lane per cycle, op-major)",
        default="chained")
    latency_cycles: OpLatency = spec("pipeline depth per operation class")
    instruction_issue_cycles: int = spec("cycles to fetch and decode one instruction", unit="cycles", min=0,
                                         default=1)
    exp_taylor_degree: int = spec("degree of the Taylor polynomial for exp (softmax)", min=1)
    recip_newton_iterations: int = spec("Newton-Raphson iterations of the reciprocal (softmax)", min=0)
    rsqrt_newton_iterations: int = spec("Newton iterations of the fast inverse square root (LayerNorm)", min=0)
    gelu_tanh_degree: int = spec("degree of the odd polynomial for tanh in GELU (odd)", min=1)
    sram: Sram = spec("SRAM buffers")
    link: Link = spec("ASIC-to-PIM link")
    params: Literal["fetch", "resident"] = spec(
        "where LayerNorm and bias parameters live: fetch (PIM DRAM, read once per layer) or resident "
        "(all on chip; needs sram.param_KiB for all layers)", default="fetch")
    energy_table: str = spec("energy table (preset) with the asic.* and link.* entries", default="pim_gpt_asic")

    def validate(self, file: str | None, path: str) -> None:
        if self.gelu_tanh_degree % 2 == 0:
            raise InputError(file, field_path(path, "gelu_tanh_degree"),
                             f"got {self.gelu_tanh_degree}; expected an odd degree (tanh is odd)")

    @property
    def period_ps(self) -> int:
        """Clock period, rounded to an integer number of picoseconds."""
        return max(1, round(1e6 / self.clock_MHz))

    def cycles_to_ps(self, cycles: int) -> int:
        return int(cycles) * self.period_ps

    def link_bytes_per_ns(self, channels: int) -> float:
        """Aggregate link bandwidth over `channels` interfaces (GB/s = B/ns)."""
        return self.link.GBps_per_channel * channels


def load_asic(value: Any = "pim_gpt_asic", file: str | None = None, path: str = "asic") -> AsicSpec:
    """An AsicSpec from a preset name or a mapping `{preset: NAME, <field>: override, ...}` (nested
    overrides merge into the preset; without `preset`, into `pim_gpt_asic`). Errors name `file` and
    the dotted field path under `path`."""
    if isinstance(value, AsicSpec):
        return value
    value = preset_or_mapping("asic", value, file=file, path=path, default="pim_gpt_asic")
    return build(AsicSpec, value, file=file, path=path)
