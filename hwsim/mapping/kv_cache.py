"""KV-cache layout in the PIM banks, attention placements against it, and the append commands.

K is stored row-major (each token's key contiguous, split into heads), V column-major (each
output dimension's values over the tokens contiguous), as in PIM-GPT (pim-gpt.md §6).

K (scores s[h, t] = q_h . k_t,h, reduction over d_head):
  * token t -> channel t mod C, bank (t // C) mod B, token slot s = t // (C*B): consecutive tokens
    go to different channels first, so short contexts already use every channel;
  * heads are grouped by GB window (`hpw` = GB elements // padded d_head heads per window: 16 for
    d_head = 64) so that a row only ever needs one window; inside head group g (n_g heads) the
    segment (s, h') has linear index s*n_g + h', `per_row` = row_elems // padded d_head to a row;
  * every bank uses the same (row, col) for the same (slot, head), so banks in lockstep MAC the
    same q_h run from the GB (the lockstep rule), each against its own token.
V (context o[h, i] = sum_t p[h, t] v_t[h, i], reduction over tokens):
  * dimension i of head h -> bank i mod B of "dim group" gid = h*ng + i // B (ng = ceil(d_head/B));
    dim groups are split over the channels in contiguous blocks (balanced to +-1 group, and a head
    lives in at most two channels, so its probabilities are broadcast at most twice);
  * a dim group owns `rows_per_dim` = ceil(context / tokens_per_row) rows (the same rows in all 16
    banks); token t sits at row t // tokens_per_row, element t mod tokens_per_row.
Appending token t (k_t, v_t), with normal DRAM commands:
  * K: one bank; per touched row ACT, one WR burst per 32 B column, PRE;
  * V: every channel, per dim group ACT_AB (all 16 banks hold the group's row), one masked WR burst
    per bank (2 useful bytes of 32: the data mask keeps the other 15 elements), PREA.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import TYPE_CHECKING

import numpy as np

from hwsim.dram_pim.commands import Cmd
from hwsim.errors import InputError
from hwsim.mapping.lowering import LoweredOp
from hwsim.mapping.partition import Placement, make_placement, set_signature, sign_by_stream, window_elems

if TYPE_CHECKING:  # pragma: no cover
    from hwsim.dram_pim.pim import PimSpec
    from hwsim.models import ModelSpec


@dataclass(frozen=True)
class KvLayout:
    """Geometry of the reserved KV region (rows `base_row` .. `base_row + total_rows` of every bank)."""

    n_layers: int
    d_model: int
    n_heads: int
    d_head: int
    context: int          # tokens reserved per layer
    channels: int
    banks: int            # per channel
    row_elems: int
    lanes: int
    window: int           # GB window elements
    base_row: int

    @classmethod
    def build(cls, model: "ModelSpec", ps: "PimSpec", context: int, *, base_row: int = 0) -> "KvLayout":
        d_head = model.d_model // model.n_heads
        win = window_elems(ps)
        if -(-d_head // ps.mac_lanes) * ps.mac_lanes > win:
            raise InputError(None, "model", f"d_head={d_head} is longer than a global-buffer window ({win} "
                                            "elements); heads would have to be tiled (not modelled)")
        return cls(model.n_layers, model.d_model, model.n_heads, d_head, int(context), ps.channels,
                   ps.banks_per_channel, ps.row_elems, ps.mac_lanes, win, int(base_row))

    # ---- derived geometry (cached: the KV-append and attention placements ask for it per instruction) ----
    @cached_property
    def head_pad(self) -> int:
        return -(-self.d_head // self.lanes) * self.lanes

    @cached_property
    def heads_per_window(self) -> int:
        return self.window // self.head_pad

    @cached_property
    def per_row(self) -> int:
        """Head segments of K per row."""
        return self.row_elems // self.head_pad

    @cached_property
    def token_slots(self) -> int:
        return -(-self.context // (self.channels * self.banks))

    @cached_property
    def head_groups(self) -> list[tuple[int, int]]:
        """(first head, heads) of each GB-window head group."""
        hpw = self.heads_per_window
        return [(h, min(hpw, self.n_heads - h)) for h in range(0, self.n_heads, hpw)]

    @cached_property
    def k_group_rows(self) -> list[int]:
        return [-(-self.token_slots * n // self.per_row) for _, n in self.head_groups]

    @cached_property
    def k_rows(self) -> int:
        return sum(self.k_group_rows)

    @cached_property
    def tokens_per_row(self) -> int:
        return (min(self.row_elems, self.window) // self.lanes) * self.lanes

    @cached_property
    def rows_per_dim(self) -> int:
        return -(-self.context // self.tokens_per_row)

    @cached_property
    def groups_per_head(self) -> int:
        return -(-self.d_head // self.banks)

    @cached_property
    def n_dim_groups(self) -> int:
        return self.n_heads * self.groups_per_head

    @cached_property
    def group_starts(self) -> np.ndarray:
        """First dim group of each channel (contiguous blocks), plus the end."""
        c = np.arange(self.channels + 1, dtype=np.int64)
        return (c * self.n_dim_groups) // self.channels

    @cached_property
    def v_rows(self) -> int:
        return int(np.diff(self.group_starts).max()) * self.rows_per_dim

    @cached_property
    def rows_per_layer(self) -> int:
        return self.k_rows + self.v_rows

    @cached_property
    def total_rows(self) -> int:
        return self.n_layers * self.rows_per_layer

    def k_base(self, layer: int) -> int:
        return self.base_row + layer * self.rows_per_layer

    def v_base(self, layer: int) -> int:
        return self.k_base(layer) + self.k_rows

    def _check(self, layer: int, ctx: int | None = None, token: int | None = None) -> None:
        if not (isinstance(layer, (int, np.integer)) and 0 <= layer < self.n_layers):
            raise InputError(None, "layer", f"got {layer!r}; expected 0..{self.n_layers - 1}")
        if ctx is not None and not (isinstance(ctx, (int, np.integer)) and 1 <= ctx <= self.context):
            raise InputError(None, "ctx", f"got {ctx!r}; expected 1..{self.context} (reserved KV tokens)")
        if token is not None and not (isinstance(token, (int, np.integer)) and 0 <= token < self.context):
            raise InputError(None, "token", f"got {token!r}; expected 0..{self.context - 1} (reserved KV tokens)")

    # ---- K addressing ----------------------------------------------------------------------------
    def _k_addr(self, t: np.ndarray, h: np.ndarray):
        """(channel, bank, row relative to k_base, col_elem) of head h of token t."""
        C, B = self.channels, self.banks
        ch, bk, s = t % C, (t // C) % B, t // (C * B)
        hpw = self.heads_per_window
        g = h // hpw
        n_g = np.minimum(hpw, self.n_heads - g * hpw)
        lin = s * n_g + h % hpw
        grow = np.concatenate([[0], np.cumsum(self.k_group_rows)[:-1]]).astype(np.int64)
        row = grow[g] + lin // self.per_row
        col = (lin % self.per_row) * self.head_pad
        return ch, bk, row, col

    # ---- V addressing ----------------------------------------------------------------------------
    def _v_group(self, gid: np.ndarray):
        """(channel, group slot within the channel) of dim groups `gid`."""
        starts = self.group_starts
        ch = np.searchsorted(starts, gid, side="right") - 1
        return ch, gid - starts[ch]

    # ---- placements ------------------------------------------------------------------------------
    def score_placement(self, layer: int, ctx: int) -> Placement:
        """q . K^T for `ctx` tokens: x = q (d_model), y[h*ctx + t] = q_h . k_t,h (block-diagonal W)."""
        self._check(layer, ctx)
        return _score_rel(self, int(ctx)).shifted(self.k_base(layer), f"L{layer}.attn.score@{ctx}")

    def context_placement(self, layer: int, ctx: int) -> Placement:
        """p . V for `ctx` tokens: x = probabilities (n_heads*ctx, head-major), y[h*d_head + i]."""
        self._check(layer, ctx)
        return _context_rel(self, int(ctx)).shifted(self.v_base(layer), f"L{layer}.attn.context@{ctx}")

    # ---- append ----------------------------------------------------------------------------------
    def append_commands(self, layer: int, token: int) -> LoweredOp:
        """ACT/WR/PRE commands writing k_t (row-major) and v_t (column-major), channel-major order."""
        self._check(layer, token=token)
        rel = _append_rel(self, int(token))
        return dataclasses.replace(rel, row=rel.row + layer * self.rows_per_layer)

    def _append_layer0(self, t: int) -> LoweredOp:
        """`append_commands(0, t)`: every layer's stream is this one with its rows shifted by the
        layer's offset (the layers' K and V regions have the same layout). Channel-major: each
        channel's V writes, with the K writes before them in the K slot's channel."""
        B, L = self.banks, self.lanes
        # K: all heads of token t, one bank; an ACT, the row's writes and a PRE per K row.
        h = np.arange(self.n_heads, dtype=np.int64)
        kch, kbk, krow, kcol = self._k_addr(np.full_like(h, t), h)
        kch, kbk = int(kch[0]), int(kbk[0])
        per_head = -(-self.d_head // L)
        kr = np.repeat(krow + self.k_base(0), per_head)
        kc = np.repeat(kcol // L, per_head) + np.tile(np.arange(per_head, dtype=np.int64), self.n_heads)
        o = np.lexsort((kc, kr))
        kr, kc = kr[o], kc[o]
        new = np.r_[True, kr[1:] != kr[:-1]]
        starts = np.flatnonzero(new)
        nk = len(kr) + 2 * len(starts)
        k_cmd = np.empty(nk, np.int64)
        k_row = np.empty(nk, np.int64)
        k_col = np.full(nk, -1, np.int64)
        pos = np.arange(len(kr)) + 1 + 2 * (np.cumsum(new) - 1)
        k_cmd[pos], k_row[pos], k_col[pos] = int(Cmd.WR), kr, kc
        act = pos[starts] - 1
        pre = pos[np.r_[starts[1:], len(kr)] - 1] + 1
        k_cmd[act], k_row[act] = int(Cmd.ACT), kr[starts]
        k_cmd[pre], k_row[pre] = int(Cmd.PRE), kr[starts]
        # V: the same commands for every token of a row block but their column.
        v_cmd, v_bank, v_row, v_wr, v_start, v_writes = _v_append(self, t // self.tokens_per_row)
        v_col = np.where(v_wr, (t % self.tokens_per_row) // L, -1)
        at = int(v_start[kch])
        join = lambda v, k: np.concatenate([v[:at], k, v[at:]])  # noqa: E731
        # Misses: one per K row, and each V write (its bank's one access to the row its ACT_AB opened).
        return LoweredOp(join(v_cmd, k_cmd), join(v_bank, np.full(nk, kch * B + kbk, np.int64)), join(v_row, k_row),
                         join(v_col, k_col), macs=0, bank_accesses=len(kr) + v_writes,
                         row_misses=len(starts) + v_writes)

    def append_bytes(self) -> int:
        """Useful bytes of one token's k and v (the bus carries whole bursts: see the op's bytes_in)."""
        return 2 * self.d_model * 2


@lru_cache(maxsize=64)
def _append_rel(kv: KvLayout, token: int) -> LoweredOp:
    return kv._append_layer0(token)


# Attention placements: every layer of a token uses the same context length, and no later token
# does, so a few entries give every hit; 4,096 kept one placement per context length (1.4 MB each
# at a 2,048-token GPT-3 context) and pushed a full-context run's RSS past 2.5 GB.
_ATTENTION_PLACEMENTS_KEPT = 16


@lru_cache(maxsize=4)
def _v_append(kv: KvLayout, block: int) -> tuple:
    """The V part of appending a token of row block `block` (token // tokens_per_row), channel by
    channel: per dim group an ACT_AB, one masked write per bank holding a dim of it, a PREA.
    Returns (cmd, bank, row, is_write, first index of each channel's commands, V writes); a token's
    columns are its slot in the row block (`_append_layer0`)."""
    B = kv.banks
    gid = np.arange(kv.n_dim_groups, dtype=np.int64)
    vch, vslot = kv._v_group(gid)
    vrow = kv.v_base(0) + vslot * kv.rows_per_dim + block
    nb = np.minimum(B, kv.d_head - (gid % kv.groups_per_head) * B)   # banks holding a dim
    per = nb + 2
    first = np.concatenate([[0], np.cumsum(per)[:-1]])
    tot = int(per.sum())
    cmd = np.full(tot, int(Cmd.WR), np.int64)
    cmd[first], cmd[first + per - 1] = int(Cmd.ACT_AB), int(Cmd.PREA)
    bank = vch.repeat(per) * B + (np.arange(tot) - first.repeat(per) - 1)
    bank[first] = bank[first + per - 1] = vch * B
    row = vrow.repeat(per)
    start = np.searchsorted(vch.repeat(per), np.arange(kv.channels + 1))   # groups are channel-major
    got = (cmd, bank, row, cmd == int(Cmd.WR), start, int(nb.sum()))
    for a in got[:4]:
        a.flags.writeable = False
    return got


@lru_cache(maxsize=4)
def _fields(kv: KvLayout) -> tuple:
    """`dataclasses.astuple(kv)`, made once (it deep-copies: ~20 us a call)."""
    return dataclasses.astuple(kv)


@lru_cache(maxsize=4)
def _score_segments(kv: KvLayout) -> tuple[np.ndarray, ...]:
    """(token, head, channel, bank, row, col_elem, in_start, length) of every (token, head) segment
    of the whole reserved context, token-major: the score placement of a context of ctx tokens
    is their first ctx * n_heads entries (K addresses are per token and head)."""
    t = np.repeat(np.arange(kv.context, dtype=np.int64), kv.n_heads)
    h = np.tile(np.arange(kv.n_heads, dtype=np.int64), kv.context)
    ch, bk, row, col = kv._k_addr(t, h)
    out = (t, h, ch, bk, row, col, h * kv.d_head, np.full(len(t), kv.d_head, np.int64))
    for a in out:
        a.flags.writeable = False
    return out


@lru_cache(maxsize=4)
def _score_slot_firsts(kv: KvLayout) -> np.ndarray:
    """Where each (channel, row, 32 B column) slot of the whole reserved context's score segments
    (`_score_segments`) first occurs, ascending. The slot table (`lowering.slot_table`) of the first
    n segments holds exactly the slots first seen before n, each with its first segment's values,
    so two prefixes have equal slot tables iff as many slots are first seen in each."""
    _, _, ch, _, row, col, _, _ = _score_segments(kv)
    key = (ch * (int(row.max()) + 1) + row) * (kv.row_elems // kv.lanes) + col // kv.lanes
    return np.sort(np.unique(key, return_index=True)[1])


@lru_cache(maxsize=_ATTENTION_PLACEMENTS_KEPT)
def _score_rel(kv: KvLayout, ctx: int) -> Placement:
    n = ctx * kv.n_heads
    t, h, ch, bk, row, col, in_start, length = (a[:n] for a in _score_segments(kv))
    p = make_placement("score", kv.d_model, n, ch, bk, row, col, h * ctx + t, in_start, length)
    p.row_range, p.elements   # computed once here, inherited by every layer's shifted copy
    slots = ("kv_score", _fields(kv), int(np.searchsorted(_score_slot_firsts(kv), n)), p.row_range[0])
    return sign_by_stream(set_signature(p, "kv_score", _fields(kv), ctx), slots)


@lru_cache(maxsize=4)
def _context_segments(kv: KvLayout, pieces: int) -> tuple[np.ndarray, ...]:
    """(channel, bank, row, col_elem, out_index, head, piece) of the context placement's segments
    for contexts of `pieces` row pieces (-(-ctx // tokens_per_row)): only their input starts and
    lengths depend on ctx itself."""
    B = kv.banks
    out = np.arange(kv.d_model, dtype=np.int64)
    h, i = out // kv.d_head, out % kv.d_head
    gid = h * kv.groups_per_head + i // B
    ch, slot = kv._v_group(gid)
    k = np.tile(np.arange(pieces, dtype=np.int64), kv.d_model)
    rep = lambda a: np.repeat(a, pieces)  # noqa: E731
    got = (rep(ch), rep(i % B), rep(slot) * kv.rows_per_dim + k, np.zeros(len(k), np.int64), rep(out), rep(h), k)
    for a in got:
        a.flags.writeable = False
    return got


@lru_cache(maxsize=_ATTENTION_PLACEMENTS_KEPT)
def _context_rel(kv: KvLayout, ctx: int) -> Placement:
    tpr = kv.tokens_per_row
    ch, bank, row, col, out, h, k = _context_segments(kv, -(-ctx // tpr))
    p = make_placement("context", kv.n_heads * ctx, kv.d_model, ch, bank, row, col, out, h * ctx + k * tpr,
                       np.minimum(tpr, ctx - k * tpr))
    p.row_range, p.elements
    # Its slot table changes every token (each head's runs start at h * ctx), but the lowering reads
    # the input runs only through their order (head-major, then row piece, whatever ctx) and burst
    # counts, and the slots through their MAC counts: all set by the count of 16-element MAC
    # columns of the context (row pieces are whole columns), so that count stands for the stream.
    slots = ("kv_context", _fields(kv), -(-ctx // kv.lanes))
    return sign_by_stream(set_signature(p, "kv_context", _fields(kv), ctx), slots)
