"""Energy as a separate pass: action counts x an energy table.

An energy table is a preset (`hwsim/presets/energy/<name>.yaml`) with `description`, `source`
and `entries`: action name -> {value, unit, source}. Units: `pJ` (per action), `pJ/bit`
(per bit moved; the count is in bits) and `mW` (a power drawn for a time; the count is in ns,
and mW x ns = pJ). A new table never needs a new simulation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from hwsim.config import build, spec
from hwsim.errors import InputError
from hwsim.presets import load_preset

UNITS = ("pJ", "pJ/bit", "mW")


@dataclass(frozen=True, kw_only=True)
class EnergyEntry:
    """One action's energy (or one component's power)."""

    value: float = spec("energy per action (pJ), per bit (pJ/bit) or power (mW)", min=0.0)
    unit: Literal["pJ", "pJ/bit", "mW"] = spec("unit of value")
    source: str = spec("where the number comes from")


@dataclass(frozen=True)
class EnergyTable:
    name: str
    entries: dict[str, EnergyEntry]

    def breakdown_pJ(self, counts: dict[str, float]) -> dict[str, float]:
        """pJ per action: counts are events (pJ), bits (pJ/bit) or nanoseconds (mW).
        Every counted action must have an entry; actions with zero count are left out."""
        missing = sorted(k for k, v in counts.items() if v and k not in self.entries)
        if missing:
            raise InputError(f"<energy table {self.name}>", "entries",
                             f"no entry for action(s) {', '.join(missing)}")
        return {k: float(v) * self.entries[k].value for k, v in sorted(counts.items()) if v}

    def total_pJ(self, counts: dict[str, float]) -> float:
        return sum(self.breakdown_pJ(counts).values())


def energy_table_from_dict(raw: dict, name: str, file: str | None = None) -> EnergyTable:
    entries = raw.get("entries")
    if not isinstance(entries, dict) or not entries:
        raise InputError(file, "entries", "expected a mapping of action -> {value, unit, source}")
    return EnergyTable(name, {str(k): build(EnergyEntry, v, file=file, path=f"entries.{k}")
                              for k, v in entries.items()})


def load_energy_table(name: str, *, file: str | None = None, path: str = "energy") -> EnergyTable:
    raw = load_preset("energy", name, file=file, path=path)
    return energy_table_from_dict(raw, name, file=f"<preset energy/{name}>")
