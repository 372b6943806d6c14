"""T3 system parameters: frozen dataclasses built strictly from the workload's `system:` section.

Defaults are the paper's configuration (T3 paper Table 1 as reported in shared/reference/t3.md
section 3.2) where it states one, and documented choices (docs/t3.md) where it does not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from hwsim.config import spec
from hwsim.errors import InputError


@dataclass(frozen=True, kw_only=True)
class GpuParams:
    """The producer GPU (paper: 80 CUs at 1.4 GHz, 16 MB L2)."""

    cus: int = spec("compute units", min=1, default=80)
    clock_GHz: float = spec("CU clock", unit="GHz", min=0.0, exclusive_min=True, default=1.4)
    flops_per_cycle_per_cu: int = spec("FP16 matrix FLOP per cycle per CU (V100-class tensor cores: "
                                       "8 x 64 FMA x 2)", unit="FLOP/cycle", min=1, default=1024)
    compute_efficiency: float = spec("fraction of the matrix peak a WG k-step sustains", min=0.0,
                                     exclusive_min=True, default=0.8)
    wg_per_cu: int = spec("GEMM workgroups resident per CU (they share the CU's matrix units)", min=1, default=2)
    l2_MB: float = spec("L2 capacity (MiB)", unit="MiB", min=0.0, default=16.0)
    l2_hit_latency_ns: float = spec("L2 hit latency", unit="ns", min=0.0, default=150.0)
    mem_latency_ns: float = spec("latency a DRAM read adds beyond the DRAM itself (L2 miss path, "
                                 "interconnect)", unit="ns", min=0.0, default=100.0)
    cu_stream_bytes_per_cycle: int = spec("bytes per cycle one CU moves in a streaming collective kernel",
                                          unit="B/cycle", min=1, default=64)

    def validate(self, file, path):
        if self.compute_efficiency > 1.0:
            raise InputError(file, f"{path}.compute_efficiency", f"got {self.compute_efficiency}; expected <= 1")


@dataclass(frozen=True, kw_only=True)
class GemmParams:
    """Workgroup tiling of the producer GEMM."""

    tile_m: int = spec("WG tile rows (tokens)", min=1, default=128)
    tile_n: int = spec("WG tile columns (output features)", min=16, default=128)
    tile_k: int = spec("k-step depth", min=1, default=32)
    raster_group_m: int = spec("tiles of a stage are dispatched in groups of this many tile rows, "
                               "column-major inside a group (CUTLASS/rocBLAS-style swizzle; 1: row-major)",
                               min=1, default=8)
    prefetch_ksteps: int = spec("k-steps whose loads may be in flight beyond the one computing "
                                "(1: double buffering)", min=1, default=1)
    wg_launch_ns: float = spec("gap between a WG finishing and the next starting on its slot", unit="ns",
                               min=0.0, default=0.0)


@dataclass(frozen=True, kw_only=True)
class DramParams:
    """HBM (paper: HBM2 at 1 TB/s)."""

    preset: str = spec("DRAM preset (channels are set by `channels`)", default="HBM2_2Gbps")
    channels: int = spec("channels (HBM2 pseudo-channels) per GPU; 64 x 16 GB/s = 1 TB/s", min=1, default=64)
    overrides: dict = spec("nested overrides of the DRAM spec, e.g. {timing: {nRMW: 4}}", default_factory=dict)
    queue_entries: int = spec("DRAM request queue entries per channel (Accel-Sim FR-FCFS: 64)", min=1, default=64)


@dataclass(frozen=True, kw_only=True)
class LinkParams:
    """Ring interconnect (paper: ring, 150 GB/s bidirectional, 500 ns link latency)."""

    bandwidth_GBps: float = spec("bandwidth per direction of one ring link (1 GB = 1e9 B); the ring "
                                 "RS/AG uses one direction", unit="GB/s", min=0.0, exclusive_min=True,
                                 default=150.0)
    latency_ns: float = spec("link latency (last byte out to arrival)", unit="ns", min=0.0, default=500.0)
    rx_buffer_KiB: int = spec("receiver buffer (credits) per link", unit="KiB", min=1, default=1024)


@dataclass(frozen=True, kw_only=True)
class TrackerParams:
    """T3 tracker (paper: 256 entries, ~19 KB)."""

    entries: int = spec("table entries (per memory controller or per GPU, see placement)", min=1, default=256)
    placement: Literal["per_mc", "per_gpu"] = spec(
        "per_mc: one table at each memory controller (the paper places the tracker at the MC); every "
        "output tile is interleaved over all channels, so each MC needs an entry per live tile and a GPU "
        "tracks up to `entries` live tiles; per_gpu: one table of `entries` tiles for the whole GPU",
        default="per_mc")
    when_full: Literal["fallback"] = spec("what a tile does when the table is full: fall back to a "
                                          "per-stage trigger (see docs/t3.md)", default="fallback")


@dataclass(frozen=True, kw_only=True)
class DmaParams:
    """DMA engines (not modelled in detail by the paper)."""

    engines: int = spec("DMA engines per GPU", min=1, default=4)
    max_outstanding_KiB: int = spec("read bytes one engine keeps in flight (all channels together)",
                                    unit="KiB", min=1, default=64)
    tx_limit_KiB: int = spec("an engine starts a descriptor only while the link holds fewer bytes "
                             "than this not yet sent", unit="KiB", min=1, default=1024)
    trigger_latency_ns: float = spec("from the tracker firing to the engine seeing the descriptor",
                                     unit="ns", min=0.0, default=50.0)


@dataclass(frozen=True, kw_only=True)
class McaParams:
    """T3-MCA arbitration (paper section 4.5: compute first, communication under a threshold set
    from stage-1 memory intensity, with a starvation limit)."""

    threshold: int = spec("fixed DRAM-queue occupancy threshold for communication (-1: derive it "
                          "from stage-1 DRAM utilisation u as round(queue x (1 - u)))", min=-1, default=-1)
    min_threshold: int = spec("lower bound of the derived threshold", min=1, default=4)
    starvation_ns: float = spec("a communication request waiting this long is admitted and served "
                                "like compute", unit="ns", min=0.0, default=2000.0)
    compute_first_in_queue: bool = spec("also rank compute above communication when picking commands",
                                        default=True)


@dataclass(frozen=True, kw_only=True)
class CollectiveParams:
    """Baseline ring collectives as a CU kernel (RCCL-like)."""

    cus: int = spec("CUs (workers) the RS/AG kernel uses; each handles one slice at a time", min=1, default=16)
    slice_KiB: int = spec("pipelining slice of a ring step", unit="KiB", min=1, default=256)
    kernel_launch_ns: float = spec("gap added between the Sequential kernels (GEMM, RS, AG)", unit="ns",
                                   min=0.0, default=0.0)


@dataclass(frozen=True, kw_only=True)
class SimParams:
    """How to simulate."""

    gpus: Literal["symmetric", "explicit"] = spec("symmetric: one GPU whose neighbours behave as it does "
                                                   "(the paper's method); explicit: all TP GPUs", default="symmetric")
    channels_simulated: int = spec("channels per GPU simulated (the rest carry the same traffic by "
                                   "symmetry); the total must be a multiple", min=1, default=1)
    refresh: bool = spec("model DRAM refresh", default=True)


@dataclass(frozen=True, kw_only=True)
class SystemParams:
    gpu: GpuParams = spec("GPU", default_factory=GpuParams)
    gemm: GemmParams = spec("GEMM tiling", default_factory=GemmParams)
    dram: DramParams = spec("HBM", default_factory=DramParams)
    link: LinkParams = spec("ring links", default_factory=LinkParams)
    tracker: TrackerParams = spec("tracker", default_factory=TrackerParams)
    dma: DmaParams = spec("DMA engines", default_factory=DmaParams)
    mca: McaParams = spec("MCA arbitration", default_factory=McaParams)
    collective: CollectiveParams = spec("baseline collectives", default_factory=CollectiveParams)
    sim: SimParams = spec("simulation method", default_factory=SimParams)
