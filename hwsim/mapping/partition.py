"""The PIM-GPT mapper: where every weight of every matrix lives in the PIM banks.

A `Placement` describes one matrix W [d_in, d_out] (y = x @ W) as *segments*: a contiguous run
of input elements of ONE output column, stored in one DRAM row of one bank. All 16 banks of a
channel MAC the same global-buffer (GB) content in lockstep, so segments that share
(channel, row, col_elem) in different banks must share in_start and length (`check_placement`).

Strategy `pim_gpt` (the default, docs/pim_mapping.md):

* the input vector is cut into GB windows of `min(gb_elems, row_elems)` elements (1,024 BF16);
  a column longer than that is tiled, one segment per window, and the ASIC adds the partial
  sums (weight-matrix tiling);
* output columns go round-robin over channels first, then banks (column j -> unit j mod (C*B),
  channel = unit mod C, bank = unit // C), so every MAC unit works on every window and the
  channels differ by at most one column;
* in each window, a bank's columns are packed `row_elems // padded_len` to a row (whole segments
  only, each starting on a 16-element column boundary; 64-element heads pack 16 to a row, 256- and
  512-element tails 4 and 2); a segment is never split over two rows, so a row whose window is
  shorter than half a row is padded (e.g. d_in = 768 or the 576-element tail of d = 1600 leaves
  the rest of the row empty): splitting would need a mid-row readout (RD_MAC, then tCL + tBL
  before the next MAC), which costs more than the unused columns (docs/pim_mapping.md);
* d_out not a multiple of C*B: imbalance, not padding - the last row of some banks holds fewer
  columns; those banks' MAC results are read and discarded.

QKV concatenation is simply `place_matrix("qkv", d, 3*d, ...)`.
"""

from __future__ import annotations

import hashlib

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Callable

import numpy as np

from hwsim.errors import InputError

if TYPE_CHECKING:  # pragma: no cover
    from hwsim.dram_pim.pim import PimSpec
    from hwsim.mapping.kv_cache import KvLayout
    from hwsim.models import ModelSpec


class PlacementError(ValueError):
    """A placement breaks one of the invariants `check_placement` proves."""


@dataclass(frozen=True, eq=False)  # eq=False: arrays do not compare/hash as values; identity semantics
class Placement:  # one weight matrix W [d_in, d_out], y = x @ W
    name: str
    d_in: int
    d_out: int
    # one entry per segment: a contiguous run of input elements of ONE output column, stored in one DRAM row
    channel: np.ndarray   # int64[S]
    bank: np.ndarray      # int64[S] bank index within the channel (0..banks_per_channel-1)
    row: np.ndarray       # int64[S]
    col_elem: np.ndarray  # int64[S] first element offset within the row (multiple of mac_lanes)
    out_index: np.ndarray  # int64[S] output column j
    in_start: np.ndarray  # int64[S] first input element i
    length: np.ndarray    # int64[S] number of elements

    @property
    def n_segments(self) -> int:
        return int(len(self.channel))

    @cached_property
    def row_range(self) -> tuple[int, int]:
        """[first, last + 1) of the rows used (the same range in every bank); computed once (the
        arrays are read-only)."""
        if not len(self.row):
            return (0, 0)
        return int(self.row.min()), int(self.row.max()) + 1

    @cached_property
    def elements(self) -> int:
        """Weights placed (multiply-accumulates per VMM); computed once (the arrays are read-only)."""
        return int(self.length.sum())

    def shifted(self, rows: int, name: str | None = None) -> "Placement":
        """The same layout `rows` rows further up (timing-identical; shares the memo signature and
        every array but the rows, which are made on first use: `_ShiftedPlacement`)."""
        p = _ShiftedPlacement.__new__(_ShiftedPlacement)
        p.__dict__.update(name=name or self.name, d_in=self.d_in, d_out=self.d_out, channel=self.channel,
                          bank=self.bank, col_elem=self.col_elem, out_index=self.out_index,
                          in_start=self.in_start, length=self.length, _row_source=self, _row_shift=int(rows))
        sig = self.__dict__.get("_sig")
        if sig is not None:
            object.__setattr__(p, "_sig", sig)
        origin = stream_origin(self)
        if origin is not None:
            p.__dict__["_stream_origin"] = origin
        if "row_range" in self.__dict__ and len(self.row):
            lo, hi = self.row_range
            p.__dict__["row_range"] = (lo + int(rows), hi + int(rows))
        if "elements" in self.__dict__:
            p.__dict__["elements"] = self.elements
        return p


