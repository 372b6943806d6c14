"""The discrete-event engine: integer picosecond time, one heap, one ordering key.

Events are ordered by (tick_ps, priority, seq): equal ticks run lower priority first, then in the
order they were scheduled, so runs are deterministic. Scheduling in the past is an error.
"""

from __future__ import annotations

import heapq
from typing import Any, Callable


class SimulationError(RuntimeError):
    """An internal inconsistency in a simulation (exit code 1 at the CLI)."""


class Engine:
    def __init__(self) -> None:
        self.now_ps: int = 0
        self._heap: list[tuple[int, int, int, Callable[..., Any], tuple]] = []
        self._seq = 0
        self.events_run = 0

    def schedule(self, tick_ps: int, fn: Callable[..., Any], *args: Any, priority: int = 0) -> None:
        """Run `fn(*args)` at absolute time `tick_ps` (an int, not before now)."""
        if not isinstance(tick_ps, int):
            raise SimulationError(f"event time must be an integer number of ps, got {tick_ps!r}")
        if tick_ps < self.now_ps:
            raise SimulationError(f"event scheduled in the past: {tick_ps} ps < now {self.now_ps} ps")
        heapq.heappush(self._heap, (tick_ps, priority, self._seq, fn, args))
        self._seq += 1

    def after(self, delay_ps: int, fn: Callable[..., Any], *args: Any, priority: int = 0) -> None:
        self.schedule(self.now_ps + delay_ps, fn, *args, priority=priority)

    def peek(self) -> int | None:
        """Time of the next event, or None when idle."""
        return self._heap[0][0] if self._heap else None

    def run(self, until_ps: int | None = None) -> int:
        """Run events in order (those at or before `until_ps` if given); return the final time."""
        heap = self._heap
        while heap and (until_ps is None or heap[0][0] <= until_ps):
            tick, _, _, fn, args = heapq.heappop(heap)
            self.now_ps = tick
            self.events_run += 1
            fn(*args)
        if until_ps is not None and until_ps > self.now_ps:
            self.now_ps = until_ps
        return self.now_ps


class Clock:
    """A clocked block: converts its cycles to picoseconds."""

    def __init__(self, period_ps: int):
        if period_ps <= 0:
            raise SimulationError(f"clock period must be positive, got {period_ps}")
        self.period_ps = int(period_ps)

    def cycles_to_ps(self, cycles: int) -> int:
        return int(cycles) * self.period_ps

    def ps_to_cycles_ceil(self, ps: int) -> int:
        return -(-int(ps) // self.period_ps)

    def next_edge_ps(self, ps: int) -> int:
        """The first clock edge at or after `ps`."""
        return self.ps_to_cycles_ceil(ps) * self.period_ps
