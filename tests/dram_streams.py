"""Random request streams shared by the property tests and the numba/Python twin check."""

import numpy as np

from conftest import make_spec

CONFIGS = [
    {},
    {"controller__page_policy": "closed"},
    {"controller__scheduler": "fcfs"},
    {"controller__read_queue": 4, "controller__write_queue": 4},
    {"timing__nREFI": 300, "timing__nRFC": 40},
    {"controller__scheduler": "ready_oldest"},
    {"controller__page_policy": "closed_always"},
    {"timing__nRTRS": 2},
    {"controller__frontend_clock_ratio": 8, "controller__memory_clock_ratio": 3,
     "controller__read_queue": 4, "controller__write_queue": 4},
]


def random_stream(seed: int, n: int):
    """(spec, addresses, is_write, arrive or None) for one seed."""
    rng = np.random.default_rng(seed)
    spec = make_spec(**CONFIGS[seed % len(CONFIGS)])
    o = spec.organization
    hot_rows = rng.integers(0, o.rows, 4)
    footprint = o.capacity_bytes // o.burst_bytes
    addrs = rng.integers(0, footprint, n).astype(np.uint64) * np.uint64(o.burst_bytes)
    # Mix in row locality: half the requests reuse a few hot rows.
    from hwsim.mapping.address import decode, encode
    f = decode(spec, addrs)
    local = rng.random(n) < 0.5
    f["row"] = np.where(local, hot_rows[rng.integers(0, 4, n)], f["row"])
    addrs = encode(spec, f)
    writes = rng.random(n) < rng.uniform(0, 0.6)
    # Both front ends for every config (seed // len(CONFIGS) alternates them).
    arrive = None if (seed // len(CONFIGS)) % 2 else np.sort(rng.integers(0, 4 * n, n))
    return spec, addrs, writes, arrive