class _ShiftedPlacement(Placement):
    """A `Placement.shifted` copy: its `row` array is the source's plus the shift, made when first
    read. The memoised PIM paths time an attention VMM from its row range and its source's
    lowering, so the rows of the 2 x n_layers attention placements of a token (16k values each
    for a 2,048-token GPT-3 context) are mostly never made."""

    @property
    def row(self) -> np.ndarray:
        d = self.__dict__
        r = d.get("_row")
        if r is None:
            r = d["_row"] = _frozen(d["_row_source"].row + d["_row_shift"])
        return r


def _frozen(a) -> np.ndarray:
    a = np.ascontiguousarray(a, dtype=np.int64)
    a.flags.writeable = False
    return a


def make_placement(name: str, d_in: int, d_out: int, channel, bank, row, col_elem, out_index, in_start,
                   length) -> Placement:
    """A Placement with read-only int64 arrays (placements are shared and memoised)."""
    return Placement(name, int(d_in), int(d_out), *(_frozen(a) for a in
                                                    (channel, bank, row, col_elem, out_index, in_start, length)))


def set_signature(p: Placement, *identity) -> Placement:
    """Give `p` a memo signature derived from `identity`, values that determine its whole layout
    (the generator and its arguments): hashing the arrays of a large generated placement costs
    milliseconds. A separate hash domain keeps these apart from array digests."""
    h = hashlib.blake2b(repr(identity).encode(), digest_size=20, person=b"generated")
    object.__setattr__(p, "_sig", h.digest())
    return p


def sign_by_stream(p: Placement, slots=None) -> Placement:
    """Mark `p` (a generated placement) to be memoised by the command stream it lowers to rather
    than by its layout (`PimSystem.vmm_key`): neighbouring context lengths of an attention VMM
    mostly lower to the same stream, only their useful MAC counts differ. Shifted copies keep the
    mark and point to `p`, whose lowering stands for theirs (`p` itself holds a flag, not a
    reference to itself: a cycle would keep every such placement until a full garbage collection).
    `slots`, if given, is a hashable value equal for two such placements exactly when they lower
    to the same stream (for a score placement: when their slot tables, `lowering.slot_table` with
    rows relative to the first, are equal), so it is looked up before lowering (`slot_signature`)."""
    p.__dict__["_stream_signed"] = True
    if slots is not None:
        p.__dict__["_slot_signature"] = slots
    return p


def slot_signature(p: Placement):
    """The `slots` value `sign_by_stream` gave `p`, or None."""
    return p.__dict__.get("_slot_signature")


def stream_origin(p: Placement) -> Placement | None:
    """The placement whose lowered stream signs `p` (`sign_by_stream`), or None."""
    origin = p.__dict__.get("_stream_origin")
    if origin is None and p.__dict__.get("_stream_signed"):
        return p
    return origin


def placement_signature(p: Placement) -> bytes:
    """Digest of everything the timing depends on, with rows relative to the first row: two placements
    with equal signatures issue the same commands up to a row offset (memo key)."""
    sig = p.__dict__.get("_sig")
    if sig is None:
        h = hashlib.blake2b(digest_size=20)
        h.update(np.array([p.d_in, p.d_out, len(p.channel)], dtype=np.int64).tobytes())
        base = p.row_range[0]
        for a in (p.channel, p.bank, p.row - base, p.col_elem, p.in_start, p.length):
            h.update(np.ascontiguousarray(a, dtype=np.int64).tobytes())
        sig = h.digest()
        object.__setattr__(p, "_sig", sig)
    return sig


# ------------------------------------------------------------------------------------------------
# Strategies
# ------------------------------------------------------------------------------------------------
Strategy = Callable[[str, int, int, "PimSpec", int], Placement]
STRATEGIES: dict[str, Strategy] = {}


def register_strategy(name: str):
    """Decorator: add a placement strategy `fn(name, d_in, d_out, pim_spec, base_row) -> Placement`."""
    def deco(fn: Strategy) -> Strategy:
        STRATEGIES[name] = fn
        return fn
    return deco


