"""Periodic progress lines of a long run (`hwsim run --progress SECONDS`), on stderr.

A simulator loop calls `step(what, done, total)` after each unit of work (a decoded token, a T3
component simulation); nothing is printed unless a reporter is active, and then at most one line
every `every_s` seconds plus one when the last unit is done:

    hwsim: gpt2-small: token 412/1024 (40.2 %), 38.1 s elapsed, about 56.4 s left
"""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager

_active: "_Reporter | None" = None


class _Reporter:
    def __init__(self, name: str, every_s: float, stream):
        self.name, self.every_s, self.stream = name, every_s, stream
        self.t0 = time.monotonic()
        self.last = self.t0

    def step(self, what: str, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self.last < self.every_s and done < total:
            return
        self.last = now
        elapsed = now - self.t0
        line = f"hwsim: {self.name}: {what} {done}/{total} ({100.0 * done / max(total, 1):.1f} %), {elapsed:.1f} s elapsed"
        if 0 < done < total:
            line += f", about {elapsed * (total - done) / done:.1f} s left"
        print(line, file=self.stream, flush=True)


@contextmanager
def reporting(name: str, every_s: float | None, stream=None):
    """Activate progress lines for the enclosed run (no-op when `every_s` is None)."""
    global _active
    if every_s is None:
        yield
        return
    previous, _active = _active, _Reporter(name, float(every_s), stream or sys.stderr)
    try:
        yield
    finally:
        _active = previous


def step(what: str, done: int, total: int) -> None:
    """Report that `done` of `total` units of `what` are finished."""
    if _active is not None:
        _active.step(what, done, total)
