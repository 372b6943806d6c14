"""Run random streams and print their command traces as JSON (run with NUMBA_DISABLE_JIT=1 for
the pure-Python twin)."""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from dram_streams import random_stream  # noqa: E402

from hwsim.dram_pim.controller import simulate  # noqa: E402


def traces(seeds, n):
    out = {}
    for seed in seeds:
        spec, addrs, writes, arrive = random_stream(seed, n)
        res = simulate(spec, addrs, writes, arrive, record=True)
        log = res.commands
        out[str(seed)] = [log.tick.tolist(), log.cmd.tolist(), log.bank.tolist(), log.row.tolist(),
                          res.done_tick.tolist()]
    return out


if __name__ == "__main__":
    seeds = [int(s) for s in sys.argv[1].split(",")]
    print(json.dumps(traces(seeds, int(sys.argv[2]))))
