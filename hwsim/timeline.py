"""Chrome / Perfetto trace writer (the JSON "Trace Event Format").

Tracks are (process, thread) names; spans are complete events ("X"), counters are "C" events.
Long runs stay bounded: only events inside [window_start_ps, window_end_ps] are kept, and at most
`max_events` of them (the rest are counted in the trace's metadata as dropped).
"""

from __future__ import annotations

import json
from pathlib import Path

from hwsim.outputs import write_atomic


class Timeline:
    def __init__(self, *, window_start_ps: int = 0, window_end_ps: int | None = None,
                 max_events: int = 500_000):
        self.window = (window_start_ps, window_end_ps)
        self.max_events = max_events
        self.events: list[dict] = []
        self.dropped = 0
        self._pids: dict[str, int] = {}
        self._tids: dict[tuple[str, str], int] = {}

    def _ids(self, process: str, thread: str) -> tuple[int, int]:
        pid = self._pids.setdefault(process, len(self._pids) + 1)
        tid = self._tids.setdefault((process, thread), len(self._tids) + 1)
        return pid, tid

    def _keep(self, start_ps: int, end_ps: int) -> bool:
        lo, hi = self.window
        if end_ps < lo or (hi is not None and start_ps > hi):
            return False
        if len(self.events) >= self.max_events:
            self.dropped += 1
            return False
        return True

    def span(self, process: str, thread: str, name: str, start_ps: int, dur_ps: int, **args) -> None:
        if not self._keep(start_ps, start_ps + dur_ps):
            return
        pid, tid = self._ids(process, thread)
        ev = {"name": name, "ph": "X", "pid": pid, "tid": tid, "ts": start_ps / 1e6, "dur": max(dur_ps, 0) / 1e6}
        if args:
            ev["args"] = args
        self.events.append(ev)

    def counter(self, process: str, name: str, t_ps: int, **values) -> None:
        if not self._keep(t_ps, t_ps):
            return
        pid, _ = self._ids(process, name)
        self.events.append({"name": name, "ph": "C", "pid": pid, "ts": t_ps / 1e6, "args": values})

    def to_json(self) -> str:
        meta = []
        for process, pid in self._pids.items():
            meta.append({"name": "process_name", "ph": "M", "pid": pid, "args": {"name": process}})
        for (process, thread), tid in self._tids.items():
            meta.append({"name": "thread_name", "ph": "M", "pid": self._pids[process], "tid": tid,
                         "args": {"name": thread}})
        doc = {"traceEvents": meta + self.events, "displayTimeUnit": "ns",
               "otherData": {"time_unit": "ts and dur in microseconds", "dropped_events": self.dropped}}
        return json.dumps(doc, separators=(",", ":")) + "\n"

    def write(self, path: str | Path) -> None:
        write_atomic(path, self.to_json())


def dram_command_timeline(dspec, log, timeline: Timeline | None = None) -> Timeline:
    """Each issued command as a one-cycle span on its channel's bank track; rows open as spans."""
    from hwsim.dram_pim.commands import Cmd

    tl = timeline or Timeline()
    tck = dspec.timing.tCK_ps
    o = dspec.organization
    opened: dict[int, tuple[int, int]] = {}
    for t, c, b, row in zip(log.tick.tolist(), log.cmd.tolist(), log.bank.tolist(), log.row.tolist()):
        ch = b // (o.ranks * o.banks_per_rank)
        name = Cmd(c).name
        tl.span(f"channel {ch}", f"bank {b % (o.ranks * o.banks_per_rank)}", name, t * tck, tck)
        if c in (Cmd.ACT, Cmd.ACT_AB):
            opened[b] = (t, row)
        elif c in (Cmd.PRE, Cmd.PREA, Cmd.RDA, Cmd.WRA) and b in opened:
            t0, r = opened.pop(b)
            tl.span(f"channel {ch}", f"bank {b % (o.ranks * o.banks_per_rank)} rows", f"row {r}",
                    t0 * tck, (t - t0) * tck)
    return tl
