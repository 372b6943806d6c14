"""The PIM hardware of PIM-GPT: AiM-style GDDR6 channels whose 16 banks each have a BF16 MAC unit
(16 multipliers, an adder tree and an accumulator) fed from a per-channel global buffer (GB).

`PimSpec` is the configuration (preset `hwsim/presets/pim/pim_gpt.yaml`), `PimSystem` the timed
device: a `Device` plus a `StreamIssuer` for the configured channel count. Its operations issue
real command streams (docs/pim_mapping.md) with exact timing:

* `vmm(placement)`: y = x W per a `Placement` (WR_GB broadcast, ACT_AB, MAC_AB, RD_MAC, PREA);
* `kv_append(layer, token)`: write k_t (row-major) and v_t (column-major) with ACT/WR/PRE;
* `kv_score_placement` / `kv_context_placement`: attention VMMs against the stored K and V;
* refresh (`deferred`): every instruction (`vmm`, `kv_append`) first issues the REFab owed at its
  start (an instruction boundary; `flush_refresh()` does the same on demand), and inside an
  instruction a forced burst is issued at the next row boundary once `max_postponed_refreshes` are
  owed (JEDEC postponement limit), so traces pass the checker's 9 x tREFI rule.

Exact memoisation: a VMM whose placement signature (layout up to a row offset) and relative
device state at its start equal an earlier one's replays the stored relative result and end state
(docs/pim_mapping.md §7); so does a KV append, whose stream is the same in every layer up to the
layer's row offset; attention VMMs are signed by the command stream they lower to. A stored run
is replayed only if no refresh could be forced during it; runs with a forced in-instruction
refresh depend on the start phase (mod tREFI) and are kept apart, each replayed only within its
interval of phases.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

import numpy as np
from numba import njit

from hwsim import invariants
from hwsim.config import build, field_path, spec
from hwsim.dram_pim.commands import N_CMDS, Cmd
from hwsim.dram_pim.controller import CommandLog, command_csv, trace_rows
from hwsim.dram_pim.constraints import compile_timing
from hwsim.dram_pim.device import (H_BANKS_PER_CHANNEL, H_BANKS_PER_RANK, H_OPEN, Device, bank_state_ok, earliest,
                                   issue)
from hwsim.dram_pim.memo import (L_LAST_DECISION, L_SCALARS, N_PHASES, S_LAST_DECISION, Layout, MemoTable,
                                 key_hash)
from hwsim.dram_pim.spec import DramSpec, load_dram_spec, with_channels
from hwsim.dram_pim.stream import StreamIssuer
from hwsim.errors import InputError
from hwsim.mapping.lowering import LoweredOp, lower_vmm
from hwsim.mapping.partition import Placement, placement_signature, slot_signature, stream_origin
from hwsim.presets import list_presets, preset_or_mapping


# ------------------------------------------------------------------------------------------------
# Configuration
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class PimSpec:
    """PIM-GPT processing-in-memory hardware (AiM-style GDDR6 channels with per-bank MAC units)."""

    dram: str = spec("DRAM preset the PIM channels use (timing and organisation; hwsim/presets/dram)",
                     default="GDDR6_AiM")
    dram_overrides: dict[str, Any] = spec("nested overrides of that DRAM preset (e.g. {timing: {nRCD_MAC: 40}})",
                                          default_factory=dict)
    channels: int = spec("PIM channels; each has 16 banks with MAC units, a global buffer and its own "
                         "command stream driven by the ASIC", min=1)
    mac_lanes: int = spec("BF16 multipliers per bank MAC unit (adder tree + accumulator behind them); one "
                          "MAC_AB consumes one 32 B column per bank", min=1)
    element_bytes: int = spec("bytes per weight/activation element (BF16)", unit="B", min=1, default=2)
    global_buffer_bytes: int = spec("global buffer per channel holding the broadcast input chunk (single-buffered)",
                                    unit="B", min=1)
    accumulator: Literal["fp32", "bf16"] = spec(
        "MAC accumulator precision (functional results only; RD_MAC rounds to result_format)", default="fp32")
    result_format: Literal["bf16", "fp32"] = spec(
        "what RD_MAC returns per bank: bf16 (16 banks x 2 B = one 32 B burst) or fp32 (two bursts)",
        default="bf16")
    refresh: Literal["deferred", "none"] = spec(
        "deferred: REFab owed are issued at the start of every PIM instruction (an instruction boundary) "
        "and, once max_postponed_refreshes are owed, at the next row boundary inside one; none: no refresh",
        default="deferred")
    max_postponed_refreshes: int = spec("refreshes that may be owed before one is forced (JEDEC: 8)", min=1,
                                        default=8)
    overlap_activate: bool = spec("issue the first ACT_AB of a global-buffer window before its WR_GB "
                                  "broadcast (hides tRCD_MAC behind the broadcast)", default=True)
    mode_switch_cycles: int = spec(
        "register-access mode change (aim_simulator TMOD, nMODCH): the MAC-register and global-buffer "
        "commands (WR_GB, WR_BIAS, RD_MAC) run in register mode, every other command in normal mode; a "
        "command whose mode differs from its channel's takes a TMOD slot at its first legal tick and issues "
        "this many cycles later (0: no mode changes)", unit="cycles", min=0, default=0)
    name: str = spec("preset name", default="custom")

    def validate(self, file, path):
        if self.dram not in list_presets("dram"):
            raise InputError(file, field_path(path, "dram"),
                             f"unknown dram preset {self.dram!r}; valid: {', '.join(list_presets('dram'))}")
        ds = load_dram_spec(preset=self.dram, overrides=self.dram_overrides or None, file=file,
                            path=field_path(path, "dram_overrides"))
        o = ds.organization
        if o.ranks != 1:
            raise InputError(file, field_path(path, "dram_overrides"),
                             f"got {o.ranks} ranks; the PIM model needs 1 rank per channel (all-bank commands act "
                             "on one rank)")
        if self.mac_lanes * self.element_bytes != o.burst_bytes:
            raise InputError(file, field_path(path, "mac_lanes"),
                             f"got {self.mac_lanes}; mac_lanes x element_bytes must equal the {o.burst_bytes} B "
                             f"column a MAC_AB reads (expected {o.burst_bytes // self.element_bytes})")
        if self.global_buffer_bytes % o.burst_bytes:
            raise InputError(file, field_path(path, "global_buffer_bytes"),
                             f"got {self.global_buffer_bytes}; expected a multiple of the {o.burst_bytes} B burst")

    # ---- derived ---------------------------------------------------------------------------------
    @cached_property
    def dram_spec(self) -> DramSpec:
        """The DRAM spec of the PIM device, with `channels` channels."""
        ds = load_dram_spec(preset=self.dram, overrides=self.dram_overrides or None)
        return with_channels(ds, self.channels)

    @property
    def banks_per_channel(self) -> int:
        o = self.dram_spec.organization
        return o.ranks * o.banks_per_rank

    @property
    def banks_total(self) -> int:
        return self.channels * self.banks_per_channel

    @property
    def row_elems(self) -> int:
        return self.dram_spec.organization.row_bytes // self.element_bytes

    @property
    def rows_per_bank(self) -> int:
        return self.dram_spec.organization.rows

    @property
    def gb_elems(self) -> int:
        return self.global_buffer_bytes // self.element_bytes

    @property
    def burst_bytes(self) -> int:
        return self.dram_spec.organization.burst_bytes

    @property
    def readout_bursts(self) -> int:
        """RD_MAC bursts per readout of the banks' accumulators."""
        per = 2 if self.result_format == "bf16" else 4
        return -(-(self.banks_per_channel * per) // self.burst_bytes)

    @property
    def tCK_ps(self) -> int:
        return self.dram_spec.timing.tCK_ps

    @property
    def capacity_bytes(self) -> int:
        return self.dram_spec.organization.capacity_bytes


def load_pim(value: Any, file: str | None = None, path: str = "pim") -> PimSpec:
    """A PimSpec from a preset name, `{preset: NAME, channels: N, ...overrides}` or a full mapping."""
    if isinstance(value, PimSpec):
        return value
    value = preset_or_mapping("pim", value, file=file, path=path)
    return build(PimSpec, value, file=file, path=path)


# ------------------------------------------------------------------------------------------------
# Results
# ------------------------------------------------------------------------------------------------
PHASES = ("broadcast", "row", "mac", "readout", "write", "refresh", "mode")
assert len(PHASES) == N_PHASES
_PHASE_OF = np.full(N_CMDS, 1, dtype=np.int64)   # ACT/PRE/PREA/ACT_AB -> row
_PHASE_OF[[Cmd.WR_GB]] = 0
_PHASE_OF[[Cmd.MAC_AB]] = 2
_PHASE_OF[[Cmd.RD_MAC, Cmd.RD, Cmd.RDA]] = 3
_PHASE_OF[[Cmd.WR, Cmd.WRA, Cmd.WR_BIAS, Cmd.UPD]] = 4
_PHASE_OF[[Cmd.REFab, Cmd.REFpb]] = 5
_OPENS = np.zeros(N_CMDS, dtype=np.bool_)   # commands that open rows / close them (lookup tables:
_OPENS[[Cmd.ACT, Cmd.ACT_AB]] = True        # np.isin costs ~80 us a call, and _run makes two per
_CLOSES = np.zeros(N_CMDS, dtype=np.bool_)  # instruction)
_CLOSES[[Cmd.PRE, Cmd.PREA]] = True


@dataclass(frozen=True)
class VmmResult:
    """One PIM instruction (a VMM, a KV append or a refresh flush). Ticks are command-clock cycles
    (`tCK_ps` each); `end_tick` is when the last data is back (the PIM is idle again)."""

    name: str
    start_tick: int
    end_tick: int
    tCK_ps: int
    channels: int
    commands: dict[str, int]
    row_hits: int
    row_misses: int
    bytes_in: int           # ASIC -> PIM bus bytes (WR_GB, WR, WR_BIAS bursts)
    bytes_out: int          # PIM -> ASIC bus bytes (RD_MAC, RD bursts)
    macs: int               # useful BF16 multiply-accumulates
    cycles: dict[str, int]  # the critical channel's cycles by phase (sum = latency_cycles)
    active_channel_cycles: int   # sum over channels of the cycles with a row open
    refreshes: int
    mode_switches: int = 0       # TMOD slots (register <-> normal mode changes), all channels
    channel_end_tick: tuple[int, ...] = ()   # per channel: when its last command's effect is done
    memo_hit: bool = field(default=False, compare=False)
    trace: CommandLog | None = field(default=None, compare=False, repr=False)

    @property
    def latency_cycles(self) -> int:
        return self.end_tick - self.start_tick

    @property
    def latency_ps(self) -> int:
        return self.latency_cycles * self.tCK_ps

    @property
    def latency_ns(self) -> float:
        return self.latency_ps / 1000.0

    @property
    def row_hit_rate(self) -> float:
        n = self.row_hits + self.row_misses
        return self.row_hits / n if n else 0.0

    def trace_rows(self, dspec: DramSpec) -> list[tuple]:
        """The command trace as checker rows (tick, channel, rank, bankgroup, bank, row, column, Cmd)."""
        if self.trace is None:
            raise ValueError("no trace recorded: create the PimSystem with record=True")
        return trace_rows(dspec, self.trace)

    def trace_csv(self, dspec: DramSpec) -> str:
        if self.trace is None:
            raise ValueError("no trace recorded: create the PimSystem with record=True")
        return command_csv(dspec, self.trace)


# ------------------------------------------------------------------------------------------------
# Issue kernel: in-order per channel (as StreamIssuer) plus deferred-refresh insertion
# ------------------------------------------------------------------------------------------------
_ACT, _ACT_AB, _REFAB = int(Cmd.ACT), int(Cmd.ACT_AB), int(Cmd.REFab)
# Commands that run in register-access mode (aim_simulator ISRs with require_reg_RW_mod: WR_GB,
# WR_BIAS, RD_MAC, RD_AF); every other command, refresh included, runs in normal mode.
# Memo entries kept (least recently used dropped first). An entry holds the device state after one
# instruction (~0.25 MB for 8 AiM channels); attention VMMs of past context lengths never recur, so
# an unbounded memo grew to 2.1 GB RSS over 2,048 tokens. Eviction only costs a re-simulation.
MEMO_ENTRIES = 1024
# A closed bank in a memo row's open rows (which are relative to the instruction's first row, so a
# row left open below it is negative: -1 cannot mark "closed").
CLOSED_REL = -(1 << 62)
# Attention streams whose signatures are kept (an attention VMM's stream recurs over the 16-32
# consecutive context lengths that fill one KV slot), and as many slot tables that stand for them.
STREAMS_KEPT = 64
# Lowerings of missed weight VMMs kept: a VMM long enough that a refresh is forced inside it is never
# stored in the memo (its timing depends on the refresh phase) and is timed again in every token.
LOWERINGS_KEPT = 8
# Runs with a forced refresh kept, each valid over the start phases (mod tREFI) that make the same
# refresh decisions (about one ACT spacing wide, so a long instruction needs many to be covered).
PHASED_KEPT = 512
NO_DECISION = -(1 << 40)   # a channel without refresh decisions (no ACT) in a memo row
NO_HOT = np.zeros(0, np.int64)   # `_memo_key` of the device: every ready tick may be after the start
REGISTER_MODE = np.zeros(N_CMDS, dtype=np.int64)
REGISTER_MODE[[Cmd.WR_GB, Cmd.WR_BIAS, Cmd.RD_MAC]] = 1


@njit(cache=True)
def _slot(st, ck, b, c, t, channel_tick, mode, reg_mode, nmodch, switches):
    """Issue tick of command `ck` whose other constraints allow tick `t`: with mode changes on
    (nmodch > 0) and the channel in the other mode, a TMOD takes slot t and the command waits
    nmodch (TMOD -> any command, aim_simulator)."""
    if nmodch > 0 and reg_mode[ck] != mode[c]:
        mode[c] = reg_mode[ck]
        switches[c] += 1
        return t + nmodch
    return t


@njit(cache=True)
def _issue_pim(st, cmd, bank, row, start_tick, channel_tick, out_tick, ref_on, nrefi, max_post, ref_issued,
               ref_tick, ref_bank, ref_before, mode, reg_mode, nmodch, switches, out_sw):
    """Issue `cmd` in order (one command per channel per tick, each at its earliest legal tick).
    With `ref_on`, before an ACT/ACT_AB that finds all banks of its channel closed, if
    floor(tick / nrefi) - ref_issued[c] >= max_post, every owed REFab is issued first.
    `mode[c]` is channel c's access mode (1: register), updated in place; a command of the other
    mode first takes a TMOD slot (`_slot`), counted in `switches[c]` and flagged in `out_sw[k]`.
    Returns the number of REFab inserted, -1 if the refresh buffer is full, or -(k + 2) if
    command k's bank-state precondition fails."""
    bpc = st[H_BANKS_PER_CHANNEL]
    bpr = st[H_BANKS_PER_RANK]
    off_open = st[H_OPEN]
    n_ref = 0
    cap = ref_tick.shape[0]
    for k in range(cmd.shape[0]):
        b = bank[k]
        c = b // bpc
        ck = cmd[k]
        if ref_on and (ck == _ACT or ck == _ACT_AB):
            t0 = max(channel_tick[c], start_tick)
            owed = t0 // nrefi - ref_issued[c]
            if owed >= max_post:
                closed = True
                for bb in range(c * bpc, (c + 1) * bpc):
                    if st[off_open + bb] != -1:
                        closed = False
                        break
                if closed:
                    for _ in range(owed):
                        for rb in range(c * bpc, (c + 1) * bpc, bpr):
                            if n_ref >= cap:
                                return -1
                            t = max(earliest(st, _REFAB, rb), channel_tick[c], start_tick)
                            t = _slot(st, _REFAB, rb, c, t, channel_tick, mode, reg_mode, nmodch, switches)
                            issue(st, _REFAB, rb, -1, t)
                            channel_tick[c] = t + 1
                            ref_tick[n_ref] = t
                            ref_bank[n_ref] = rb
                            ref_before[n_ref] = k
                            n_ref += 1
                        ref_issued[c] += 1
        if not bank_state_ok(st, ck, b, row[k]):
            return -(k + 2)
        t = max(earliest(st, ck, b), channel_tick[c], start_tick)
        m0 = mode[c]
        t = _slot(st, ck, b, c, t, channel_tick, mode, reg_mode, nmodch, switches)
        out_sw[k] = 1 if mode[c] != m0 else 0
        issue(st, ck, b, row[k], t)
        out_tick[k] = t
        channel_tick[c] = t + 1
    return n_ref


_MAC_AB = int(Cmd.MAC_AB)
_CMD_NAMES = tuple(Cmd(c).name for c in range(N_CMDS))
_MODE_PHASE = PHASES.index("mode")


@njit(cache=True)
def _summarise(tick, cmd, bank, sw, start, bpc, done_off, phase_of, opens, closes, nccd_l, mode_cycles,
               end_c, last_c, counts, acc, dangling):
    """Totals of one timed instruction (commands channel-major, in tick order within a channel).

    Overwrites, per channel, `end_c` (when its last command's effect is done, at least `start`)
    and `last_c` (its last issue tick, at least `start`); `counts` per command; `acc`, the critical
    channel's cycles by phase: each command's gap to the one before it on that channel goes to its
    own phase, except a TMOD wait (at most `mode_cycles` before a command that changed the mode,
    `sw`) and a MAC_AB's gap beyond nCCD_L, which go to the mode phase and to the phase of the
    command before; the tail after the last issue goes to the phase of the command finishing last.
    Returns the channels' summed row-open cycles: open and close commands alternate within a
    channel; a row still open at the end counts until the channel's end, and one closed without
    being opened here (left open by an earlier instruction) counts from `start`. `dangling` is
    scratch of one entry per channel."""
    end_c[:] = start
    last_c[:] = start
    counts[:] = 0
    acc[:] = 0
    dangling[:] = 0
    n = tick.shape[0]
    active = 0
    for k in range(n):
        c = bank[k] // bpc
        ck = cmd[k]
        counts[ck] += 1
        done = tick[k] + done_off[ck]
        if done > end_c[c]:
            end_c[c] = done
        if tick[k] > last_c[c]:
            last_c[c] = tick[k]
        if opens[ck]:
            active -= tick[k]
            dangling[c] += 1
        elif closes[ck]:
            if dangling[c] > 0:
                active += tick[k]
                dangling[c] -= 1
            else:
                active += tick[k] - start
    crit = 0
    for c in range(end_c.shape[0]):
        if dangling[c] > 0:
            active += dangling[c] * end_c[c]
        if end_c[c] > end_c[crit]:
            crit = c
    prev_t = start
    prev_ck = -1
    last_t = start
    best_done = -1
    best_ck = -1
    for k in range(n):
        if bank[k] // bpc != crit:
            continue
        ck = cmd[k]
        gap = tick[k] - prev_t
        if sw[k] == 1:
            mode_part = min(gap, mode_cycles)
            gap -= mode_part
            acc[_MODE_PHASE] += mode_part
        base_gap = min(gap, nccd_l) if ck == _MAC_AB else gap
        acc[phase_of[ck]] += base_gap
        acc[phase_of[ck if prev_ck < 0 else prev_ck]] += gap - base_gap
        done = tick[k] + done_off[ck]
        if done > best_done:
            best_done = done
            best_ck = ck
        prev_t = tick[k]
        prev_ck = ck
        last_t = tick[k]
    if best_ck >= 0:
        acc[phase_of[best_ck]] += end_c[crit] - last_t
    return active


_PREA = int(Cmd.PREA)


@njit(cache=True)
def _flush_refresh(st, start, nrefi, ref_issued, channel_tick, mode, nmodch, switches, cmd, bank, row, out_tick,
                   out_sw, ref_scratch, done_off, nccd_l, end_c, last_c, counts, acc, dangling):
    """Every REFab owed at boundary `start` (per channel: floor(start / nrefi) - ref_issued[c]),
    preceded by a PREA where a bank of the channel is open, issued in order and summarised as
    `_summarise` does (its outputs: end_c ... dangling). Fills cmd/bank/row (-1) and out_tick,
    out_sw for the commands, `switches` (zeroed first) per channel, and advances ref_issued.
    Returns (status, n, active): status 0 with the number of commands n (0: nothing owed, nothing
    changed) and the summed row-open cycles; 1 if the buffers are shorter than the n commands
    needed (nothing changed); 2 if command n breaks its bank-state precondition. The constant
    tables (REGISTER_MODE, _PHASE_OF, _OPENS, _CLOSES) are compiled in: every argument costs
    dispatch time, and this runs at most PIM instruction boundaries."""
    switches[:] = 0
    bpc = st[H_BANKS_PER_CHANNEL]
    off_open = st[H_OPEN]
    n_ch = ref_issued.shape[0]
    n = 0
    for c in range(n_ch):
        owed = start // nrefi - ref_issued[c]
        if owed > 0:
            n += owed + 1
    if n > cmd.shape[0]:
        return 1, n, 0
    n = 0
    for c in range(n_ch):
        owed = start // nrefi - ref_issued[c]
        if owed <= 0:
            continue
        for b in range(c * bpc, (c + 1) * bpc):
            if st[off_open + b] != -1:
                cmd[n] = _PREA
                bank[n] = c * bpc
                n += 1
                break
        for _ in range(owed):
            cmd[n] = _REFAB
            bank[n] = c * bpc
            n += 1
        ref_issued[c] += owed
    if n == 0:
        return 0, 0, 0
    for k in range(n):
        row[k] = -1
    ret = _issue_pim(st, cmd[:n], bank[:n], row[:n], start, channel_tick, out_tick[:n], False, nrefi, 1,
                     ref_issued, ref_scratch, ref_scratch, ref_scratch, mode, REGISTER_MODE, nmodch, switches,
                     out_sw[:n])
    if ret < 0:
        return 2, -ret - 2, 0
    return 0, n, _summarise(out_tick[:n], cmd[:n], bank[:n], out_sw[:n], start, bpc, done_off, _PHASE_OF, _OPENS,
                            _CLOSES, nccd_l, nmodch, end_c, last_c, counts, acc, dangling)


@njit(cache=True, inline="always")
def _hist_entry(hist, w, node, k, count, start, floor):
    """Entry k (0 = oldest) of window-rule ring hist[w, node] made full: relative to `start`,
    clamped below at `floor` (a missing entry and one older than the longest window constrain
    nothing, now or after later ACTs)."""
    if k < count - hist[w, node, 0]:
        return floor
    return max(hist[w, node, 2 + (hist[w, node, 1] - count + k) % count] - start, floor)


@njit(cache=True)
def _canonical_hist(hist, start, win_count, floor, out):
    """Window-rule histories `hist` [rule, node, (n, pos, ticks...)] relative to `start`, into the
    zeroed `out`, in a canonical form: each ring full (n = count, pos = 0), in chronological order
    (`_hist_entry`)."""
    for w in range(hist.shape[0]):
        count = win_count[w]
        for node in range(hist.shape[1]):
            out[w, node, 0] = count
            for k in range(count):
                out[w, node, 2 + k] = _hist_entry(hist, w, node, k, count, start, floor)


@njit(cache=True, inline="always")
def _pairs_after(vals, start, out, k, pos):
    """Append (pos + i, vals[i] - start) to `out` at k for every entry after `start`; returns
    (the new k, the position after `vals`)."""
    for i in range(vals.shape[0]):
        if vals[i] > start:
            out[k] = pos + i
            out[k + 1] = vals[i] - start
            k += 2
    return k, pos + vals.shape[0]


@njit(cache=True)
def _memo_key(ready, hot, n_hot, open_row, closed, hist, channel_tick, mode, start, base, win_count, floor, out):
    """The device state relative to `start` (and open rows to row `base`) as (position, value)
    pairs written to `out`; returns how many values were written. Positions number the entries of
    a fixed layout (ready ticks, open rows, window histories, channel command slots, channel modes)
    and a pair is written only where the entry differs from its idle value (a ready tick not after
    `start`, a closed bank (`closed`), a history entry at `floor`, mode 0), so equal outputs <->
    equal states, in far fewer bytes than the dense state (the memo key is hashed at every lookup).
    With n_hot >= 0 only the ready ticks hot[:n_hot] (ascending) can be after `start`. The state is
    the device's (closed -1), or a memo row's end state (closed CLOSED_REL) with `start` and `base`
    relative to the replay that left it (`hwsim.dram_pim.serial`)."""
    k, pos = 0, ready.shape[0]
    if n_hot < 0:
        k, pos = _pairs_after(ready, start, out, 0, 0)
    for j in range(max(n_hot, 0)):
        i = hot[j]
        if ready[i] > start:
            out[k] = i
            out[k + 1] = ready[i] - start
            k += 2
    for b in range(open_row.shape[0]):
        if open_row[b] != closed:
            out[k] = pos + b
            out[k + 1] = open_row[b] - base
            k += 2
    pos += open_row.shape[0]
    for w in range(hist.shape[0]):
        count = win_count[w]
        for node in range(hist.shape[1]):
            if hist[w, node, 0] == 0:   # nothing recorded: every entry is `floor`, written as none
                pos += hist.shape[2]
                continue
            newest = hist[w, node, 2]   # the newest of all slots (filled or not) bounds the filled entries
            for j in range(3, 2 + count):
                newest = max(newest, hist[w, node, j])
            if newest - start <= floor:   # all of it too old: as above
                pos += hist.shape[2]
                continue
            for j in range(count):
                v = _hist_entry(hist, w, node, j, count, start, floor)
                if v != floor:
                    out[k] = pos + j
                    out[k + 1] = v - floor
                    k += 2
            pos += hist.shape[2]
    k, pos = _pairs_after(channel_tick, start, out, k, pos)
    k, pos = _pairs_after(mode, 0, out, k, pos)
    return k


@njit(cache=True, inline="always")
def memo_valid(row, lay, start, ref_on, nrefi, max_post, ref_issued, refresh_from):
    """A stored run (memo `data` row; `lay`: `Layout.offsets()`) had no refresh forced into it; it
    stays exact from `start` iff none would be forced now either: no channel would owe
    `max_post` REFab at its last refresh decision (`PimSystem._decisions`: an ACT/ACT_AB's slot).
    The latest decision against the channel that has issued the fewest REFab (`refresh_from`: the
    first tick at which one owes) bounds them all."""
    if not ref_on:
        return True
    fewest_issued = refresh_from // nrefi - 1
    if (start + row[lay[L_SCALARS] + S_LAST_DECISION]) // nrefi - fewest_issued < max_post:
        return True
    for c in range(ref_issued.shape[0]):
        if (start + row[lay[L_LAST_DECISION] + c]) // nrefi - ref_issued[c] >= max_post:
            return False
    return True


@njit(cache=True)
def _restore(ready, e_ready, open_row, e_open, hist, e_hist, channel_tick, e_ct, mode, e_mode, start, base):
    """Set the device state to a memo entry's end state (relative to start 0 and row 0) re-based at
    tick `start` and row `base`."""
    for i in range(ready.shape[0]):
        ready[i] = e_ready[i] + start
    for b in range(open_row.shape[0]):
        open_row[b] = e_open[b] + base if e_open[b] != CLOSED_REL else -1
    for w in range(hist.shape[0]):
        for node in range(hist.shape[1]):
            hist[w, node, 0] = e_hist[w, node, 0]
            hist[w, node, 1] = e_hist[w, node, 1]
            for j in range(2, hist.shape[2]):
                hist[w, node, j] = e_hist[w, node, j] + start
    for c in range(channel_tick.shape[0]):
        channel_tick[c] = e_ct[c] + start
        mode[c] = e_mode[c]


# ------------------------------------------------------------------------------------------------
# The timed PIM system
# ------------------------------------------------------------------------------------------------
class _FifoLists:
    """Keys -> lists of items, holding at most `capacity` items: the oldest are forgotten first."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self._lists: dict = {}
        self._order: deque = deque()

    def __bool__(self) -> bool:
        return bool(self._lists)

    def get(self, key) -> list:
        return self._lists.get(key, [])

    def add(self, key, item) -> None:
        self._lists.setdefault(key, []).append(item)
        self._order.append(key)
        if len(self._order) > self.capacity:
            old = self._order.popleft()
            self._lists[old].pop(0)
            if not self._lists[old]:
                del self._lists[old]


class _ByIdentity:
    """Values kept per object, by identity (placements hold arrays: they are not hashable), for at
    most `capacity` objects; the oldest is forgotten first. Each entry holds its object, so an id
    is never reused while it is kept."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self._items: dict[int, tuple] = {}

    def get(self, obj):
        got = self._items.get(id(obj))
        return got[1] if got is not None and got[0] is obj else None

    def put(self, obj, value) -> None:
        self._items.pop(id(obj), None)
        if len(self._items) >= self.capacity:
            self._items.pop(next(iter(self._items)))
        self._items[id(obj)] = (obj, value)


class _ArrayTable:
    """Tuples of int64 arrays -> a value, found by a hash and compared in full; the oldest of more
    than `capacity` entries are forgotten."""

    def __init__(self, capacity: int):
        self._by_hash = _FifoLists(capacity)

    @staticmethod
    def _hash(arrays) -> int:
        h = 0
        for a in arrays:
            h = int(key_hash(h, np.ascontiguousarray(a, np.int64), len(a)))
        return h

    def find(self, arrays):
        """The value stored for arrays equal to `arrays`, or None."""
        for other, value in self._by_hash.get(self._hash(arrays)):
            if all(np.array_equal(a, b) for a, b in zip(arrays, other)):
                return value
        return None

    def add(self, arrays, value) -> None:
        self._by_hash.add(self._hash(arrays), (arrays, value))


class PimSystem:
    """Timed PIM device: issues PIM instructions and keeps the clock and the counters.

    `tick` is the command-clock cycle at which the PIM is idle (every instruction starts at or after
    it and ends when its last data is back). With `record=True` every issued command is kept
    (`command_log()`, `trace_rows()`) and each result carries its own trace."""

    def __init__(self, pim_spec: PimSpec, model_placement=None, *, record: bool = False):
        self.spec = pim_spec
        self.dram: DramSpec = pim_spec.dram_spec
        self.model_placement = model_placement
        self.record = record
        self.device = Device(self.dram)
        self.issuer = StreamIssuer(self.device)
        t = self.dram.timing
        self.tCK_ps = t.tCK_ps
        self._done = np.ones(N_CMDS, dtype=np.int64)          # issue -> completion offsets
        self._done[[Cmd.RD, Cmd.RDA]] = t.nCL + t.nBL
        self._done[[Cmd.RD_MAC]] = t.nCLREG + t.nBL   # MAC registers: no array CAS latency
        self._done[[Cmd.WR, Cmd.WRA, Cmd.WR_GB, Cmd.WR_BIAS, Cmd.UPD]] = t.nCWL + t.nBL
        self._done[[Cmd.REFab]] = t.nRFC
        self._done[[Cmd.REFpb]] = max(t.nRFCpb, 1)
        ct = compile_timing(t)
        self._max_gap = int(ct.lat.max()) + t.nRFC + 1 + pim_spec.mode_switch_cycles
        # Window-rule history older than the longest window latency can no longer constrain anything.
        self._hist_floor = -int(max(ct.win_lat.max(), 0)) - 1
        self._win_count = ct.win_count.astype(np.int64)
        C = pim_spec.channels
        # `_summarise` outputs (end_c, last_c, counts, acc, dangling), overwritten by every instruction
        self._scratch = (np.zeros(C, np.int64), np.zeros(C, np.int64), np.zeros(N_CMDS, np.int64),
                         np.zeros(len(PHASES), np.int64), np.zeros(C, np.int64))
        # `_flush_refresh` command buffers (rows: cmd, bank, row, tick, mode-switch flag), grown on demand
        self._flush_buf = np.zeros((5, C * (pim_spec.max_postponed_refreshes + 2)), np.int64)
        self._flush_ref_scratch = np.zeros(1, np.int64)
        self._flush_switches = np.zeros(C, np.int64)
        self.reset()
        d = self.device   # `_memo_key` output: at most one (position, value) pair per state entry
        self._key_buf = np.zeros(2 * (d.ready.size + d.open_row.size + d.win_hist.size + 2 * C), np.int64)
        self.memo = MemoTable(MEMO_ENTRIES, Layout.of(d.ready.size, d.open_row.size, d.win_hist.size, C),
                              self._key_buf.size)
        self._signature_ids: dict = {}
        # origin placement (two per context length: score, context) -> (stream signature id, lowering or None)
        self._streams = _ByIdentity(16)
        self._stream_table = _ArrayTable(STREAMS_KEPT)   # streams -> signature id
        self._slot_streams = _FifoLists(STREAMS_KEPT)   # slot signatures -> [signature id]
        self._lowered = _ByIdentity(LOWERINGS_KEPT)   # placement -> lowering, of recent misses
        # runs with forced refreshes: (sig, key, REFab owed) -> [(phase lo, hi, REFab added, row, objects)]
        self._phased = _FifoLists(PHASED_KEPT)

    # ---- state -----------------------------------------------------------------------------------
    def reset(self) -> None:
        """Fresh device state, clock 0, counters 0 (the memo is kept: it is state-relative)."""
        self.device = Device(self.dram)
        self.issuer = StreamIssuer(self.device)
        self.tick = 0
        self.counts = np.zeros(N_CMDS, dtype=np.int64)
        self.row_hits = self.row_misses = 0
        self.bytes_in = self.bytes_out = 0
        self.macs = 0
        self.active_channel_cycles = 0
        self.ref_issued = np.zeros(self.spec.channels, dtype=np.int64)
        self._note_refreshes()
        self.mode = np.zeros(self.spec.channels, dtype=np.int64)     # all channels start in normal mode
        self.mode_switches = 0
        self.memo_hits = self.memo_misses = 0
        self._log: list[tuple[np.ndarray, ...]] = []

    def _note_refreshes(self) -> None:
        """After `ref_issued` changed: `_refresh_from`, the first tick at which some channel owes a
        REFab (kept so that the check at every instruction boundary is one integer compare)."""
        self._refresh_from = (min(self.ref_issued.tolist()) + 1) * self.dram.timing.nREFI

    @property
    def now_ps(self) -> int:
        return self.tick * self.tCK_ps

    def advance_to(self, tick: int) -> None:
        """Move the idle clock forward (e.g. while the ASIC computes)."""
        self.tick = max(self.tick, int(tick))

    # ---- operations ------------------------------------------------------------------------------
    def vmm(self, placement: Placement, *, memo: bool = True, start_tick: int | None = None) -> VmmResult:
        """y = x @ W per `placement`, starting at max(start_tick, tick). Under the deferred refresh
        policy the REFab owed at this instruction boundary are issued first and are part of the result
        (commands, cycles["refresh"]); the VMM proper is memoised on the state after them."""
        return self._instruction(start_tick, memo, *self.vmm_instruction(placement))

    def vmm_key(self, placement: Placement) -> tuple[int, int, int]:
        """(memo signature id, first row, useful MACs or -1) of `vmm(placement)`. A placement signed
        by its stream (`sign_by_stream`) has the signature of its lowered commands (rows relative,
        columns, bank accesses and row misses included), which placements with other useful MAC
        counts may share: its own MACs are given, to replace a replayed entry's; otherwise -1 (the
        signature determines them)."""
        origin = stream_origin(placement)
        if origin is None:
            return self.signature_id(placement_signature(placement)), placement.row_range[0], -1
        return self._stream(origin)[0], placement.row_range[0], placement.elements

    def _stream(self, origin: Placement) -> tuple:
        """(stream signature id, lowering or None) of a placement signed by its stream. Its slot
        signature (`slot_signature`: equal exactly when the slot tables, all that the lowering
        reads but the MAC count, are) is looked up first, if it has one: an equal one has the same
        stream. Otherwise the placement is lowered and its stream (commands, banks, rows relative
        to the first, columns, bank accesses and row misses) looked up, compared in full, found by
        a hash: the id of an equal one, else a new one. The last STREAMS_KEPT of each are kept."""
        got = self._streams.get(origin)
        if got is None:
            slots = slot_signature(origin)
            sid = next(iter(self._slot_streams.get(slots)), None) if slots is not None else None
            low = None
            if sid is None:
                low = lower_vmm(origin, self.spec)
                stream = low.stream(origin.row_range[0])
                sid = self._stream_table.find(stream)
                if sid is None:
                    sid = self.signature_id(("stream", len(self._signature_ids)))   # a new, unique signature
                    self._stream_table.add(stream, sid)
                if slots is not None:
                    self._slot_streams.add(slots, sid)
            got = (sid, low)
            self._streams.put(origin, got)
        return got

    def _origin_lowering(self, origin: Placement) -> LoweredOp:
        """The lowering of a stream-signed origin placement (made at most once while it is kept)."""
        sid, low = self._stream(origin)
        if low is None:
            low = lower_vmm(origin, self.spec)
            self._streams.put(origin, (sid, low))
        return low

    def vmm_instruction(self, placement: Placement) -> tuple:
        """(name, memo signature id, first row, MACs or -1, lower) of the instruction `vmm(placement)`
        runs (`vmm_key`)."""
        def lower() -> LoweredOp:
            origin = stream_origin(placement)
            if origin is None:   # kept: a weight VMM that misses (a run with a forced refresh) may miss again
                low = self._lowered.get(placement)
                if low is None:
                    low = lower_vmm(placement, self.spec)
                    self._lowered.put(placement, low)
            else:   # the origin's lowering, rows shifted as the placement's (lowering commutes with it)
                low = self._origin_lowering(origin)
                shift = placement.row_range[0] - origin.row_range[0]
                low = dataclasses.replace(low, row=np.where(low.row >= 0, low.row + shift, low.row))
            if invariants.enabled():
                invariants.check_vmm_reads_every_weight_once(placement, low, lanes=self.spec.mac_lanes,
                                                             banks_per_channel=self.spec.banks_per_channel)
            return low

        return (placement.name, *self.vmm_key(placement), lower)

    def lower(self, placement: Placement) -> LoweredOp:
        """The command arrays `vmm` would issue (no timing)."""
        return lower_vmm(placement, self.spec)

    def kv_append(self, layer: int, token: int, *, memo: bool = True, start_tick: int | None = None) -> VmmResult:
        """Write k_t and v_t of token `token` (0-based) of layer `layer` into the reserved KV region.
        Every layer's stream is layer 0's with rows shifted by the layer's region, so the append is
        memoised like a VMM (the other layers of a token replay the first one's, state permitting)."""
        return self._instruction(start_tick, memo, *self.kv_append_instruction(layer, token))

    def kv_append_key(self, layer: int, token: int) -> tuple[int, int, int]:
        """(memo signature id, first row, -1) of `kv_append(layer, token)` (as `vmm_key`)."""
        kv = self._kv()
        return self.signature_id(("kv_append", kv, int(token))), layer * kv.rows_per_layer, -1

    def kv_append_instruction(self, layer: int, token: int) -> tuple:
        """(name, memo signature id, first row, -1, lower) of the instruction `kv_append(layer, token)`
        runs."""
        kv = self._kv()
        return (f"L{layer}.attn.kv_write@{token}", *self.kv_append_key(layer, token),
                lambda: kv.append_commands(layer, token))

    def _instruction(self, start_tick: int | None, memo: bool, name: str, sig: int, base: int, macs: int,
                     lower) -> VmmResult:
        """One PIM instruction at max(start_tick, tick): the REFab owed at the boundary, then the
        command stream `lower()` (rows `base` + a layout that signature id `sig` identifies), replayed from
        the memo when an equal stream ran from an equal relative state."""
        start = self.tick if start_tick is None else max(self.tick, int(start_tick))
        pre = self.flush_refresh(start_tick=start)
        if pre is not None:
            start = pre.end_tick
        res = None
        if memo:
            n = self._rel_state(start, base)
            h, e = self.memo.lookup(sig, self._key_buf, n)
            if e >= 0 and self._memo_valid(e, start):
                self.memo_hits += 1
                res = self._replay(self.memo.data[e], self.memo.objects[e], name, start, base, macs)
            else:
                res = self.time_missed(sig, n, h, name, start, base, macs, lower)[0]
        else:
            res, _ = self._run(lower(), name, start, want_memo=False)
        return res if pre is None else _merge(pre, res)

    def time_missed(self, sig: int, n: int, h: int, name: str, start: int, base: int, macs: int,
                    lower) -> tuple[VmmResult, np.ndarray, bool]:
        """An instruction the memo table missed, key (sig, `_key_buf`[:n]) with hash h: replayed by
        start phase if a run with forced refreshes matches (`phased_replay`, a memo hit), else timed
        and remembered (a miss). Returns (its result, its memo row, whether the row went into the
        memo table)."""
        got = self.phased_replay(sig, n, name, start, base, macs)
        if got is not None:
            self.memo_hits += 1
            return got[0], got[1], False
        self.memo_misses += 1
        res, entry = self._run(lower(), name, start, want_memo=True, base=base)
        self.remember(sig, n, h, entry)
        return res, entry[0], entry[2]

    def remember(self, sig: int, n: int, h: int, entry: tuple) -> None:
        """Store the run `_run` just made under the key (sig, `_key_buf`[:n], hash h): in the memo,
        or, if a refresh was forced into it, as a variant valid over its interval of start phases
        (`_refresh_phases`; the key then includes the REFab owed per channel at the start)."""
        row, obj, storable, phased = entry
        if storable:
            self.memo.insert(sig, self._key_buf, n, h, row, obj)
            return
        (lo, hi), owed, added = phased
        key = (sig, self._key_buf[:n].tobytes(), owed)
        self._phased.add(key, (lo, hi, added, row, obj))

    def phased_replay(self, sig: int, n: int, name: str, start: int, base: int, macs: int) -> tuple | None:
        """Replay a stored run with forced refreshes whose key is (sig, `_key_buf`[:n], REFab owed
        now) and whose phase interval holds start mod tREFI: (its result, its memo row), or None."""
        if not self._phased:
            return None
        nrefi = self.dram.timing.nREFI
        key = (sig, self._key_buf[:n].tobytes(), tuple((start // nrefi - self.ref_issued).tolist()))
        phase = start % nrefi
        for lo, hi, added, row, obj in self._phased.get(key):
            if lo <= phase < hi:
                self.ref_issued += added
                self._note_refreshes()
                return self._replay(row, obj, name, start, base, macs), row
        return None

    def signature_id(self, signature) -> int:
        """The memo's integer id of an instruction signature (`placement_signature`, or a KV
        append's tuple)."""
        i = self._signature_ids.get(signature)
        if i is None:
            i = self._signature_ids[signature] = len(self._signature_ids)
        return i

    def kv_score_placement(self, layer: int, ctx: int) -> Placement:
        """Placement of q . K^T over the first `ctx` cached tokens (x = q, y[h*ctx + t])."""
        return self._kv().score_placement(layer, ctx)

    def kv_context_placement(self, layer: int, ctx: int) -> Placement:
        """Placement of p . V over the first `ctx` cached tokens (x = p head-major, y[h*d_head + i])."""
        return self._kv().context_placement(layer, ctx)

    def _kv(self):
        if self.model_placement is None:
            raise ValueError("no model placed: create PimSystem(pim_spec, place_model(...))")
        return self.model_placement.kv

    # ---- refresh ---------------------------------------------------------------------------------
    def refresh_due(self, tick: int | None = None) -> int:
        """REFab owed (the most of any channel) at `tick` (default: now) under the deferred policy."""
        if self.spec.refresh == "none":
            return 0
        t = self.tick if tick is None else int(tick)
        return int(max(0, (t // self.dram.timing.nREFI - self.ref_issued).max()))

    def flush_refresh(self, *, start_tick: int | None = None) -> VmmResult | None:
        """Issue every owed REFab (all channels), at an instruction boundary; None if none is owed."""
        start = self.tick if start_tick is None else max(self.tick, int(start_tick))
        if self.spec.refresh == "none" or start < self._refresh_from:
            return None
        t = self.dram.timing
        switches = self._flush_switches
        while True:
            cmd, bank, row, tick, sw = self._flush_buf
            status, n, active = _flush_refresh(self.device.state, int(start), t.nREFI, self.ref_issued,
                                               self.issuer.channel_tick, self.mode, int(self.spec.mode_switch_cycles),
                                               switches, cmd, bank, row, tick, sw, self._flush_ref_scratch,
                                               self._done, t.nCCD_L, *self._scratch)
            if status != 1:
                break
            self._flush_buf = np.zeros((5, 2 * n), np.int64)
        if status == 2:
            raise RuntimeError(f"illegal refresh stream: {Cmd(int(cmd[n])).name} to bank {int(bank[n])} breaks its "
                               "bank-state precondition (internal error)")
        self._note_refreshes()
        if n == 0:
            return None
        res = self._result("refresh", start, active, switches, 0, 0, 0)
        trace = None
        if self.record:
            trace = CommandLog(tick[:n].copy(), cmd[:n].copy(), bank[:n].copy(), row[:n].copy(),
                               np.full(n, -1, np.int64))
            res = dataclasses.replace(res, trace=trace)
        self._account(res, trace, self._scratch[2])
        return res

    # ---- totals ----------------------------------------------------------------------------------
    def totals(self) -> dict:
        """Counters over everything issued since `reset` (commands, bytes, hits, active time)."""
        return {
            "tick": self.tick, "tCK_ps": self.tCK_ps, "channels": self.spec.channels,
            "commands": {Cmd(c).name: int(n) for c, n in enumerate(self.counts) if n},
            "row_hits": self.row_hits, "row_misses": self.row_misses,
            "bytes_in": self.bytes_in, "bytes_out": self.bytes_out, "macs": self.macs,
            "active_channel_cycles": self.active_channel_cycles, "mode_switches": self.mode_switches,
            "memo_hits": self.memo_hits, "memo_misses": self.memo_misses,
        }

    def command_log(self) -> CommandLog:
        """Every command issued since `reset` (record=True), sorted by tick (stable)."""
        if not self.record:
            raise ValueError("create the PimSystem with record=True to keep the command log")
        if not self._log:
            e = np.zeros(0, np.int64)
            return CommandLog(e, e, e, e, e)
        return CommandLog(*(np.concatenate([x[i] for x in self._log]) for i in range(5))).in_issue_order()

    def trace_rows(self) -> list[tuple]:
        return trace_rows(self.dram, self.command_log())

    def trace_csv(self) -> str:
        return command_csv(self.dram, self.command_log())

    # ---- internals -------------------------------------------------------------------------------
    def _rel_hist(self, start: int) -> np.ndarray:
        """Window-rule (tFAW) histories relative to `start`, in a canonical form (`_canonical_hist`)."""
        out = np.zeros_like(self.device.win_hist)
        _canonical_hist(self.device.win_hist, int(start), self._win_count, self._hist_floor, out)
        return out

    def _rel_state(self, start: int, base: int) -> int:
        """Like `Device.snapshot(start)`, with open rows relative to the placement's first row and the
        channels' command slots, as `_memo_key` pairs in `_key_buf` (returns their count): equal
        pairs -> identical behaviour from `start` on, up to a row offset."""
        d = self.device
        return _memo_key(d.ready.reshape(-1), NO_HOT, -1, d.open_row, -1, d.win_hist, self.issuer.channel_tick,
                         self.mode, int(start), int(base), self._win_count, self._hist_floor, self._key_buf)

    def _memo_valid(self, e: int, start: int) -> bool:
        """`memo_valid` of memo entry e."""
        return bool(memo_valid(self.memo.data[e], self.memo.offsets, int(start), self.spec.refresh == "deferred",
                               self.dram.timing.nREFI, self.spec.max_postponed_refreshes, self.ref_issued,
                               self._refresh_from))

    def _replay(self, row: np.ndarray, obj: tuple, name: str, start: int, base: int, macs: int) -> VmmResult:
        """A stored run (memo row and (relative result, relative trace)) re-based at tick `start` and
        row `base` (its useful MACs replaced by `macs` >= 0)."""
        d = self.device
        lay = self.memo.layout
        _restore(d.ready.reshape(-1), row[lay.ready:lay.open], d.open_row, row[lay.open:lay.hist], d.win_hist,
                 row[lay.hist:lay.channel_tick].reshape(d.win_hist.shape), self.issuer.channel_tick,
                 row[lay.channel_tick:lay.mode], self.mode, row[lay.mode:lay.last_decision], int(start), int(base))
        r, rel_trace = obj
        trace = None
        if rel_trace is not None:
            tk, cm, bk, rw, cl = rel_trace
            trace = CommandLog(tk + start, cm, bk, np.where(rw >= 0, rw + base, rw), cl)
        res = VmmResult(name, start, r.end_tick + start, r.tCK_ps, r.channels, r.commands, r.row_hits, r.row_misses,
                        r.bytes_in, r.bytes_out, r.macs if macs < 0 else macs, r.cycles, r.active_channel_cycles,
                        r.refreshes, r.mode_switches, tuple(x + start for x in r.channel_end_tick), True, trace)
        self._account(res, trace, row[lay.counts:lay.cycles])
        return res

    def _run(self, low: LoweredOp, name: str, start: int, *, want_memo: bool, base: int | None = None):
        d = self.device
        n = len(low.cmd)
        t = self.dram.timing
        ref_on = self.spec.refresh == "deferred"
        out = np.empty(n, dtype=np.int64)
        cap = 64 + 4 * self.spec.channels * self.spec.max_postponed_refreshes + (n * self._max_gap) // t.nREFI
        ref_tick = np.empty(cap, np.int64)
        ref_bank = np.empty(cap, np.int64)
        ref_before = np.empty(cap, np.int64)
        switches = np.zeros(self.spec.channels, np.int64)
        out_sw = np.zeros(n, np.int64)
        ct0, ri0 = self.issuer.channel_tick.copy(), self.ref_issued.copy()
        ret = _issue_pim(d.state, low.cmd, low.bank, low.row, int(start), self.issuer.channel_tick, out,
                         ref_on, t.nREFI, self.spec.max_postponed_refreshes, self.ref_issued,
                         ref_tick, ref_bank, ref_before, self.mode, REGISTER_MODE,
                         int(self.spec.mode_switch_cycles), switches, out_sw)
        if ret == -1:
            raise RuntimeError("refresh buffer overflow (internal error)")
        if ret < -1:
            k = -ret - 2
            raise RuntimeError(f"illegal PIM command stream: {Cmd(int(low.cmd[k])).name} to bank {int(low.bank[k])} "
                               f"row {int(low.row[k])} breaks its bank-state precondition (internal error)")
        n_ref = ret
        if n_ref:
            self._note_refreshes()
        # Combined command arrays (refreshes spliced in before the command that triggered them).
        if n_ref:
            pos = np.arange(n) + np.searchsorted(ref_before[:n_ref], np.arange(n), side="right")
            rpos = ref_before[:n_ref] + np.arange(n_ref)
            N = n + n_ref
            tick = np.empty(N, np.int64); cmd = np.empty(N, np.int64); bank = np.empty(N, np.int64)
            row = np.empty(N, np.int64); col = np.empty(N, np.int64)
            tick[pos], cmd[pos], bank[pos], row[pos], col[pos] = out, low.cmd, low.bank, low.row, low.col
            tick[rpos], cmd[rpos], bank[rpos] = ref_tick[:n_ref], _REFAB, ref_bank[:n_ref]
            row[rpos] = col[rpos] = -1
            sw = np.zeros(N, np.int64)
            sw[pos] = out_sw
        else:
            tick, cmd, bank, row, col = out, low.cmd, low.bank, low.row, low.col
            sw = out_sw
        end_c, last_c, counts, acc, dangling = self._scratch
        active = _summarise(tick, cmd, bank, sw, int(start), self.spec.banks_per_channel, self._done, _PHASE_OF,
                            _OPENS, _CLOSES, t.nCCD_L, int(self.spec.mode_switch_cycles), end_c, last_c, counts,
                            acc, dangling)
        res = self._result(name, start, active, switches, low.bank_accesses - low.row_misses, low.row_misses,
                           low.macs)
        end = res.end_tick
        trace = CommandLog(tick, cmd, bank, row, col) if self.record else None
        if trace is not None:
            res = dataclasses.replace(res, trace=trace)
        entry = None   # (memo row, (relative result, relative trace), storable: no refresh was forced,
        if want_memo and base is not None:   # else (phase interval, REFab owed at the start, REFab added))
            rel = dataclasses.replace(res, start_tick=0, end_tick=end - start, trace=None,
                                      channel_end_tick=tuple(e - start for e in res.channel_end_tick))
            rel_trace = (tick - start, cmd, bank, np.where(row >= 0, row - base, row), col) if self.record else None
            decisions = self._decisions(low, out, start, ct0)
            phased = None
            if n_ref:
                phased = (self._refresh_phases(decisions[1], start), tuple((start // t.nREFI - ri0).tolist()),
                          self.ref_issued - ri0)
            entry = (self._memo_row(rel, counts, start, base, self._last_decisions(*decisions)),
                     (rel, rel_trace), n_ref == 0, phased)
        self._account(res, trace, counts)
        return res, entry

    def _decisions(self, low: LoweredOp, out: np.ndarray, start: int, ct0: np.ndarray) -> tuple:
        """(channel, t0 - start) of every refresh decision of a run just made: `_issue_pim` decides
        at every ACT/ACT_AB from floor(t0 / tREFI), t0 the channel's next free slot (the command
        slot at the start, `ct0`, or one after the channel's previous command), at least `start`.
        Streams are channel-major (as `_summarise` needs), so that command is the one before."""
        c = low.bank // self.spec.banks_per_channel
        prev = ct0[c]   # (a fancy-indexed copy)
        same = np.flatnonzero(c[1:] == c[:-1]) + 1
        prev[same] = out[same - 1] + 1
        act = _OPENS[low.cmd]
        return c[act], np.maximum(prev[act], start) - start

    def _last_decisions(self, c: np.ndarray, delta: np.ndarray) -> np.ndarray:
        """Per channel, its last refresh decision tick relative to the start (of the decisions
        (channel `c`, `delta`) from `_decisions`), or NO_DECISION: a replay from another start forces
        no refresh iff no channel owes max_postponed_refreshes REFab there (`memo_valid`)."""
        last = np.full(self.spec.channels, NO_DECISION, np.int64)
        if len(c):   # channel-major: one block per channel
            first = np.flatnonzero(np.r_[True, c[1:] != c[:-1]])
            last[c[first]] = np.maximum.reduceat(delta, first)
        return last

    def _refresh_phases(self, delta: np.ndarray, start: int) -> tuple[int, int]:
        """[lo, hi): the start phases (start mod tREFI) from which a run that started at `start` and
        just had refreshes forced into it makes exactly the same refresh decisions (their ticks
        relative to the start `delta`, `_decisions`): with the state and the REFab owed at the start
        equal, the same floors give the same run shifted in time."""
        nrefi = self.dram.timing.nREFI
        phase = start % nrefi
        m = (phase + delta) // nrefi
        lo = max(0, int((nrefi * m - delta).max(initial=0)))
        hi = min(nrefi, int((nrefi * (m + 1) - delta).min(initial=nrefi)))
        return lo, hi

    def _memo_row(self, rel: VmmResult, counts: np.ndarray, start: int, base: int, decided: np.ndarray) -> np.ndarray:
        """The memo `data` row of an instruction that started at `start` and has just run: the
        device's end state, the result `rel` (already relative) and the channels' last refresh
        decisions `decided` (`_last_decisions`), per `MemoTable.layout`."""
        d, lay = self.device, self.memo.layout
        out = np.empty(lay.width, np.int64)
        out[lay.ready:lay.open] = np.maximum(d.ready.reshape(-1) - start, 0)
        out[lay.open:lay.hist] = np.where(d.open_row >= 0, d.open_row - base, CLOSED_REL)
        out[lay.hist:lay.channel_tick] = self._rel_hist(start).reshape(-1)
        out[lay.channel_tick:lay.mode] = np.maximum(self.issuer.channel_tick - start, 0)
        out[lay.mode:lay.last_decision] = self.mode
        out[lay.last_decision:lay.channel_end] = decided
        out[lay.channel_end:lay.counts] = rel.channel_end_tick
        out[lay.counts:lay.cycles] = counts
        out[lay.cycles:lay.scalars] = [rel.cycles[p] for p in PHASES]
        out[lay.scalars:lay.boundary] = (rel.end_tick, rel.row_hits, rel.row_misses, rel.bytes_in, rel.bytes_out,
                                         rel.macs, rel.active_channel_cycles, rel.mode_switches,
                                         int(decided.max()))
        out[lay.boundary:] = 0
        return out

    def _result(self, name: str, start: int, active: int, switches: np.ndarray, row_hits: int, row_misses: int,
                macs: int) -> VmmResult:
        """The VmmResult of the instruction `_summarise` just totalled into the scratch arrays."""
        end_c, _, counts, acc, _ = self._scratch
        n = counts.tolist()        # small arrays: Python lists beat numpy's per-call overhead
        ends = end_c.tolist()
        bb = self.spec.burst_bytes
        return VmmResult(name, start, max(ends), self.tCK_ps, self.spec.channels,
                         {_CMD_NAMES[c]: v for c, v in enumerate(n) if v}, row_hits, row_misses,
                         (n[Cmd.WR_GB] + n[Cmd.WR] + n[Cmd.WRA] + n[Cmd.WR_BIAS]) * bb,
                         (n[Cmd.RD_MAC] + n[Cmd.RD] + n[Cmd.RDA]) * bb, macs,
                         dict(zip(PHASES, acc.tolist())), max(active, 0), n[Cmd.REFab], sum(switches.tolist()),
                         tuple(ends))

    def _account(self, res: VmmResult, trace: CommandLog | None, counts: np.ndarray) -> None:
        """Add an instruction (its commands per Cmd in `counts`) to the totals and the log."""
        self.counts += counts
        self.row_hits += res.row_hits
        self.row_misses += res.row_misses
        self.bytes_in += res.bytes_in
        self.bytes_out += res.bytes_out
        self.macs += res.macs
        self.active_channel_cycles += res.active_channel_cycles
        self.mode_switches += res.mode_switches
        self.tick = max(self.tick, res.end_tick)
        if self.record and trace is not None:
            self._log.append((trace.tick, trace.cmd, trace.bank, trace.row, trace.column))


def _merge(pre: VmmResult, res: VmmResult) -> VmmResult:
    """`pre` (a boundary refresh ending where `res` starts) folded into `res`."""
    commands = dict(res.commands)
    for k, v in pre.commands.items():
        commands[k] = commands.get(k, 0) + v
    cycles = dict(res.cycles)
    cycles["refresh"] += pre.latency_cycles
    trace = res.trace
    if pre.trace is not None and res.trace is not None:
        trace = CommandLog(*(np.concatenate([getattr(pre.trace, k), getattr(res.trace, k)])
                             for k in ("tick", "cmd", "bank", "row", "column")))
    return dataclasses.replace(res, start_tick=pre.start_tick, commands=commands, cycles=cycles,
                               bytes_in=res.bytes_in + pre.bytes_in, bytes_out=res.bytes_out + pre.bytes_out,
                               active_channel_cycles=res.active_channel_cycles + pre.active_channel_cycles,
                               refreshes=res.refreshes + pre.refreshes,
                               mode_switches=res.mode_switches + pre.mode_switches, trace=trace)


# ------------------------------------------------------------------------------------------------
# Energy
# ------------------------------------------------------------------------------------------------
def pim_energy_counts(obj, *, elapsed_ns: float | None = None) -> dict[str, float]:
    """Action counts for the `pim_gpt_dram` energy table (`table.breakdown_pJ(counts)`).

    `obj`: a VmmResult, a list of them, or `PimSystem.totals()`. Keys: DRAM/PIM command names
    (events, pJ each), `pim_io` (bits over the ASIC-PIM interface, pJ/bit), `pim_standby_active`
    and `pim_standby_precharged` (channel-nanoseconds with / without a row open, mW). Standby time
    covers the op's own latency, or `elapsed_ns` of wall time when given (idle time is precharged)."""
    out: dict[str, float] = {}
    if isinstance(obj, (list, tuple)):
        for r in obj:
            _add_energy_counts(out, *_energy_fields(r, None))
        if elapsed_ns is not None and obj:
            ch = obj[0].channels
            act = out.get("pim_standby_active", 0.0)
            out["pim_standby_precharged"] = max(ch * elapsed_ns - act, 0.0)
        return out
    _add_energy_counts(out, *_energy_fields(obj, elapsed_ns))
    return out


def _energy_fields(obj, elapsed_ns: float | None) -> tuple:
    """(commands, channels, tCK_ps, I/O bytes, row-open channel cycles, standby span ns) of a
    VmmResult or of `PimSystem.totals()`."""
    if isinstance(obj, VmmResult):
        span_ns = obj.latency_ns if elapsed_ns is None else float(elapsed_ns)
        return (obj.commands, obj.channels, obj.tCK_ps, obj.bytes_in + obj.bytes_out, obj.active_channel_cycles,
                span_ns)
    if isinstance(obj, dict) and "commands" in obj:
        tck = obj["tCK_ps"]
        span_ns = obj["tick"] * tck / 1000.0 if elapsed_ns is None else float(elapsed_ns)
        return (obj["commands"], obj["channels"], tck, obj["bytes_in"] + obj["bytes_out"],
                obj["active_channel_cycles"], span_ns)
    raise TypeError(f"expected a VmmResult, a list of them or PimSystem.totals(); got {type(obj).__name__}")


def _add_energy_counts(out: dict, commands: dict, channels: int, tck: int, bytes_io: int, active_cycles: int,
                       span_ns: float) -> None:
    """Add one result's counts into `out` (keys in first-seen order, as the tables print them)."""
    get = out.get
    for k, v in commands.items():
        if v:
            out[k] = get(k, 0) + float(v)
    out["pim_io"] = get("pim_io", 0) + float(bytes_io * 8)
    active_ns = active_cycles * tck / 1000.0
    out["pim_standby_active"] = get("pim_standby_active", 0) + active_ns
    out["pim_standby_precharged"] = get("pim_standby_precharged", 0) + max(channels * span_ns - active_ns, 0.0)
