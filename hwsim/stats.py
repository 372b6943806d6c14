"""Statistics registered under dotted scopes: counters with units and time-weighted levels.

`Stats.to_dict()` gives flat, sorted `scope.name -> value` pairs with no wall-clock values, so
`stats.json` files compare byte for byte.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Counter:
    unit: str
    doc: str = ""
    value: float = 0

    def add(self, amount: float = 1) -> None:
        self.value += amount


@dataclass
class Level:
    """A time-weighted level (e.g. queue occupancy): tracks its time integral and maximum."""

    unit: str
    doc: str = ""
    value: float = 0
    max: float = 0
    integral: float = 0
    last_ps: int = 0

    def set(self, now_ps: int, value: float) -> None:
        self.integral += self.value * (now_ps - self.last_ps)
        self.last_ps = now_ps
        self.value = value
        self.max = max(self.max, value)

    def mean(self, end_ps: int) -> float:
        total = self.integral + self.value * (end_ps - self.last_ps)
        return total / end_ps if end_ps > 0 else 0.0


class Stats:
    """A registry of counters and levels keyed by dotted scope."""

    def __init__(self) -> None:
        self._items: dict[str, Counter | Level] = {}

    def counter(self, scope: str, name: str, unit: str, doc: str = "") -> Counter:
        return self._register(f"{scope}.{name}" if scope else name, Counter(unit, doc))

    def level(self, scope: str, name: str, unit: str, doc: str = "") -> Level:
        return self._register(f"{scope}.{name}" if scope else name, Level(unit, doc))

    def _register(self, key, item):
        if key in self._items:
            raise KeyError(f"stat {key!r} registered twice")
        self._items[key] = item
        return item

    def __getitem__(self, key: str) -> Counter | Level:
        return self._items[key]

    def to_dict(self, end_ps: int | None = None) -> dict[str, float]:
        out: dict[str, float] = {}
        for key in sorted(self._items):
            item = self._items[key]
            if isinstance(item, Counter):
                out[key] = item.value
            else:
                out[f"{key}.max"] = item.max
                if end_ps is not None:
                    out[f"{key}.mean"] = item.mean(end_ps)
        return out

    def units(self) -> dict[str, str]:
        return {k: v.unit for k, v in sorted(self._items.items())}
