"""Independent DRAM/PIM protocol checker: replays a recorded command trace and reports every
violated timing rule and every illegal bank-state transition.

Independence: this module shares no code with the scheduler. It imports only the spec data
classes (`hwsim.dram_pim.spec`), the *names* of the commands (`Cmd`) and `InputError`; the command
scopes, bank-state requirements, bus directions and every timing rule are written here again,
straight from the rule table in docs/checker.md, in a different shape from the scheduler's:
the scheduler keeps "earliest next issue" deadlines, the checker keeps *histories* (the last
issue tick of every command type per bank, per bank group, per rank and per channel, plus the
last four ACT ticks per rank) and measures every command's gap back to them.

Trace format (CSV, issue order, ticks in command-clock cycles)::

    tick,channel,rank,bankgroup,bank,row,column,command

Public API: `TraceCmd`, `Violation`, `CheckReport`, `read_command_trace`, `write_command_trace`,
`check_trace`, `check_file`, `main` (CLI: ``python -m hwsim.dram_pim.checker TRACE --preset NAME``).
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Iterable, NamedTuple, Sequence

from hwsim.dram_pim.commands import Cmd
from hwsim.dram_pim.spec import DramSpec, load_dram_spec
from hwsim.errors import InputError

HEADER = ("tick", "channel", "rank", "bankgroup", "bank", "row", "column", "command")

# ---------------------------------------------------------------------------------------------
# Command classes, written from the rule table (not from commands.META).
# ---------------------------------------------------------------------------------------------
C = Cmd
RANK_SCOPE = frozenset({C.PREA, C.REFab, C.ACT_AB, C.MAC_AB, C.WR_GB, C.RD_MAC, C.WR_BIAS})
USES_ROW = frozenset({C.ACT, C.ACT_AB, C.RD, C.WR, C.RDA, C.WRA, C.UPD})
USES_COLUMN = frozenset({C.RD, C.WR, C.RDA, C.WRA, C.UPD, C.MAC_AB})

ACTS = (C.ACT, C.ACT_AB)
PRES = (C.PRE, C.PREA)
COL_RD = (C.RD, C.RDA)
COL_WR = (C.WR, C.WRA, C.UPD)
BUS_RD = (C.RD, C.RDA, C.RD_MAC)
BUS_WR = (C.WR, C.WRA, C.UPD, C.WR_GB, C.WR_BIAS)
OPENING = (C.ACT, C.ACT_AB, C.REFab, C.REFpb)

# Levels at which a rule compares two commands.
SAME_BANK, SAME_BG, SAME_RANK, SAME_CHANNEL = "bank", "bankgroup", "rank", "channel"
OTHER_RANKS = "other ranks"  # the previous command went to another rank of the same channel

# History sources used inside the hot loop (index into the per-command tuple of histories).
_H_BANK, _H_BG, _H_RANK, _H_CHAN, _H_SIB = 0, 1, 2, 3, 4

_NEVER = -(1 << 62)  # "no such command yet": every gap from it is huge


def timing_rules(t) -> list[tuple[str, str, tuple, tuple, int]]:
    """The pairwise timing rules as (name, level, prev commands, next commands, minimum gap),
    for a `Timing` `t`. Straight transcription of the table in docs/checker.md."""
    wr_end = t.nCWL + t.nBL  # write data fully on the bus
    rules = [
        # Same bank (a rank-scope command counts as every bank of its rank).
        ("nRCD_RD", SAME_BANK, ACTS, COL_RD, t.nRCD_RD),
        ("nRCD_WR", SAME_BANK, ACTS, COL_WR, t.nRCD_WR),
        ("nRCD_MAC", SAME_BANK, ACTS, (C.MAC_AB,), t.nRCD_MAC if t.nRCD_MAC else t.nRCD_RD),
        ("nRAS", SAME_BANK, ACTS, PRES, t.nRAS),
        ("nRC", SAME_BANK, ACTS, ACTS + (C.REFab, C.REFpb), t.nRC),
        ("nRAS+nRP", SAME_BANK, ACTS, OPENING, t.nRAS + t.nRP),
        ("nRP", SAME_BANK, PRES, OPENING, t.nRP),
        ("nRTP", SAME_BANK, (C.RD, C.MAC_AB), PRES, t.nRTP),
        ("nWR", SAME_BANK, (C.WR,), PRES, wr_end + t.nWR),
        ("nWR_UPD", SAME_BANK, (C.UPD,), PRES, wr_end + t.nRMW + t.nWR),
        ("nRMW", SAME_BANK, (C.UPD,), COL_RD + COL_WR, wr_end + t.nRMW),
        ("nRTP+nRP", SAME_BANK, (C.RDA,), OPENING, t.nRTP + t.nRP),
        ("nWR+nRP", SAME_BANK, (C.WRA,), OPENING, wr_end + t.nWR + t.nRP),
        ("nRFC", SAME_BANK, (C.REFab,), OPENING, t.nRFC),
        ("nRFCpb", SAME_BANK, (C.REFpb,), OPENING, t.nRFCpb),
        # Same bank group.
        ("nCCD_L", SAME_BG, COL_RD, COL_RD, t.nCCD_L),
        ("nCCD_L", SAME_BG, COL_WR, COL_WR, t.nCCD_L),
        ("nWTR_L", SAME_BG, COL_WR, COL_RD, wr_end + t.nWTR_L),
        ("nRRD_L", SAME_BG, (C.ACT,), (C.ACT,), t.nRRD_L),
        # Same rank.
        ("nCCD_S", SAME_RANK, COL_RD, COL_RD, t.nCCD_S),
        ("nCCD_S", SAME_RANK, COL_WR, COL_WR, t.nCCD_S),
        ("nWTR_S", SAME_RANK, COL_WR, COL_RD + (C.RD_MAC,), wr_end + t.nWTR_S),
        ("nRRD_S", SAME_RANK, (C.ACT,), (C.ACT,), t.nRRD_S),
        # ACT -> ACT is nRRD_S/nRRD_L above; nRRD_AB covers the pairs with an ACT_AB in them.
        ("nRRD_AB", SAME_RANK, (C.ACT_AB,), ACTS, t.nRRD_L),
        ("nRRD_AB", SAME_RANK, (C.ACT,), (C.ACT_AB,), t.nRRD_L),
        ("nCCD_MAC", SAME_RANK, (C.MAC_AB,), (C.MAC_AB,), t.nCCD_L),
        ("nGB_MAC", SAME_RANK, (C.WR_GB, C.WR_BIAS), (C.MAC_AB,), t.nCWLREG + t.nBL + t.nGB_MAC),
        ("nWTR_REG", SAME_RANK, (C.WR_GB, C.WR_BIAS), COL_RD + (C.RD_MAC,), t.nCWLREG + t.nBL + t.nWTR_S),
        ("nMAC_RES", SAME_RANK, (C.MAC_AB,), (C.RD_MAC,), t.nMAC_RES),
        ("nRES_MAC", SAME_RANK, (C.RD_MAC,), (C.MAC_AB,), t.nCCD_L),
        # Same channel: one burst at a time on the data bus, which every rank shares.
        # Read-to-write turnaround, each side with its latency: the array (nCL, nCWL) or the PIM
        # register path (RD_MAC: nCLREG; WR_GB, WR_BIAS: nCWLREG).
        ("nRTW", SAME_CHANNEL, (C.RD, C.RDA), (C.WR, C.WRA, C.UPD), t.nCL + t.nBL + t.nRTW - t.nCWL),
        ("nRTW_RD_REG", SAME_CHANNEL, (C.RD, C.RDA), (C.WR_GB, C.WR_BIAS), t.nCL + t.nBL + t.nRTW - t.nCWLREG),
        ("nRTW_REG_RD", SAME_CHANNEL, (C.RD_MAC,), (C.WR, C.WRA, C.UPD), t.nCLREG + t.nBL + t.nRTW - t.nCWL),
        ("nRTW_REG", SAME_CHANNEL, (C.RD_MAC,), (C.WR_GB, C.WR_BIAS), t.nCLREG + t.nBL + t.nRTW - t.nCWLREG),
        # Rank switching: bursts of different ranks need nRTRS more (WR -> WR: none).
        ("nWTR_BUS", OTHER_RANKS, BUS_WR, BUS_RD, wr_end + t.nRTRS - t.nCL),
        ("nBL_RD", SAME_CHANNEL, BUS_RD, BUS_RD, t.nBL),
        ("nBL_WR", SAME_CHANNEL, BUS_WR, BUS_WR, t.nBL),
    ]
    if t.nRTRS > 0:  # (with nRTRS = 0 it is nBL_RD again)
        rules.append(("nRTRS", OTHER_RANKS, BUS_RD, BUS_RD, t.nBL + t.nRTRS))
    return rules


def _rules_by_next(t, other_ranks: bool = True) -> list[list[tuple[str, tuple[tuple[int, int], ...], int]]]:
    """For each command value: the rules it must satisfy as (name, ((history, prev cmd), ...), gap),
    with each prev command's history already resolved for the next command's scope."""
    out: list[list] = [[] for _ in range(max(Cmd) + 1)]
    for name, level, prevs, nexts, gap in timing_rules(t):
        if gap <= 0:  # ticks never decrease, so a gap of 0 (or less) always holds
            continue
        if level == OTHER_RANKS and not other_ranks:  # a single-rank channel has no other rank
            continue
        for n in nexts:
            srcs = []
            for p in prevs:
                if level == SAME_CHANNEL:
                    h = _H_CHAN
                elif level == OTHER_RANKS:
                    h = _H_SIB
                elif level == SAME_RANK or n in RANK_SCOPE or p in RANK_SCOPE:
                    # A rank-scope command touches every bank (group): look at the whole rank.
                    h = _H_RANK
                else:
                    h = _H_BANK if level == SAME_BANK else _H_BG
                srcs.append((h, int(p)))
            # Merge with an earlier entry of the same name (e.g. nRRD_AB's two lines).
            for i, (nm, old, g) in enumerate(out[n]):
                if nm == name and g == gap:
                    out[n][i] = (nm, old + tuple(srcs), g)
                    break
            else:
                out[n].append((name, tuple(srcs), gap))
    return out


# ---------------------------------------------------------------------------------------------
# Data types
# ---------------------------------------------------------------------------------------------
class TraceCmd(NamedTuple):
    """One issued command of a trace (a row of the CSV)."""

    tick: int
    channel: int
    rank: int
    bankgroup: int
    bank: int
    row: int
    column: int
    command: Cmd


@dataclass(frozen=True)
class Violation:
    """One broken rule. `prev_*` name the earlier command the gap is measured from (or the command
    that put the bank in its current state, for state rules); gaps are in command-clock cycles."""

    rule: str
    tick: int
    command: str
    prev_command: str | None = None
    prev_tick: int | None = None
    required_gap: int | None = None
    actual_gap: int | None = None
    channel: int = -1
    rank: int = -1
    bankgroup: int = -1
    bank: int = -1
    detail: str = ""

    def __str__(self) -> str:
        where = f"ch{self.channel} rank{self.rank}"
        if self.bank >= 0 or self.bankgroup >= 0:
            where += f" bg{self.bankgroup} bank{self.bank}"
        s = f"tick {self.tick}: {self.command} @ {where}: {self.rule}"
        if self.required_gap is not None:
            s += f" needs {self.required_gap} cycles"
            if self.prev_command is not None:
                s += f" after {self.prev_command} @ tick {self.prev_tick}, got {self.actual_gap}"
            else:
                s += f", got {self.actual_gap}"
        elif self.prev_command is not None:
            s += f" (bank state set by {self.prev_command} @ tick {self.prev_tick})"
        if self.detail:
            s += f" [{self.detail}]"
        return s

    def to_dict(self) -> dict:
        d = asdict(self)
        d["message"] = str(self)
        return d


@dataclass
class CheckReport:
    """Result of checking one trace."""

    violations: list[Violation]
    n_commands: int
    path: str | None = None
    spec_name: str = ""
    seconds: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)

    def __post_init__(self):
        if not self.counts:
            self.counts = dict(sorted(Counter(v.rule for v in self.violations).items()))

    @property
    def ok(self) -> bool:
        return not self.violations

    def to_dict(self, limit: int = 100) -> dict:
        return {
            "path": self.path,
            "spec": self.spec_name,
            "ok": self.ok,
            "n_commands": self.n_commands,
            "n_violations": len(self.violations),
            "counts": dict(self.counts),
            "violations": [v.to_dict() for v in self.violations[:limit]],
            "truncated": len(self.violations) > limit,
        }


# ---------------------------------------------------------------------------------------------
# CSV
# ---------------------------------------------------------------------------------------------
_BY_NAME = {c.name: c for c in Cmd}


def read_command_trace(path) -> list[TraceCmd]:
    """Parse a command-trace CSV. Bad input raises InputError(path, "line N.<field>", message)."""
    path = str(path)
    try:
        fh = open(path, encoding="utf-8", newline="")
    except OSError as exc:
        raise InputError(path, "", f"cannot read the trace: {exc.strerror or exc}") from None
    gc_was_on = gc.isenabled()
    gc.disable()  # a million small tuples would otherwise trigger many full collections
    try:
        return _read_rows(path, fh)
    finally:
        if gc_was_on:
            gc.enable()


def _read_rows(path: str, fh) -> list[TraceCmd]:
    out: list[TraceCmd] = []
    append = out.append
    new = tuple.__new__
    by_name = _BY_NAME
    last_tick = 0
    with fh:
        try:
            header = fh.readline()
        except UnicodeDecodeError as exc:
            raise InputError(path, "line 1", f"not UTF-8 text ({exc.reason})") from None
        got = tuple(h.strip() for h in header.rstrip("\r\n").split(","))
        if got != HEADER:
            missing = [h for h in HEADER if h not in got]
            extra = [h for h in got if h not in HEADER]
            why = []
            if missing:
                why.append("missing " + ", ".join(missing))
            if extra:
                why.append("unexpected " + ", ".join(repr(e) for e in extra))
            if not why:
                why.append("fields out of order")
            raise InputError(path, "line 1.header",
                             f"got {header.strip()!r} ({'; '.join(why)}); expected {','.join(HEADER)!r}")
        lineno = 1
        try:
            for line in fh:
                lineno += 1
                parts = line.split(",")
                if len(parts) != 8:
                    if not line.strip():
                        continue  # blank lines (e.g. a trailing one) are allowed
                    raise InputError(path, f"line {lineno}",
                                     f"got {len(parts)} fields; expected 8 ({','.join(HEADER)})")
                try:
                    tick = int(parts[0])
                    vals = [tick, int(parts[1]), int(parts[2]), int(parts[3]), int(parts[4]),
                            int(parts[5]), int(parts[6])]
                except ValueError:
                    for i in range(7):
                        try:
                            int(parts[i])
                        except ValueError:
                            raise InputError(path, f"line {lineno}.{HEADER[i]}",
                                             f"got {parts[i].strip()!r}; expected an integer") from None
                    raise  # unreachable
                cmd = by_name.get(parts[7].strip())
                if cmd is None:
                    raise InputError(path, f"line {lineno}.command",
                                     f"got {parts[7].strip()!r}; expected one of {', '.join(by_name)}")
                if tick < last_tick:
                    if tick < 0:
                        raise InputError(path, f"line {lineno}.tick", f"got {tick}; expected >= 0")
                    raise InputError(path, f"line {lineno}.tick",
                                     f"got {tick}; ticks must not decrease (previous row: {last_tick})")
                last_tick = tick
                vals.append(cmd)
                append(new(TraceCmd, vals))
        except UnicodeDecodeError as exc:
            raise InputError(path, f"line {lineno + 1}", f"not UTF-8 text ({exc.reason})") from None
    return out


def write_command_trace(path, rows: Iterable[Sequence]) -> None:
    """Write rows (tick, channel, rank, bankgroup, bank, row, column, command) as a trace CSV."""
    with open(path, "w", encoding="utf-8", newline="") as fh:
        fh.write(",".join(HEADER) + "\n")
        for r in rows:
            c = r[7]
            name = c.name if isinstance(c, Cmd) else (Cmd(c).name if isinstance(c, int) else str(c))
            fh.write(f"{r[0]},{r[1]},{r[2]},{r[3]},{r[4]},{r[5]},{r[6]},{name}\n")


# ---------------------------------------------------------------------------------------------
# The checker
# ---------------------------------------------------------------------------------------------
def _name(c: int | None) -> str | None:
    return None if c is None else Cmd(c).name


def check_trace(dspec: DramSpec, rows: Iterable[Sequence], *, check_refresh: bool | None = None
                ) -> list[Violation]:
    """Replay `rows` (TraceCmd or any 8-sequence with the command as a Cmd, its value or its name)
    against `dspec` and return every violation, in trace order.

    `check_refresh`: also report REFab gaps over 9 x nREFI per rank (None: only when the trace holds
    a REFab)."""
    gc_was_on = gc.isenabled()
    gc.disable()  # the replay allocates only results; skip collections over the caller's big trace
    try:
        return _replay(dspec, rows, check_refresh)
    finally:
        if gc_was_on:
            gc.enable()


def _replay(dspec: DramSpec, rows, check_refresh: bool | None) -> list[Violation]:
    org, tm = dspec.organization, dspec.timing
    NCH, NR, NBG, NBPG = org.channels, org.ranks, org.bankgroups, org.banks_per_group
    NROWS, NCOLS = org.rows, org.columns
    BPR = NBG * NBPG
    NCMD = max(Cmd) + 1
    rules_for = _rules_by_next(tm, other_ranks=NR > 1)
    rank_scope = [False] * NCMD
    for c in RANK_SCOPE:
        rank_scope[c] = True
    uses_row = [c in USES_ROW for c in range(NCMD)]
    uses_col = [c in USES_COLUMN for c in range(NCMD)]
    by_name = _BY_NAME

    if not isinstance(rows, list):
        rows = list(rows)
    if check_refresh is None:
        check_refresh = any(r[7] == C.REFab or r[7] == "REFab" for r in rows)

    # Histories: last issue tick of every command type.
    bank_hist = [[_NEVER] * NCMD for _ in range(NCH * NR * BPR)]
    bg_hist = [[_NEVER] * NCMD for _ in range(NCH * NR * NBG)]
    rank_hist = [[_NEVER] * NCMD for _ in range(NCH * NR)]
    chan_hist = [[_NEVER] * NCMD for _ in range(NCH)]
    chan_last = [(_NEVER, None)] * NCH          # (tick, cmd) of the previous command on a channel
    faw = [[] for _ in range(NCH * NR)]         # ticks of the last (up to) 4 ACTs per rank
    last_ref = [0] * (NCH * NR)                 # tick of the last REFab per rank (0 at start)
    # Bank state: open row (-1: closed) and the command/tick that set it; open banks per rank.
    open_row = [-1] * (NCH * NR * BPR)
    state_cmd: list[int | None] = [None] * (NCH * NR * BPR)
    state_tick: list[int | None] = [None] * (NCH * NR * BPR)
    n_open = [0] * (NCH * NR)
    seen_channels = set()
    nfaw = tm.nFAW
    refi_limit = 9 * tm.nREFI

    out: list[Violation] = []
    add = out.append
    last_t = None
    ACT_, ACT_AB_, PRE_, PREA_ = int(C.ACT), int(C.ACT_AB), int(C.PRE), int(C.PREA)
    RD_, WR_, RDA_, WRA_, UPD_ = int(C.RD), int(C.WR), int(C.RDA), int(C.WRA), int(C.UPD)
    REFAB_, REFPB_, MAC_ = int(C.REFab), int(C.REFpb), int(C.MAC_AB)

    for i, r in enumerate(rows):
        t, ch, rk, bg, bk, row, col, c = r
        if c.__class__ is not Cmd:
            try:
                c = by_name[c] if isinstance(c, str) else Cmd(c)
            except (KeyError, ValueError):
                raise InputError("<trace>", f"rows[{i}].command",
                                 f"got {c!r}; expected one of {', '.join(by_name)}") from None
        if last_t is not None and t < last_t:
            raise InputError("<trace>", f"rows[{i}].tick", f"got {t}; ticks must not decrease (previous {last_t})")
        last_t = t
        rscope = rank_scope[c]
        if rscope:
            bg = bk = -1

        # Where: unplaceable commands are reported and skipped.
        if not (0 <= ch < NCH and 0 <= rk < NR) or (not rscope and not (0 <= bg < NBG and 0 <= bk < NBPG)):
            add(Violation("out_of_range", t, c.name, channel=ch, rank=rk, bankgroup=bg, bank=bk,
                          detail=f"address outside {NCH} channel(s) x {NR} rank(s) x {NBG} bank group(s) "
                                 f"x {NBPG} bank(s)"))
            continue
        seen_channels.add(ch)

        prev_t, prev_c = chan_last[ch]
        if prev_t == t:
            add(Violation("one_command_per_cycle", t, c.name, _name(prev_c), prev_t, 1, 0, ch, rk, bg, bk))
        chan_last[ch] = (t, c)

        if uses_row[c] and not (0 <= row < NROWS):
            add(Violation("out_of_range", t, c.name, channel=ch, rank=rk, bankgroup=bg, bank=bk,
                          detail=f"row {row} outside 0..{NROWS - 1}"))
        if uses_col[c] and not (0 <= col < NCOLS):
            add(Violation("out_of_range", t, c.name, channel=ch, rank=rk, bankgroup=bg, bank=bk,
                          detail=f"column {col} outside 0..{NCOLS - 1}"))

        ri = ch * NR + rk
        hr = rank_hist[ri]
        hc = chan_hist[ch]
        if rscope:
            bi = gi = -1
            hist = (hr, hr, hr, hc, None)
        else:
            gi = ri * NBG + bg
            bi = gi * NBPG + bk
            hist = (bank_hist[bi], bg_hist[gi], hr, hc, None)

        # ---- bank state -------------------------------------------------------------------
        if rscope:
            if c == PREA_:
                if n_open[ri]:
                    base = ri * BPR
                    for b in range(base, base + BPR):
                        if open_row[b] != -1:
                            open_row[b] = -1
                            state_cmd[b] = c
                            state_tick[b] = t
                    n_open[ri] = 0
            elif c == ACT_AB_ or c == REFAB_:
                if n_open[ri]:
                    base = ri * BPR
                    b = next(b for b in range(base, base + BPR) if open_row[b] != -1)
                    k = b - base
                    add(Violation("all_banks_closed", t, c.name, _name(state_cmd[b]), state_tick[b],
                                  channel=ch, rank=rk, bankgroup=-1, bank=-1,
                                  detail=f"{n_open[ri]} bank(s) open, e.g. bg{k // NBPG} bank{k % NBPG} "
                                         f"row {open_row[b]}"))
                if c == ACT_AB_:
                    base = ri * BPR
                    for b in range(base, base + BPR):
                        open_row[b] = row
                        state_cmd[b] = c
                        state_tick[b] = t
                    n_open[ri] = BPR
            elif c == MAC_:
                if n_open[ri] != BPR:
                    base = ri * BPR
                    b = next(b for b in range(base, base + BPR) if open_row[b] == -1)
                    k = b - base
                    add(Violation("all_banks_open", t, c.name, _name(state_cmd[b]), state_tick[b],
                                  channel=ch, rank=rk, bankgroup=-1, bank=-1,
                                  detail=f"{BPR - n_open[ri]} bank(s) closed, e.g. bg{k // NBPG} bank{k % NBPG}"))
        else:
            cur = open_row[bi]
            if c == ACT_ or c == REFPB_:
                if cur != -1:
                    add(Violation("bank_closed", t, c.name, _name(state_cmd[bi]), state_tick[bi],
                                  channel=ch, rank=rk, bankgroup=bg, bank=bk, detail=f"row {cur} is open"))
                if c == ACT_:
                    if cur == -1:
                        n_open[ri] += 1
                    open_row[bi] = row
                    state_cmd[bi] = c
                    state_tick[bi] = t
            elif c == PRE_:
                if cur != -1:
                    open_row[bi] = -1
                    n_open[ri] -= 1
                    state_cmd[bi] = c
                    state_tick[bi] = t
            else:  # RD, WR, RDA, WRA, UPD
                if cur != row:
                    add(Violation("row_not_open", t, c.name, _name(state_cmd[bi]), state_tick[bi],
                                  channel=ch, rank=rk, bankgroup=bg, bank=bk,
                                  detail=f"row {row} accessed, bank closed" if cur == -1 else
                                  f"row {row} accessed, row {cur} open"))
                if (c == RDA_ or c == WRA_) and cur != -1:
                    open_row[bi] = -1
                    n_open[ri] -= 1
                    state_cmd[bi] = c
                    state_tick[bi] = t

        # ---- pairwise timing ----------------------------------------------------------------
        for name, srcs, gap in rules_for[c]:
            best = _NEVER
            bp = 0
            for h, p in srcs:
                if h == _H_SIB:  # the latest such command on any other rank of the channel
                    tp = _NEVER
                    for r2 in range(ch * NR, ch * NR + NR):
                        if r2 != ri and rank_hist[r2][p] > tp:
                            tp = rank_hist[r2][p]
                else:
                    tp = hist[h][p]
                if tp > best:
                    best = tp
                    bp = p
            if t - best < gap:
                add(Violation(name, t, c.name, Cmd(bp).name, best, gap, t - best, ch, rk, bg, bk))

        # ---- four-activate window -----------------------------------------------------------
        if c == ACT_ and nfaw:
            w = faw[ri]
            if len(w) == 4:
                if t - w[0] < nfaw:
                    add(Violation("nFAW", t, c.name, "ACT", w[0], nfaw, t - w[0], ch, rk, bg, bk,
                                  detail="5th ACT inside the four-activate window"))
                del w[0]
            w.append(t)

        # ---- refresh interval ---------------------------------------------------------------
        if c == REFAB_:
            if check_refresh and t - last_ref[ri] > refi_limit:
                add(Violation("nREFI", t, c.name, "REFab" if hr[REFAB_] != _NEVER else None,
                              last_ref[ri], refi_limit, t - last_ref[ri], ch, rk, -1, -1,
                              detail="more than 8 postponed refreshes"))
            last_ref[ri] = t

        # ---- record -------------------------------------------------------------------------
        hr[c] = t
        hc[c] = t
        if not rscope:
            hist[_H_BANK][c] = t
            hist[_H_BG][c] = t

    if check_refresh and last_t is not None:
        for ch in sorted(seen_channels):
            for rk in range(NR):
                ri = ch * NR + rk
                if last_t - last_ref[ri] > refi_limit:
                    add(Violation("nREFI", last_t, "END", "REFab" if rank_hist[ri][REFAB_] != _NEVER else None,
                                  last_ref[ri], refi_limit, last_t - last_ref[ri], ch, rk, -1, -1,
                                  detail="trace ends more than 9 x nREFI after the last refresh"))
    return out


def check_file(path, dspec: DramSpec, *, check_refresh: bool | None = None) -> CheckReport:
    """Read and check one trace file."""
    t0 = time.perf_counter()
    rows = read_command_trace(path)
    violations = check_trace(dspec, rows, check_refresh=check_refresh)
    return CheckReport(violations, len(rows), path=str(path), spec_name=dspec.name,
                       seconds=time.perf_counter() - t0)


# ---------------------------------------------------------------------------------------------
# CLI: python -m hwsim.dram_pim.checker TRACE (--preset NAME | --spec FILE) [--json]
# ---------------------------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m hwsim.dram_pim.checker",
                                 description="Check a DRAM/PIM command trace against a DRAM spec.")
    ap.add_argument("trace", help="command trace CSV (tick,channel,rank,bankgroup,bank,row,column,command)")
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--preset", help="DRAM preset name")
    src.add_argument("--spec", help="DRAM spec YAML file")
    ap.add_argument("--json", action="store_true", help="print the report as JSON")
    ap.add_argument("--refresh", choices=("auto", "on", "off"), default="auto",
                    help="check the REFab interval (auto: when the trace holds a REFab)")
    ap.add_argument("--limit", type=int, default=20, help="violations listed in text output")
    args = ap.parse_args(argv)
    try:
        dspec = load_dram_spec(preset=args.preset, spec_file=args.spec)
        refresh = {"auto": None, "on": True, "off": False}[args.refresh]
        rep = check_file(args.trace, dspec, check_refresh=refresh)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(rep.to_dict(), indent=2))
    else:
        print(f"{rep.path}: {rep.n_commands} commands, {len(rep.violations)} violation(s) "
              f"[{rep.spec_name}, {rep.seconds:.2f} s]")
        for rule, n in rep.counts.items():
            print(f"  {rule}: {n}")
        for v in rep.violations[: args.limit]:
            print("  " + str(v))
    return 0 if rep.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
