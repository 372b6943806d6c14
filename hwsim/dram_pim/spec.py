"""DRAM device description: organisation, JEDEC timing (in command-clock cycles), controller
settings and address mapping. Built strictly from YAML (a preset or a `--spec` file)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

from hwsim.config import build, deep_merge, field_path, load_yaml, spec
from hwsim.errors import InputError
from hwsim.presets import load_preset, preset_payload

ADDRESS_FIELDS = ("row", "bank", "bankgroup", "rank", "column", "channel")
NAMED_MAPPINGS = {
    # Named bit orders, MSB to LSB above the burst offset (Ramulator 2 naming).
    "RoBaRaCoCh": ("row", "bank", "bankgroup", "rank", "column", "channel"),
    "RoCoBaRaCh": ("row", "column", "bank", "bankgroup", "rank", "channel"),
    "ChRaBaRoCo": ("channel", "rank", "bankgroup", "bank", "row", "column"),
    "RoRaBaChCo": ("row", "rank", "bank", "bankgroup", "channel", "column"),
}


@dataclass(frozen=True, kw_only=True)
class Organization:
    """How one device is organised (per channel unless stated)."""

    channels: int = spec("independent channels (each has its own controller and buses)", min=1)
    ranks: int = spec("ranks per channel", min=1, default=1)
    bankgroups: int = spec("bank groups per rank", min=1)
    banks_per_group: int = spec("banks per bank group", min=1)
    rows: int = spec("rows per bank", min=1)
    columns: int = spec("columns per row, counted in bursts (column commands)", min=1)
    burst_bytes: int = spec("bytes moved by one RD/WR burst", unit="B", min=1)

    @property
    def banks_per_rank(self) -> int:
        return self.bankgroups * self.banks_per_group

    @property
    def banks_total(self) -> int:
        return self.channels * self.ranks * self.banks_per_rank

    @property
    def row_bytes(self) -> int:
        return self.columns * self.burst_bytes

    @property
    def capacity_bytes(self) -> int:
        return self.banks_total * self.rows * self.row_bytes


@dataclass(frozen=True, kw_only=True)
class Timing:
    """JEDEC timing parameters in command-clock cycles (`tCK_ps` is the clock period)."""

    tCK_ps: int = spec("command clock period", unit="ps", min=1)
    nBL: int = spec("data-bus cycles of one burst", unit="cycles", min=1)
    nCL: int = spec("read latency: RD to first data", unit="cycles", min=1)
    nCWL: int = spec("write latency: WR to first data", unit="cycles", min=0)
    nRCD_RD: int = spec("ACT to RD, same bank", unit="cycles", min=1)
    nRCD_WR: int = spec("ACT to WR, same bank", unit="cycles", min=1)
    nRP: int = spec("PRE to ACT, same bank", unit="cycles", min=1)
    nRAS: int = spec("ACT to PRE, same bank", unit="cycles", min=1)
    nRC: int = spec("ACT to ACT, same bank", unit="cycles", min=1)
    nWR: int = spec("write recovery: end of write data to PRE", unit="cycles", min=1)
    nRTP: int = spec("RD to PRE, same bank", unit="cycles", min=1)
    nCCD_S: int = spec("column to column, different bank group", unit="cycles", min=1)
    nCCD_L: int = spec("column to column, same bank group", unit="cycles", min=1)
    nRRD_S: int = spec("ACT to ACT, different bank group", unit="cycles", min=1)
    nRRD_L: int = spec("ACT to ACT, same bank group", unit="cycles", min=1)
    nWTR_S: int = spec("end of write data to RD, different bank group", unit="cycles", min=0)
    nWTR_L: int = spec("end of write data to RD, same bank group", unit="cycles", min=0)
    nFAW: int = spec("rolling window holding at most four ACTs per rank (0: no window)", unit="cycles", min=0)
    nRFC: int = spec("all-bank refresh cycle time", unit="cycles", min=1)
    nREFI: int = spec("average refresh interval", unit="cycles", min=1)
    nRFCpb: int = spec("per-bank refresh cycle time (0: the standard has no per-bank refresh)",
                       unit="cycles", min=0, default=0)
    nRTW: int = spec("extra read-to-write bus turnaround beyond nCL+nBL-nCWL", unit="cycles", min=0, default=2)
    nRTRS: int = spec("rank-to-rank switch: extra data-bus cycles between a read burst, or a write burst, "
                      "and a read burst of another rank of the channel", unit="cycles", min=0, default=0)
    # PIM extensions (AiM-style all-bank operation); ignored by plain DRAM traffic.
    nRCD_MAC: int = spec("ACT to all-bank MAC (0: use nRCD_RD)", unit="cycles", min=0, default=0)
    nMAC_RES: int = spec("last MAC to MAC-result read (MAC pipeline drain)", unit="cycles", min=0, default=0)
    nGB_MAC: int = spec("extra cycles after a global-buffer write's data has landed (nCWLREG + nBL) before a MAC "
                        "may read it", unit="cycles", min=0, default=0)
    nCLREG: int = spec("read latency of the MAC-result registers (RD_MAC): issue to data on the bus, in place of nCL",
                       unit="cycles", min=0, default=0)
    nCWLREG: int = spec("write latency of the global-buffer / MAC-register path (WR_GB, WR_BIAS), in place of nCWL",
                        unit="cycles", min=0, default=0)
    nRMW: int = spec("extra bank busy time of a near-memory read-modify-write update", unit="cycles",
                     min=0, default=0)

    @property
    def rcd_mac(self) -> int:
        return self.nRCD_MAC or self.nRCD_RD

    def validate(self, file, path):
        # tRAS and tRP are each rounded up to whole cycles, so nRC may sit one cycle under their sum.
        if self.nRC < self.nRAS + self.nRP - 1:
            raise InputError(file, field_path(path, "nRC"),
                             f"got {self.nRC}; expected nRC >= nRAS + nRP - 1 = {self.nRAS + self.nRP - 1} "
                             "(one cycle of rounding slack)")
        if self.nREFI <= self.nRFC:
            raise InputError(file, field_path(path, "nREFI"),
                             f"got {self.nREFI}; expected nREFI > nRFC = {self.nRFC}")
        if self.nRAS < self.nRCD_RD:
            raise InputError(file, field_path(path, "nRAS"),
                             f"got {self.nRAS}; expected nRAS >= nRCD_RD = {self.nRCD_RD}")


@dataclass(frozen=True, kw_only=True)
class Controller:
    """Memory-controller settings (one controller per channel)."""

    scheduler: Literal["frfcfs", "fcfs", "ready_oldest"] = spec(
        "request scheduler: frfcfs (ready row hits first, then the oldest ready), fcfs (oldest only) or "
        "ready_oldest (the oldest ready command, no row-hit preference: Ramulator 2's FRFCFS)", default="frfcfs")
    page_policy: Literal["open", "closed", "closed_always"] = spec(
        "open: rows stay open; closed: auto-precharge when no queued request hits the row; "
        "closed_always: every access auto-precharges (DRAMSim3 CLOSE_PAGE)", default="open")
    read_queue: int = spec("read queue entries per channel", min=1, default=32)
    write_queue: int = spec("write queue entries per channel", min=1, default=32)
    write_high_watermark: float = spec("fraction of the write queue that starts write draining",
                                       min=0.0, default=0.8)
    write_low_watermark: float = spec("fraction of the write queue that ends write draining",
                                      min=0.0, default=0.2)
    refresh: Literal["all_bank", "none"] = spec("refresh policy: REFab every nREFI per rank, or none",
                                                default="all_bank")
    frontend_clock_ratio: int = spec("load/store (Ramulator 2) trace front end: requests offered per "
                                     "memory_clock_ratio memory cycles (Ramulator 2's frontend clock_ratio)",
                                     min=1, default=1)
    memory_clock_ratio: int = spec("load/store (Ramulator 2) trace front end: memory cycles per "
                                   "frontend_clock_ratio offers (Ramulator 2's memory clock_ratio)", min=1, default=1)

    def validate(self, file, path):
        if not (self.write_low_watermark < self.write_high_watermark <= 1.0):
            raise InputError(file, field_path(path, "write_low_watermark"),
                             f"got low={self.write_low_watermark}, high={self.write_high_watermark}; "
                             "expected 0 <= low < high <= 1")


@dataclass(frozen=True, kw_only=True)
class DramSpec:
    """A complete DRAM description."""

    organization: Organization = spec("device organisation")
    timing: Timing = spec("timing parameters in command-clock cycles")
    controller: Controller = spec("controller settings", default_factory=Controller)
    address_mapping: tuple[str, ...] = spec(
        "address bit order MSB to LSB above the burst offset: a list of row, bank, bankgroup, rank, "
        "column, channel, or a named scheme (" + ", ".join(NAMED_MAPPINGS) + ")",
        default=NAMED_MAPPINGS["RoBaRaCoCh"])
    name: str = spec("preset or file name", default="custom")

    def validate(self, file, path):
        fields = self.address_mapping
        if sorted(fields) != sorted(ADDRESS_FIELDS):
            raise InputError(file, field_path(path, "address_mapping"),
                             f"got {list(fields)!r}; expected each of {', '.join(ADDRESS_FIELDS)} exactly once "
                             f"or one of {', '.join(NAMED_MAPPINGS)}")
        for fname in ("channels", "ranks", "bankgroups", "banks_per_group", "rows", "columns", "burst_bytes"):
            v = getattr(self.organization, fname)
            if v & (v - 1):
                raise InputError(file, field_path(path, f"organization.{fname}"),
                                 f"got {v}; expected a power of two (address bits are sliced)")

    @property
    def tCK_ps(self) -> int:
        return self.timing.tCK_ps

    @property
    def peak_bandwidth_GBps(self) -> float:
        """Data-bus peak of all channels, GB/s (1e9 B/s)."""
        o, t = self.organization, self.timing
        return o.channels * o.burst_bytes / (t.nBL * t.tCK_ps * 1e-3)


def _normalise(raw: dict, file: str | None) -> dict:
    """Expand shorthands: `nRCD` for both nRCD_RD and nRCD_WR; named address mappings."""
    raw = dict(raw)
    timing = raw.get("timing")
    if isinstance(timing, dict) and "nRCD" in timing:
        timing = dict(timing)
        value = timing.pop("nRCD")
        timing.setdefault("nRCD_RD", value)
        timing.setdefault("nRCD_WR", value)
        raw["timing"] = timing
    mapping = raw.get("address_mapping")
    if isinstance(mapping, str):
        if mapping not in NAMED_MAPPINGS:
            raise InputError(file, "address_mapping",
                             f"got {mapping!r}; expected one of {', '.join(NAMED_MAPPINGS)} or a list")
        raw["address_mapping"] = list(NAMED_MAPPINGS[mapping])
    return raw


def dram_spec_from_dict(raw: dict, *, file: str | None = None, path: str = "") -> DramSpec:
    if not isinstance(raw, dict):
        raise InputError(file, path, f"got {raw!r}; expected a mapping")
    return build(DramSpec, _normalise(preset_payload(raw), file), file=file, path=path)


def load_dram_spec(*, preset: str | None = None, spec_file: str | None = None,
                   overrides: dict | None = None, file: str | None = None, path: str = "") -> DramSpec:
    """Resolve a DRAM spec: preset or spec file, then nested overrides, then checks."""
    if (preset is None) == (spec_file is None):
        raise InputError(file, path or "dram", "give exactly one of a preset name or a spec file")
    if preset is not None:
        raw = preset_payload(load_preset("dram", preset, file=file, path=field_path(path, "preset")))
        raw.setdefault("name", preset)
        src = file
    else:
        raw = load_yaml(spec_file)
        if not isinstance(raw, dict):
            raise InputError(spec_file, "", "expected a mapping at the top level")
        raw = preset_payload(raw)
        src = spec_file
    if overrides:
        raw = deep_merge(_normalise(raw, src), _normalise(overrides, src))
    return dram_spec_from_dict(raw, file=src, path=path)


def with_channels(dspec: DramSpec, channels: int) -> DramSpec:
    """A copy of `dspec` with a different channel count."""
    return dataclasses.replace(dspec, organization=dataclasses.replace(dspec.organization, channels=channels))
