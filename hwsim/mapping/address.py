"""Address mapping: flat byte addresses to (channel, rank, bankgroup, bank, row, column) by
slicing bits in the order the spec names (MSB to LSB above the burst offset)."""

from __future__ import annotations

import numpy as np

from hwsim.dram_pim.spec import DramSpec

_FIELD_SIZE = {
    "channel": lambda o: o.channels, "rank": lambda o: o.ranks, "bankgroup": lambda o: o.bankgroups,
    "bank": lambda o: o.banks_per_group, "row": lambda o: o.rows, "column": lambda o: o.columns,
}


def field_bits(dspec: DramSpec) -> dict[str, int]:
    o = dspec.organization
    return {name: int(size(o)).bit_length() - 1 for name, size in _FIELD_SIZE.items()}


def decode(dspec: DramSpec, addresses: np.ndarray) -> dict[str, np.ndarray]:
    """Split byte addresses into address fields (int64 arrays). Bits above the device capacity
    wrap around (they are ignored), as in Ramulator 2 and DRAMSim3."""
    o = dspec.organization
    a = np.asarray(addresses, dtype=np.uint64) >> np.uint64(o.burst_bytes.bit_length() - 1)
    bits = field_bits(dspec)
    out = {}
    for name in reversed(dspec.address_mapping):  # LSB first
        nb = bits[name]
        out[name] = (a & np.uint64((1 << nb) - 1)).astype(np.int64)
        a = a >> np.uint64(nb)
    return out


def encode(dspec: DramSpec, fields: dict[str, np.ndarray | int]) -> np.ndarray:
    """Inverse of `decode`: byte addresses of the given fields (missing fields are 0)."""
    o = dspec.organization
    bits = field_bits(dspec)
    a = np.zeros(np.broadcast(*[np.asarray(v) for v in fields.values()]).shape, dtype=np.uint64)
    for name in dspec.address_mapping:  # MSB first
        a = (a << np.uint64(bits[name])) | np.asarray(fields.get(name, 0), dtype=np.uint64)
    return a << np.uint64(o.burst_bytes.bit_length() - 1)