def window_elems(pim_spec: "PimSpec") -> int:
    """Input elements per GB window: the global buffer, at most one row, whole 32 B columns."""
    L = pim_spec.mac_lanes
    return (min(pim_spec.gb_elems, pim_spec.row_elems) // L) * L


def _round_robin(name: str, d_in: int, d_out: int, ps: "PimSpec", base_row: int, pack: bool) -> Placement:
    C, B, R, L = ps.channels, ps.banks_per_channel, ps.row_elems, ps.mac_lanes
    W = window_elems(ps)
    starts = np.arange(0, d_in, W, dtype=np.int64)
    lens = np.minimum(W, d_in - starts)
    padded = -(-lens // L) * L
    per_row = (R // padded) if pack else np.ones_like(padded)
    U = C * B
    Q = -(-d_out // U)                       # columns of the busiest bank
    rows_k = -(-Q // per_row)                # rows per window
    row_base = base_row + np.concatenate([[0], np.cumsum(rows_k)[:-1]])
    j = np.arange(d_out, dtype=np.int64)
    u = j % U
    ch, bk, q = u % C, u // C, j // U
    K = len(starts)
    reps = lambda a: np.tile(a, K)  # noqa: E731 - chunk-major: all columns of window 0, then window 1, ...
    per = np.repeat(per_row, d_out)
    row = np.repeat(row_base, d_out) + reps(q) // per
    col = (reps(q) % per) * np.repeat(padded, d_out)
    return make_placement(name, d_in, d_out, reps(ch), reps(bk), row, col, reps(j),
                          np.repeat(starts, d_out), np.repeat(lens, d_out))


@register_strategy("pim_gpt")
def _pim_gpt(name, d_in, d_out, ps, base_row):
    """Round-robin columns over channels then banks; tile by GB window; pack short segments."""
    return _round_robin(name, d_in, d_out, ps, base_row, pack=True)


@register_strategy("no_packing")
def _no_packing(name, d_in, d_out, ps, base_row):
    """Ablation: as pim_gpt but one segment per row (short segments never share a row)."""
    return _round_robin(name, d_in, d_out, ps, base_row, pack=False)


def place_matrix(name: str, d_in: int, d_out: int, pim_spec: "PimSpec", *, base_row: int = 0,
                 strategy: str = "pim_gpt") -> Placement:
    """Place W [d_in, d_out] from `base_row` up, in every bank of every channel."""
    if strategy not in STRATEGIES:
        raise InputError(None, "strategy", f"got {strategy!r}; expected one of {', '.join(sorted(STRATEGIES))}")
    if int(d_in) < 1 or int(d_out) < 1:
        raise InputError(None, name, f"matrix {d_in} x {d_out}: both sizes must be >= 1")
    return STRATEGIES[strategy](name, int(d_in), int(d_out), pim_spec, int(base_row))


# ------------------------------------------------------------------------------------------------
# Invariants
# ------------------------------------------------------------------------------------------------
def check_placement(p: Placement, pim_spec: "PimSpec | None" = None, *, dense: bool = True) -> dict:
    """Prove the invariants of `p`; raise PlacementError naming the first broken one.

    * dense=True: every W[i, j] (0 <= i < d_in, 0 <= j < d_out) is placed exactly once;
      dense=False (attention placements, block-diagonal W): each element at most once;
    * segments lie inside one row, start on a MAC-lane boundary and fit the global buffer;
    * no two segments overlap in DRAM (at 32 B column granularity: a column holds one segment);
    * channel, bank and row are inside the device (capacity);
    * lockstep: segments at the same (channel, row, col_elem) share in_start and length.

    Returns a summary: segments, rows used per bank, utilisation of the MAC columns touched."""
    if pim_spec is None:
        from hwsim.dram_pim.pim import load_pim
        pim_spec = load_pim("pim_gpt")
    C, B, R, L = pim_spec.channels, pim_spec.banks_per_channel, pim_spec.row_elems, pim_spec.mac_lanes
    arrays = {k: getattr(p, k) for k in ("channel", "bank", "row", "col_elem", "out_index", "in_start", "length")}
    S = len(p.channel)
    for k, a in arrays.items():
        if not isinstance(a, np.ndarray) or a.ndim != 1 or len(a) != S or a.dtype.kind not in "iu":
            raise PlacementError(f"{p.name}: {k} must be a 1-D integer array of {S} segments")
    ch, bk, row, ce = (arrays[k].astype(np.int64) for k in ("channel", "bank", "row", "col_elem"))
    j, i0, ln = (arrays[k].astype(np.int64) for k in ("out_index", "in_start", "length"))

    def fail(mask, what):
        bad = np.flatnonzero(mask)
        if len(bad):
            s = int(bad[0])
            raise PlacementError(f"{p.name}: {what} (segment {s}: ch {ch[s]} bank {bk[s]} row {row[s]} "
                                 f"col_elem {ce[s]} out {j[s]} in [{i0[s]}, {i0[s] + ln[s]}))")

    # Shape and capacity.
    fail(ln < 1, "empty segment")
    fail((i0 < 0) | (i0 + ln > p.d_in), f"input range outside 0..{p.d_in}")
    fail((j < 0) | (j >= p.d_out), f"output column outside 0..{p.d_out - 1}")
    fail((ch < 0) | (ch >= C), f"channel outside 0..{C - 1}")
    fail((bk < 0) | (bk >= B), f"bank outside 0..{B - 1}")
    fail((row < 0) | (row >= pim_spec.rows_per_bank), f"row outside 0..{pim_spec.rows_per_bank - 1} (capacity)")
    fail(ce % L != 0, f"col_elem not a multiple of {L} MAC lanes")
    fail((ce < 0) | (ce + ln > R), f"segment leaves its {R}-element row")
    fail(-(-ln // L) * L > window_elems(pim_spec), "segment longer than the global buffer")

    # Coverage: per output column, segments sorted by input start must not overlap (and tile d_in).
    o = np.lexsort((i0, j))
    js, ss, es = j[o], i0[o], i0[o] + ln[o]
    same = js[1:] == js[:-1]
    over = same & (ss[1:] < es[:-1])
    if over.any():
        k = int(np.flatnonzero(over)[0])
        raise PlacementError(f"{p.name}: W[{ss[k + 1]}, {js[k]}] placed twice (overlapping input runs)")
    if dense:
        if int(ln.sum()) != p.d_in * p.d_out:
            raise PlacementError(f"{p.name}: {int(ln.sum())} elements placed; expected {p.d_in} x {p.d_out}")
        first = np.r_[True, ~same]
        last = np.r_[~same, True]
        gap = same & (ss[1:] != es[:-1])
        if gap.any() or (ss[first] != 0).any() or (es[last] != p.d_in).any() or first.sum() != p.d_out:
            raise PlacementError(f"{p.name}: some element W[i, j] is not placed (gap in a column)")

    # DRAM overlap at column granularity.
    c0 = ce // L
    c1 = c0 + -(-ln // L)
    o = np.lexsort((c0, row, bk, ch))
    key = ((ch[o] * B + bk[o]) * pim_spec.rows_per_bank + row[o])
    clash = (key[1:] == key[:-1]) & (c0[o][1:] < c1[o][:-1])
    if clash.any():
        k = int(o[np.flatnonzero(clash)[0] + 1])
        raise PlacementError(f"{p.name}: segment {k} overlaps another in ch {ch[k]} bank {bk[k]} row {row[k]}")

    # Lockstep across the banks of a channel.
    o = np.lexsort((ce, row, ch))
    key = (ch[o] * pim_spec.rows_per_bank + row[o]) * R + ce[o]
    same = key[1:] == key[:-1]
    diff = same & ((i0[o][1:] != i0[o][:-1]) | (ln[o][1:] != ln[o][:-1]))
    if diff.any():
        k = int(o[np.flatnonzero(diff)[0] + 1])
        raise PlacementError(f"{p.name}: lockstep broken at ch {ch[k]} row {row[k]} col_elem {ce[k]}: banks "
                             "sharing a row position must MAC the same global-buffer run")
    lo, hi = p.row_range
    cols_touched = int((c1 - c0).sum())
    return {"segments": S, "rows_per_bank": hi - lo, "row_range": (lo, hi),
            "column_utilisation": float(ln.sum()) / (cols_touched * L) if cols_touched else 0.0}


# ------------------------------------------------------------------------------------------------
# Whole models
# ------------------------------------------------------------------------------------------------
LAYER_OPS = ("attn.qkv", "attn.proj", "mlp.fc1", "mlp.fc2")


@dataclass(frozen=True, eq=False)
class ModelPlacement:
    """Every weight matrix of a model (keyed by graph op id) plus the reserved KV-cache region."""

    model: "ModelSpec"
    pim: "PimSpec"
    context: int                      # KV tokens reserved per layer
    ops: dict[str, Placement]
    kv: "KvLayout"
    rows_used: int                    # rows per bank used (weights + KV), from row 0
    rows_available: int
    strategy: str = "pim_gpt"
    regions: dict[str, tuple[int, int]] = field(default_factory=dict)  # name -> [first, last+1) rows

    def __getitem__(self, op_id: str) -> Placement:
        return self.ops[op_id]

    def __contains__(self, op_id: str) -> bool:
        return op_id in self.ops


def _layer_shapes(model: "ModelSpec") -> dict[str, tuple[int, int]]:
    d, f = model.d_model, model.d_ff
    return {"attn.qkv": (d, 3 * d), "attn.proj": (d, d), "mlp.fc1": (d, f), "mlp.fc2": (f, d)}


def place_model(model: "ModelSpec", pim_spec: "PimSpec", context: int | None = None, *,
                include_lm_head: bool = True, strategy: str = "pim_gpt", file: str | None = None) -> ModelPlacement:
    """Place every layer's matrices (QKV concatenated), the LM head and a KV region for `context`
    tokens per layer (default: the model's maximum). Matrices of one layer share one layout up to a
    row offset (so their VMM simulations are memoised across layers). Raises InputError naming
    `model` when the device is too small."""
    from hwsim.mapping.kv_cache import KvLayout

    ctx = model.context if context is None else int(context)
    if not 1 <= ctx <= model.context:
        raise InputError(file, "context", f"got {context!r}; expected 1..{model.context} ({model.name})")
    ops: dict[str, Placement] = {}
    regions: dict[str, tuple[int, int]] = {}
    base = 0
    proto: dict[str, Placement] = {}
    for role, (din, dout) in _layer_shapes(model).items():
        proto[role] = place_matrix(role, din, dout, pim_spec, base_row=0, strategy=strategy)
        placement_signature(proto[role])
    for i in range(model.n_layers):
        for role in LAYER_OPS:
            op_id = f"L{i}.{role}"
            p = proto[role].shifted(base, op_id)
            ops[op_id] = p
            n = proto[role].row_range[1]
            regions[op_id] = (base, base + n)
            base += n
    if include_lm_head:
        p = place_matrix("lm_head", model.d_model, model.vocab, pim_spec, base_row=base, strategy=strategy)
        ops["lm_head"] = p
        regions["lm_head"] = (base, p.row_range[1])
        base = p.row_range[1]
    kv = KvLayout.build(model, pim_spec, ctx, base_row=base)
    regions["kv"] = (base, base + kv.total_rows)
    rows_used = base + kv.total_rows
    avail = pim_spec.rows_per_bank
    if rows_used > avail:
        need_ch = _channels_needed(model, pim_spec, ctx, include_lm_head, strategy)
        raise InputError(file, "model",
                         f"{model.name} does not fit the PIM DRAM: it needs {rows_used} rows per bank "
                         f"(weights {base}, KV cache {kv.total_rows} for {ctx} tokens) but a bank has {avail} "
                         f"with hardware.pim.channels={pim_spec.channels}; use at least {need_ch} channels, "
                         "a shorter context or a smaller model")
    return ModelPlacement(model, pim_spec, ctx, ops, kv, rows_used, avail, strategy, regions)


def _channels_needed(model, pim_spec, ctx, include_lm_head, strategy) -> str:
    import dataclasses

    for c in range(pim_spec.channels + 1, 4 * pim_spec.channels + 65):
        try:
            place_model(model, dataclasses.replace(pim_spec, channels=c), ctx,
                        include_lm_head=include_lm_head, strategy=strategy)
            return str(c)
        except InputError:
            continue
    return f"more than {4 * pim_spec.channels + 64}"


def check_model_placement(mp: ModelPlacement) -> None:
    """Every op placement passes `check_placement`, and no two regions share a row."""
    for p in mp.ops.values():
        check_placement(p, mp.pim)
    spans = sorted(mp.regions.items(), key=lambda kv: kv[1])
    for (a, (alo, ahi)), (b, (blo, bhi)) in zip(spans, spans[1:]):
        if blo < ahi:
            raise PlacementError(f"regions {a} [{alo}, {ahi}) and {b} [{blo}, {bhi}) overlap")
    for op_id, p in mp.ops.items():
        lo, hi = p.row_range
        rlo, rhi = mp.regions[op_id]
        if lo < rlo or hi > rhi:
            raise PlacementError(f"{op_id} uses rows [{lo}, {hi}) outside its region [{rlo}, {rhi})")
    if mp.rows_used > mp.rows_available:
        raise PlacementError(f"{mp.rows_used} rows used > {mp.rows_available} available")
