"""Request traces of other DRAM simulators: DRAMSim3 (`0x<addr> READ|WRITE <cycle>`) and
Ramulator 2 load/store (`LD 0x<addr>` / `ST 0x<addr>`), auto-detected.

Numbers are read as those simulators read them: a DRAMSim3 address is hex even without `0x`
(it is parsed with `std::hex`) and its cycle decimal; a Ramulator 2 address is hex with `0x`,
else decimal (`std::stoll`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hwsim.errors import InputError

_READ = {"READ", "RD", "R", "LD", "LOAD"}
_WRITE = {"WRITE", "WR", "W", "ST", "STORE"}
FORMATS = ("auto", "dramsim3", "ramulator")


@dataclass
class RequestTrace:
    addresses: np.ndarray       # uint64 byte addresses
    is_write: np.ndarray        # bool
    arrive_cycle: np.ndarray | None  # int64, None for Ramulator traces (offered as fast as accepted)
    format: str


MAX_CYCLE = 1 << 62  # the kernels count cycles in int64 and use 2^62 as "never"


def _int(token: str, file: str, where: str, what: str, base: int = 10) -> int:
    """`token` as an integer: hex with a 0x prefix, else in `base`."""
    try:
        value = int(token, 16) if token[:2].lower() == "0x" else int(token, base)
    except ValueError:
        raise InputError(file, where, f"got {token!r}; expected {what}") from None
    if value < 0:
        raise InputError(file, where, f"got {token!r}; expected a non-negative {what}")
    return value


def detect_format(first_fields: list[str]) -> str:
    if first_fields and first_fields[0].upper() in ("LD", "ST"):
        return "ramulator"
    return "dramsim3"


def read_request_trace(path: str | Path, fmt: str = "auto") -> RequestTrace:
    """Parse a request trace. Blank lines and lines starting with '#' are skipped."""
    file = str(path)
    if fmt not in FORMATS:
        raise InputError("--format", "format", f"got {fmt!r}; expected one of {', '.join(FORMATS)}")
    try:
        lines = Path(path).read_text().splitlines()
    except FileNotFoundError:
        raise InputError(file, "", "file not found") from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as exc:
        raise InputError(file, "", f"cannot read trace ({exc.__class__.__name__})") from None
    addrs, writes, cycles = [], [], []
    for lineno, line in enumerate(lines, 1):
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        if fmt == "auto":
            fmt = detect_format(fields)
        where = f"line {lineno}"
        if fmt == "ramulator":
            if len(fields) != 2:
                raise InputError(file, where, f"got {line.strip()!r}; expected 'LD|ST <address>'")
            op, addr = fields[0].upper(), fields[1]
        else:
            if len(fields) != 3:
                raise InputError(file, where, f"got {line.strip()!r}; expected '0x<address> READ|WRITE <cycle>'")
            addr, op = fields[0], fields[1].upper()
            cycle = _int(fields[2], file, f"{where}.cycle", "integer cycle")
            if cycle >= MAX_CYCLE:
                raise InputError(file, f"{where}.cycle", f"got {cycle}; expected a cycle below 2^62")
            if cycles and cycle < cycles[-1]:
                raise InputError(file, f"{where}.cycle", f"got {cycle}; cycles must not decrease (previous {cycles[-1]})")
            cycles.append(cycle)
        if op in _READ:
            writes.append(False)
        elif op in _WRITE:
            writes.append(True)
        else:
            raise InputError(file, f"{where}.command", f"got {op!r}; expected READ/WRITE (DRAMSim3) or LD/ST (Ramulator)")
        if fmt == "ramulator":  # std::stoll: hex with 0x, else decimal
            addrs.append(_int(addr, file, f"{where}.address", "hex (0x...) or decimal address"))
        else:  # DRAMSim3 reads the address with std::hex: hex with or without 0x
            addrs.append(_int(addr, file, f"{where}.address", "hex address", base=16))
    if not addrs:
        raise InputError(file, "", "trace holds no requests")
    if max(addrs) >= 1 << 64:
        raise InputError(file, "address", "addresses must fit in 64 bits")
    return RequestTrace(np.array(addrs, dtype=np.uint64), np.array(writes, dtype=np.bool_),
                        np.array(cycles, dtype=np.int64) if fmt == "dramsim3" else None,
                        "ramulator" if fmt == "ramulator" else "dramsim3")
