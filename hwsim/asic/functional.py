"""Functional mode: run a GPT-2 on real weights through the simulated PIM banks, bit by bit.

Numerics (docs/functional.md has the full story):

* DRAM holds BF16: weights, K and V are rounded to BF16 (round to nearest even) when written.
* The ASIC sends BF16 vectors to the PIM global buffer: every VMM input is rounded to BF16.
* A bank MAC unit takes one 32 B column (16 BF16 weights) per MAC command, multiplies it lane by
  lane with the matching 16 global-buffer elements in FP32 (exact: BF16 x BF16 fits in FP32),
  sums the 16 products with a pairwise adder tree in FP32 ((p0+p1)+(p2+p3))+..., and adds the
  tree's result to its FP32 accumulator, column after column.
* One placement segment is one bank-row run of one output column; its accumulator is read out
  (`readout`: FP32, or rounded to BF16 as the PIM preset's `result_format: bf16` says) and the
  ASIC adds the segments of an output column in FP32 in order of `in_start`.
* Everything else (biases, residuals, LayerNorm, softmax, GELU, embeddings) runs in the ASIC in
  FP32 on BF16-stored parameters, either with the ASIC's approximations (Taylor exp,
  Newton-Raphson reciprocal, fast inverse square root, clamped odd polynomial tanh; the degrees
  and iteration counts of `hwsim/presets/asic`) or with exact FP32 functions (`AsicNumerics`).

Main API: `bf16_round`, `pim_vmm`, `dram_image`, `pim_vmm_from_image`, `PimMatrix` (a placed
matrix prepared once, multiplied many times), `check_coverage`, `AsicNumerics`/`AsicMath`,
`PimGpt` (the model on the PIM path) and `run_functional` (the CLI entry point).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Literal

import numpy as np

from hwsim.errors import InputError
from hwsim.models import ModelSpec
from hwsim.outputs import atomic_file

LANES = 16  # BF16 elements per 32 B column = multipliers per bank MAC unit
LN_EPS = 1e-5
F32 = np.float32

try:  # the mapping layer's type and placer
    from hwsim.mapping.partition import Placement, place_model
except ImportError:  # pragma: no cover - only when hwsim/mapping/partition.py is absent
    place_model = None

    @dataclass(frozen=True)
    class Placement:  # type: ignore[no-redef]
        """One weight matrix W [d_in, d_out], y = x @ W, cut into bank-row segments: segment s
        holds W[in_start[s] : in_start[s] + length[s], out_index[s]] contiguously in bank
        `bank[s]` of channel `channel[s]`, row `row[s]`, from element `col_elem[s]` on."""

        name: str
        d_in: int
        d_out: int
        channel: np.ndarray
        bank: np.ndarray
        row: np.ndarray
        col_elem: np.ndarray
        out_index: np.ndarray
        in_start: np.ndarray
        length: np.ndarray


# ---------------------------------------------------------------------------------------------
# BF16


def bf16_round(x: Any) -> np.ndarray:
    """`x` as float32 rounded to the nearest bfloat16 (ties to even), returned as float32.

    Finite values that round past the largest BF16 become +-inf (IEEE overflow); infinities stay;
    NaNs stay NaN (sign kept, payload truncated to BF16's, quiet bit set)."""
    a = np.asarray(x, dtype=np.float32)
    bits = np.ascontiguousarray(a).reshape(-1).view(np.uint32)
    # uint32 wrap-around only happens for negative NaNs, which the NaN branch replaces.
    rounded = (bits + (np.uint32(0x7FFF) + ((bits >> np.uint32(16)) & np.uint32(1)))) & np.uint32(0xFFFF0000)
    nan = (bits & np.uint32(0x7FFFFFFF)) > np.uint32(0x7F800000)
    if nan.any():
        rounded = np.where(nan, (bits | np.uint32(0x00400000)) & np.uint32(0xFFFF0000), rounded)
    return rounded.view(np.float32).reshape(a.shape)


# ---------------------------------------------------------------------------------------------
# Geometry and placements


@dataclass(frozen=True)
class PimGeometry:
    """The PIM facts the mapping needs (duck-types the PIM spec `hwsim.mapping` reads)."""

    channels: int = 8
    banks_per_channel: int = 16
    row_elems: int = 1024
    mac_lanes: int = LANES
    gb_elems: int = 1024
    rows_per_bank: int = 16384
    result_format: str = "bf16"
    accumulator: str = "fp32"

    @classmethod
    def from_org(cls, org, *, gb_bytes: int = 2048, result_format: str = "bf16") -> "PimGeometry":
        """From a DRAM `Organization` (hwsim.dram_pim.spec)."""
        return cls(org.channels, org.ranks * org.bankgroups * org.banks_per_group,
                   org.columns * org.burst_bytes // 2, org.burst_bytes // 2, gb_bytes // 2, org.rows,
                   result_format)


def _geom(g) -> PimGeometry:
    """A PimGeometry from a PimGeometry, a PIM spec (same attribute names) or a DRAM Organization."""
    if g is None:
        return PimGeometry()
    if isinstance(g, PimGeometry):
        return g
    if hasattr(g, "row_elems"):
        return PimGeometry(int(g.channels), int(g.banks_per_channel), int(g.row_elems), int(g.mac_lanes),
                           int(g.gb_elems), int(g.rows_per_bank), str(getattr(g, "result_format", "bf16")),
                           str(getattr(g, "accumulator", "fp32")))
    return PimGeometry.from_org(g)


def _arrays(p) -> tuple[np.ndarray, ...]:
    return tuple(np.asarray(getattr(p, f), dtype=np.int64).ravel()
                 for f in ("channel", "bank", "row", "col_elem", "out_index", "in_start", "length"))


def make_placement(name: str, d_in: int, d_out: int, **arrays: np.ndarray) -> Placement:
    """A Placement (the mapping layer's class) from int arrays given by field name."""
    fields_ = [np.asarray(arrays[k], dtype=np.int64)
               for k in ("channel", "bank", "row", "col_elem", "out_index", "in_start", "length")]
    return Placement(name, int(d_in), int(d_out), *fields_)


def check_coverage(p, geometry=None, *, dense: bool = True) -> None:
    """Raise ValueError unless every W[i, j] is placed exactly once (`dense`; at most once
    otherwise) by in-range segments and, given a geometry, every segment fits its row and no two
    segments share a DRAM element. Element-exact and independent of `hwsim.mapping`'s checker."""
    ch, bk, row, col, out, start, length = _arrays(p)
    S = len(out)
    bad = (length < 1) | (start < 0) | (start + length > p.d_in) | (out < 0) | (out >= p.d_out)
    if bad.any():
        s = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{p.name}: segment {s} (out {out[s]}, in {start[s]}+{length[s]}) outside "
                         f"W [{p.d_in}, {p.d_out}]")
    o = np.lexsort((start, out))
    js, ss, es = out[o], start[o], (start + length)[o]
    same = js[1:] == js[:-1]
    if np.any(same & (ss[1:] < es[:-1])):
        raise ValueError(f"{p.name}: some W[i, j] is placed twice (overlapping input runs)")
    if dense:
        first, last = np.r_[True, ~same], np.r_[~same, True]
        if (S == 0 or first.sum() != p.d_out or np.any(ss[first] != 0) or np.any(es[last] != p.d_in)
                or np.any(same & (ss[1:] != es[:-1]))):
            raise ValueError(f"{p.name}: some W[i, j] is not placed (a column of {p.d_in} inputs has a gap)")
    if geometry is None:
        return
    g = _geom(geometry)
    R = g.row_elems
    bad = ((ch < 0) | (ch >= g.channels) | (bk < 0) | (bk >= g.banks_per_channel) | (row < 0)
           | (row >= g.rows_per_bank) | (col < 0) | (col + length > R))
    if bad.any():
        s = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{p.name}: segment {s} (channel {ch[s]}, bank {bk[s]}, row {row[s]}, elements "
                         f"{col[s]}..{col[s] + length[s] - 1}) is outside the DRAM ({g.channels} ch x "
                         f"{g.banks_per_channel} banks x {g.rows_per_bank} rows x {R} elements)")
    o = np.lexsort((col, row, bk, ch))
    key = (ch[o] * g.banks_per_channel + bk[o]) * g.rows_per_bank + row[o]
    clash = (key[1:] == key[:-1]) & (col[o][1:] < (col + length)[o][:-1])
    if clash.any():
        a, b = o[np.flatnonzero(clash)[0]], o[np.flatnonzero(clash)[0] + 1]
        raise ValueError(f"{p.name}: segments {a} and {b} overlap in channel {ch[a]}, bank {bk[a]}, row {row[a]}")


def _split_runs(unit: np.ndarray, offset: np.ndarray, length: np.ndarray, out: np.ndarray,
                in_start: np.ndarray, *, R: int, channels: int, first_row: int) -> dict[str, np.ndarray]:
    """Cut runs (contiguous from element `offset` of a bank's region) at DRAM row boundaries.
    Bank unit u is channel u % channels, bank u // channels."""
    lead = offset % R
    pieces = (lead + length + R - 1) // R
    s = np.repeat(np.arange(len(unit)), pieces)
    k = np.arange(len(s)) - np.repeat(np.cumsum(pieces) - pieces, pieces)  # piece number in its run
    piece_off = np.where(k == 0, 0, k * R - lead[s])  # elements of the run before this piece
    start_elem = offset[s] + piece_off
    plen = np.minimum(length[s] - piece_off, R - start_elem % R)
    return dict(channel=unit[s] % channels, bank=unit[s] // channels, row=first_row + start_elem // R,
                col_elem=start_elem % R, out_index=out[s], in_start=in_start[s] + piece_off, length=plen)


def packed_placement(name: str, d_in: int, d_out: int, geometry=None, base_row: int = 0) -> Placement:
    """A deliberately different placement for cross-checks (not the PIM-GPT mapper): column j goes
    to bank unit j mod (channels x banks), a unit's columns are concatenated back to back with no
    padding and cut at row boundaries, so segments start mid-column (lanes misaligned with the
    input) and columns straddle rows. The MAC model must give the same answer to within FP32
    reordering."""
    g = _geom(geometry)
    nb = g.channels * g.banks_per_channel
    j = np.arange(d_out, dtype=np.int64)
    arr = _split_runs(j % nb, (j // nb) * d_in, np.full(d_out, d_in, np.int64), j, np.zeros(d_out, np.int64),
                      R=g.row_elems, channels=g.channels, first_row=base_row)
    return make_placement(name, d_in, d_out, **arr)


# ---------------------------------------------------------------------------------------------
# DRAM image


Image = dict  # {(channel, bank, row): float32 array of row_elems BF16 values}


def dram_image(W: np.ndarray, placement, org=None) -> Image:
    """The DRAM contents the placement writes: {(channel, bank, row): float32 row of BF16 values}.

    `org` is a DRAM Organization, a PIM spec or a PimGeometry (for the row length). Segments are
    written in placement order, so a later segment overwrites an earlier one where they overlap
    (as DRAM would); unwritten elements are 0. ValueError when a segment does not fit W or its
    row."""
    W = np.asarray(W)
    if W.shape != (placement.d_in, placement.d_out):
        raise ValueError(f"{placement.name}: W has shape {W.shape}; placement is for "
                         f"({placement.d_in}, {placement.d_out})")
    ch, bk, row, col, out, start, length = _arrays(placement)
    R = _geom(org).row_elems
    if np.any((start < 0) | (start + length > placement.d_in) | (out < 0) | (out >= placement.d_out)
              | (length < 1)):
        raise ValueError(f"{placement.name}: a segment lies outside W")
    if np.any((col < 0) | (col + length > R)):
        raise ValueError(f"{placement.name}: a segment runs past the end of its {R}-element row")
    keys, rid = _row_ids(ch, bk, row)
    img = np.zeros((len(keys), R), dtype=np.float32)
    flat_img = img.reshape(-1)
    # Overlapping segments: "last write wins", made explicit (numpy's order for repeated indices
    # in one fancy assignment is unspecified).
    o = np.lexsort((col, rid))
    overlap = bool(np.any((rid[o][1:] == rid[o][:-1]) & (col[o][1:] < (col + length)[o][:-1])))
    for blk in _blocks(length, 1 << 22):
        n = length[blk]
        s = np.repeat(blk, n)
        e = np.arange(len(s)) - np.repeat(np.cumsum(n) - n, n)
        dst = rid[s] * R + col[s] + e
        val = bf16_round(W[start[s] + e, out[s]])
        if overlap:
            rev = dst[::-1]
            _, first_in_rev = np.unique(rev, return_index=True)
            keep = len(dst) - 1 - first_in_rev
            dst, val = dst[keep], val[keep]
        flat_img[dst] = val
    return {k: img[i] for i, k in enumerate(keys)}


def _row_ids(ch: np.ndarray, bk: np.ndarray, row: np.ndarray) -> tuple[list[tuple[int, int, int]], np.ndarray]:
    """Distinct (channel, bank, row) keys and each segment's index into them."""
    if len(ch) == 0:
        return [], np.zeros(0, np.int64)
    bmax, rmax = int(bk.max()) + 1, int(row.max()) + 1
    code = (ch * bmax + bk) * rmax + row
    uniq, rid = np.unique(code, return_inverse=True)
    keys = [(int(c // (bmax * rmax)), int(c // rmax % bmax), int(c % rmax)) for c in uniq]
    return keys, rid.ravel()


def _blocks(length: np.ndarray, budget: int) -> list[np.ndarray]:
    """Consecutive segment index blocks whose summed lengths stay near `budget` elements."""
    S = len(length)
    if S == 0:
        return []
    cum = np.cumsum(length)
    cuts = np.searchsorted(cum, np.arange(budget, int(cum[-1]) + budget, budget), side="right")
    edges = np.unique(np.r_[0, np.clip(cuts, 1, S), S])
    return [np.arange(a, b) for a, b in zip(edges[:-1], edges[1:])]


def write_entries(image: Image, placement, i: np.ndarray, j: np.ndarray, values: np.ndarray, R: int) -> None:
    """Store BF16(values) as W[i, j] at the DRAM elements `placement` assigns to those entries
    (how K and V are appended: the attention placements say where each token's values live).
    ValueError when an entry is not placed."""
    ch, bk, row, col, out, start, length = _arrays(placement)
    i, j = np.asarray(i, np.int64).ravel(), np.asarray(j, np.int64).ravel()
    o = np.lexsort((start, out))
    key = out[o] * (placement.d_in + 1) + start[o]
    k = np.searchsorted(key, j * (placement.d_in + 1) + i, side="right") - 1
    s = o[np.clip(k, 0, None)]
    ok = (k >= 0) & (out[s] == j) & (i >= start[s]) & (i < start[s] + length[s])
    if not ok.all():
        b = int(np.flatnonzero(~ok)[0])
        raise ValueError(f"{placement.name}: W[{i[b]}, {j[b]}] is not placed")
    vals = bf16_round(values).ravel()
    pos = col[s] + i - start[s]
    keys, rid = _row_ids(ch[s], bk[s], row[s])
    for r, key_ in enumerate(keys):
        dst = image.get(key_)
        if dst is None:
            dst = image[key_] = np.zeros(R, np.float32)
        m = rid == r
        dst[pos[m]] = vals[m]


# ---------------------------------------------------------------------------------------------
# The MAC model


@dataclass
class _Group:
    base: int            # input index met by lane 0 of the segments' first column
    ncols: int           # 32 B columns each segment spans
    seg: np.ndarray      # segment ids
    tiles: np.ndarray    # float32 [n, ncols, lanes]: the BF16 weights each MAC command reads, 0 outside


@dataclass
class PimMatrix:
    """A placed matrix prepared for repeated y = x @ W on the bank MAC model.

    Build it with `from_dense` (operands straight from W) or `from_image` (operands read back
    from a DRAM image, so a wrong placement yields a wrong product)."""

    name: str
    d_in: int
    d_out: int
    lanes: int
    n_segments: int
    groups: list[_Group]
    passes: list[tuple[np.ndarray, np.ndarray]]  # ASIC reduction: (segment ids, output columns) per rank
    pad_lo: int = 0
    pad_hi: int = 0
    stats: dict = field(default_factory=dict)

    @classmethod
    def from_dense(cls, W: np.ndarray, placement, lanes: int = LANES) -> "PimMatrix":
        W = np.asarray(W)
        if W.shape != (placement.d_in, placement.d_out):
            raise ValueError(f"{placement.name}: W has shape {W.shape}; placement is for "
                             f"({placement.d_in}, {placement.d_out})")
        _, _, _, _, out, start, _ = _arrays(placement)

        def fetch(seg: np.ndarray, rel: np.ndarray) -> np.ndarray:
            return W[start[seg][:, None] + rel, out[seg][:, None]]

        return cls._build(placement, lanes, fetch)

    @classmethod
    def from_image(cls, image: Image, placement, lanes: int = LANES) -> "PimMatrix":
        ch, bk, row, col, _, _, length = _arrays(placement)
        keys, rid = _row_ids(ch, bk, row)
        rows = [image.get(k) for k in keys]
        R = max([len(r) for r in rows if r is not None], default=int((col + length).max(initial=0)))
        if np.any(col + length > R):
            raise ValueError(f"{placement.name}: a segment runs past the end of its {R}-element row")
        zero = np.zeros(R, np.float32)  # a row never written reads as zeros
        rows2d = np.stack([zero if r is None else np.asarray(r, np.float32) for r in rows]) if rows else \
            np.zeros((0, R), np.float32)

        def fetch(seg: np.ndarray, rel: np.ndarray) -> np.ndarray:
            return rows2d[rid[seg][:, None], col[seg][:, None] + rel]

        return cls._build(placement, lanes, fetch)

    @classmethod
    def _build(cls, placement, lanes: int, fetch: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> "PimMatrix":
        if lanes < 1 or lanes & (lanes - 1):
            raise ValueError(f"lanes must be a power of two, got {lanes}")
        _, _, _, col, out, start, length = _arrays(placement)
        if np.any((start < 0) | (start + length > placement.d_in) | (length < 1)
                  | (out < 0) | (out >= placement.d_out)):
            raise ValueError(f"{placement.name}: a segment lies outside W")
        lead = col % lanes
        ncols = (lead + length + lanes - 1) // lanes
        base = start - lead
        # Segments grouped by (base, ncols): a group multiplies one input window, broadcast.
        code = (base - base.min(initial=0)) * (int(ncols.max(initial=0)) + 1) + ncols
        uniq, inv = np.unique(code, return_inverse=True)
        inv = inv.ravel()
        order = np.argsort(inv, kind="stable")
        bounds = np.searchsorted(inv[order], np.arange(len(uniq) + 1))
        groups = []
        for g in range(len(uniq)):
            seg = order[bounds[g]:bounds[g + 1]]
            nc = int(ncols[seg[0]])
            P = nc * lanes
            pos = np.arange(P, dtype=np.int64)
            tiles = np.empty((len(seg), nc, lanes), np.float32)
            step = max(1, (1 << 21) // P)
            for a in range(0, len(seg), step):
                s = seg[a:a + step]
                rel = pos[None, :] - lead[s][:, None]
                valid = (rel >= 0) & (rel < length[s][:, None])
                vals = fetch(s, np.clip(rel, 0, length[s][:, None] - 1))
                tiles[a:a + len(s)] = np.where(valid, bf16_round(vals), F32(0)).reshape(len(s), nc, lanes)
            groups.append(_Group(int(base[seg[0]]), nc, seg, tiles))
        # ASIC side: a column's segments in order of in_start (placement order on ties).
        o = np.lexsort((start, out))
        first = np.r_[0, np.flatnonzero(out[o][1:] != out[o][:-1]) + 1] if len(o) else np.zeros(0, np.int64)
        rank = np.arange(len(o)) - np.repeat(first, np.diff(np.r_[first, len(o)]))
        passes = [(o[rank == r], out[o[rank == r]]) for r in range(int(rank.max(initial=-1)) + 1)]
        pad_lo = max(0, -int(base.min(initial=0)))
        pad_hi = max(0, int((base + ncols * lanes).max(initial=0)) - placement.d_in)
        return cls(placement.name, int(placement.d_in), int(placement.d_out), lanes, len(out), groups, passes,
                   pad_lo, pad_hi, {"segments": len(out), "mac_commands": int(ncols.sum())})

    def segment_sums(self, x: np.ndarray) -> np.ndarray:
        """Each segment's FP32 accumulator after its row run (float32 [S])."""
        x = np.asarray(x)
        if x.shape != (self.d_in,):
            raise ValueError(f"{self.name}: x has shape {x.shape}; expected ({self.d_in},)")
        L = self.lanes
        xpad = np.zeros(self.pad_lo + self.d_in + self.pad_hi, np.float32)
        xpad[self.pad_lo:self.pad_lo + self.d_in] = bf16_round(x)  # the global buffer holds BF16
        partial = np.empty(self.n_segments, np.float32)
        for g in self.groups:
            lo = self.pad_lo + g.base
            win = xpad[lo:lo + g.ncols * L].reshape(g.ncols, L)
            step = max(1, (1 << 16) // (g.ncols * L))
            for a in range(0, len(g.seg), step):
                prod = g.tiles[a:a + step] * win  # FP32 products, exact for BF16 operands
                while prod.shape[-1] > 1:  # pairwise adder tree: (p0+p1)+(p2+p3), ...
                    prod = prod[..., 0::2] + prod[..., 1::2]
                tree = prod[..., 0]
                acc = np.zeros(tree.shape[0], np.float32)
                for c in range(g.ncols):  # the bank accumulator, one MAC command per column
                    acc += tree[:, c]
                partial[g.seg[a:a + step]] = acc
        return partial

    def __call__(self, x: np.ndarray, readout: str = "fp32") -> np.ndarray:
        """y = x @ W (float32 [d_out]) as banks + ASIC compute it; `readout` "bf16" rounds each
        segment's accumulator to BF16 on its way to the ASIC."""
        partial = self.segment_sums(x)
        if readout == "bf16":
            partial = bf16_round(partial)
        elif readout != "fp32":
            raise ValueError(f"readout must be 'fp32' or 'bf16', got {readout!r}")
        y = np.zeros(self.d_out, np.float32)
        for seg, out in self.passes:  # ASIC: add a column's segment sums in order of in_start
            y[out] += partial[seg]
        return y


def pim_vmm(x: np.ndarray, W: np.ndarray, placement, lanes: int = LANES, readout: str = "fp32") -> np.ndarray:
    """y = x @ W computed as the banks would for this placement (float32 [d_out])."""
    return PimMatrix.from_dense(W, placement, lanes)(x, readout)


def pim_vmm_from_image(x: np.ndarray, image: Image, placement, lanes: int = LANES,
                       readout: str = "fp32") -> np.ndarray:
    """Like `pim_vmm`, but the weights are read from `image` (see `dram_image`) at the places the
    placement names; an overlapping or mis-offset placement reads wrong weights."""
    return PimMatrix.from_image(image, placement, lanes)(x, readout)


# ---------------------------------------------------------------------------------------------
# A KV layout of hwsim's own (cross-check of the mapping layer's `KvLayout`)


@dataclass(frozen=True)
class PackedKv:
    """K/V layout for cross-checks, same interface as `hwsim.mapping.kv_cache.KvLayout`
    (`score_placement(layer, ctx)`, `context_placement(layer, ctx)`).

    K row-major: token t in bank unit t mod NB, its d-element key contiguous from element
    (t div NB)·d of the unit's K region, so heads straddle rows when d_head does not divide the
    row. V column-major: dimension e in unit e mod NB, its `context` reserved tokens contiguous
    from element (e div NB)·context. Runs are cut at row boundaries; nothing is padded."""

    d: int
    n_heads: int
    context: int
    channels: int
    banks: int
    R: int
    base_row: int
    k_rows: int
    v_rows: int

    @classmethod
    def build(cls, model: ModelSpec, geometry=None, *, base_row: int = 0) -> "PackedKv":
        g = _geom(geometry)
        nb = g.channels * g.banks_per_channel
        k_rows = -(-(-(-model.context // nb) * model.d_model) // g.row_elems)
        v_rows = -(-(-(-model.d_model // nb) * model.context) // g.row_elems)
        return cls(model.d_model, model.n_heads, model.context, g.channels, g.banks_per_channel, g.row_elems,
                   base_row, k_rows, v_rows)

    def k_base(self, layer: int) -> int:
        return self.base_row + layer * (self.k_rows + self.v_rows)

    def score_placement(self, layer: int, ctx: int) -> Placement:
        dh, H, nb = self.d // self.n_heads, self.n_heads, self.channels * self.banks
        t = np.tile(np.arange(ctx, dtype=np.int64), H)
        h = np.repeat(np.arange(H, dtype=np.int64), ctx)
        arr = _split_runs(t % nb, (t // nb) * self.d + h * dh, np.full(H * ctx, dh, np.int64), h * ctx + t,
                          h * dh, R=self.R, channels=self.channels, first_row=self.k_base(layer))
        return make_placement(f"L{layer}.attn.score@{ctx}", self.d, H * ctx, **arr)

    def context_placement(self, layer: int, ctx: int) -> Placement:
        dh, nb = self.d // self.n_heads, self.channels * self.banks
        e = np.arange(self.d, dtype=np.int64)
        arr = _split_runs(e % nb, (e // nb) * self.context, np.full(self.d, ctx, np.int64), e, (e // dh) * ctx,
                          R=self.R, channels=self.channels, first_row=self.k_base(layer) + self.k_rows)
        return make_placement(f"L{layer}.attn.context@{ctx}", self.n_heads * ctx, self.d, **arr)


# ---------------------------------------------------------------------------------------------
# ASIC numerics


@dataclass(frozen=True)
class AsicNumerics:
    """How the ASIC computes its non-linear functions (all in FP32).

    `exact`: numpy FP32 exp, division, sqrt and tanh. `approx` (the ASIC; the algorithms whose
    operations `hwsim.asic.vector_unit` counts):
    * exp(x) = 2^n · 2^f with x·log2(e) = n + f, f in [0, 1); 2^f = e^(f ln 2) by its Taylor
      polynomial of degree `exp_degree`; 2^n by an exponent add;
    * 1/a: magic-constant seed (0x7EF311C3 - bits) and `recip_iters` Newton-Raphson steps
      y <- y(2 - a·y);
    * 1/sqrt(a): Quake III seed (0x5F3759DF - bits/2) and `rsqrt_iters` steps y <- y(1.5 - a/2·y²);
    * tanh(u) (GELU): u·P(u²) on u clamped to +-c, P of degree (`tanh_degree` - 1)/2 in u²,
      minimax-fitted with P(c)·c = 1 (`tanh_poly`)."""

    mode: Literal["exact", "approx"] = "approx"
    exp_degree: int = 4
    recip_iters: int = 2
    rsqrt_iters: int = 1
    tanh_degree: int = 7

    @classmethod
    def from_asic_spec(cls, spec) -> "AsicNumerics":
        """The approximation settings of an `hwsim.asic.spec.AsicSpec`."""
        return cls("approx", int(spec.exp_taylor_degree), int(spec.recip_newton_iterations),
                   int(spec.rsqrt_newton_iterations), int(spec.gelu_tanh_degree))


# "asic" = the pim_gpt_asic preset (exp degree 4, 2 reciprocal and 1 rsqrt iterations, tanh degree 7)
NUMERICS = {"exact": AsicNumerics("exact"), "asic": AsicNumerics()}


def numerics_from(value: Any, asic_spec=None) -> AsicNumerics:
    """"exact", "asic" (the settings of `asic_spec` when given, else the preset's), None (= "asic")
    or an AsicNumerics."""
    if isinstance(value, AsicNumerics):
        return value
    if value is None or value == "asic":
        return AsicNumerics.from_asic_spec(asic_spec) if asic_spec is not None else NUMERICS["asic"]
    if value not in NUMERICS:
        raise InputError(None, "--numerics", f"got {value!r}; expected one of {', '.join(NUMERICS)}")
    return NUMERICS[value]


@lru_cache(maxsize=None)
def tanh_poly(degree: int) -> tuple[float, tuple[float, ...]]:
    """(clamp c, coefficients a_1, a_3, ... of u, u³, ...) of the odd polynomial the ASIC uses for
    tanh on [-c, c]: a Lawson minimax fit over [0, c] plus the saturated tail (the fit also asks
    P(c) = 1), c chosen on a 0.05 grid to minimise the error over all u. Degree 7: c = 2.4,
    max |error| 8.2e-3."""
    if degree < 1 or degree % 2 == 0:
        raise ValueError(f"tanh degree must be odd, got {degree}")
    pw = np.arange(1, degree + 1, 2)
    u = np.linspace(0.0, 12.0, 24001)
    best = None
    for c in np.arange(1.0, 6.0001, 0.05):
        g = np.linspace(0.0, c, 801)
        A = np.vstack([g[:, None] ** pw, (c ** pw)[None]])
        t = np.r_[np.tanh(g), 1.0]
        w = np.ones_like(t)
        for _ in range(60):
            coef = np.linalg.lstsq(A * np.sqrt(w)[:, None], t * np.sqrt(w), rcond=None)[0]
            e = np.abs(A @ coef - t)
            w = w * (e + 1e-15)
            w /= w.sum()
        err = np.abs((np.minimum(u, c)[:, None] ** pw) @ coef - np.tanh(u)).max()
        if best is None or err < best[0]:
            best = (err, float(c), tuple(float(a) for a in coef))
    return best[1], best[2]


_LOG2E = F32(1.4426950408889634)


class AsicMath:
    """The ASIC's FP32 element-wise functions under an `AsicNumerics` setting."""

    def __init__(self, numerics: AsicNumerics | str | None = None):
        self.n = numerics_from(numerics)
        if self.n.mode == "approx":
            self._exp_c = [F32(math.log(2.0) ** k / math.factorial(k)) for k in range(self.n.exp_degree + 1)]
            c, coef = tanh_poly(self.n.tanh_degree)
            self._tanh_clamp, self._tanh_c = F32(c), [F32(a) for a in coef]

    def exp(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.float32)
        if self.n.mode == "exact":
            return np.exp(x)
        t = np.clip(x, F32(-110.0), F32(88.0)) * _LOG2E
        n = np.floor(t)
        f = t - n
        p = np.full_like(f, self._exp_c[-1])
        for c in reversed(self._exp_c[:-1]):  # Horner in f: 2^f = sum (f ln2)^k / k!
            p = p * f + c
        return np.ldexp(p, n.astype(np.int32))

    def recip(self, a: np.ndarray) -> np.ndarray:
        a = np.asarray(a, np.float32)
        if self.n.mode == "exact":
            return F32(1.0) / a
        m = np.abs(a)
        y = (np.uint32(0x7EF311C3) - np.minimum(m.view(np.uint32), np.uint32(0x7EF311C3))).view(np.float32)
        for _ in range(self.n.recip_iters):
            y = y * (F32(2.0) - m * y)
        return np.copysign(y, a)

    def rsqrt(self, a: np.ndarray) -> np.ndarray:
        a = np.asarray(a, np.float32)
        if self.n.mode == "exact":
            return F32(1.0) / np.sqrt(a)
        y = (np.uint32(0x5F3759DF) - (a.view(np.uint32) >> np.uint32(1))).view(np.float32)
        half = a * F32(0.5)
        for _ in range(self.n.rsqrt_iters):
            y = y * (F32(1.5) - half * y * y)
        return y

    def tanh(self, u: np.ndarray) -> np.ndarray:
        u = np.asarray(u, np.float32)
        if self.n.mode == "exact":
            return np.tanh(u)
        uc = np.clip(u, -self._tanh_clamp, self._tanh_clamp)
        u2 = uc * uc
        p = np.full_like(u2, self._tanh_c[-1])
        for c in reversed(self._tanh_c[:-1]):
            p = p * u2 + c
        return uc * p

    def gelu(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.float32)
        u = F32(math.sqrt(2.0 / math.pi)) * (x + F32(0.044715) * (x * x * x))
        return F32(0.5) * x * (F32(1.0) + self.tanh(u))

    def layernorm(self, x: np.ndarray, g: np.ndarray, b: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.float32)
        inv_d = F32(1.0 / x.shape[-1])
        mu = np.sum(x, axis=-1, keepdims=True, dtype=np.float32) * inv_d
        xc = x - mu
        var = np.sum(xc * xc, axis=-1, keepdims=True, dtype=np.float32) * inv_d
        return xc * self.rsqrt(var + F32(LN_EPS)) * g + b

    def softmax(self, s: np.ndarray) -> np.ndarray:
        """Row-wise softmax of float32 scores."""
        s = np.asarray(s, np.float32)
        e = self.exp(s - s.max(axis=-1, keepdims=True))
        return e * self.recip(np.sum(e, axis=-1, keepdims=True, dtype=np.float32))


# ---------------------------------------------------------------------------------------------
# The model on the PIM path

MATRICES = (("attn.qkv", "attn.c_attn"), ("attn.proj", "attn.c_proj"), ("mlp.fc1", "mlp.c_fc"),
            ("mlp.fc2", "mlp.c_proj"))


def default_pim():
    """The PIM-GPT PIM spec when `hwsim.dram_pim.pim` provides one, else the equivalent geometry
    (8 channels x 16 banks, 1,024-element rows, 16 lanes, 2 KB global buffer, BF16 readout)."""
    try:
        from hwsim.dram_pim.pim import load_pim  # type: ignore[import-not-found]
    except ImportError:
        return PimGeometry()
    return load_pim("pim_gpt")


class PimGpt:
    """GPT-2 decode on the PIM path: every matrix written into a DRAM image at the places its
    placement names and read back through the MAC model; K and V appended into one KV image at
    the places the attention placements name; ASIC functions per `numerics`.

    `layout="pim_gpt"`: the mapping layer (`hwsim.mapping.partition.place_model` and its
    `KvLayout`); `layout="packed"`: `packed_placement` + `PackedKv` (cross-check)."""

    def __init__(self, model: ModelSpec, weights: dict[str, np.ndarray], pim=None,
                 numerics: AsicNumerics | str | None = None, *, layout: str = "pim_gpt",
                 readout: str | None = None, check: bool = True):
        self.model = model
        self.pim = pim if pim is not None else default_pim()
        g = self.geom = _geom(self.pim)
        self.math = AsicMath(numerics)
        self.readout = readout or g.result_format
        self.lanes = g.mac_lanes
        shapes = {"attn.qkv": (model.d_model, 3 * model.d_model), "attn.proj": (model.d_model, model.d_model),
                  "mlp.fc1": (model.d_model, model.d_ff), "mlp.fc2": (model.d_ff, model.d_model)}
        if layout == "pim_gpt":
            if place_model is None:  # pragma: no cover
                raise ValueError("layout 'pim_gpt' needs hwsim.mapping.partition")
            mp = place_model(model, self.pim, model.context)
            self.placements = dict(mp.ops)
            self.kv = mp.kv
            if check:
                from hwsim.mapping.partition import check_model_placement
                check_model_placement(mp)
        elif layout == "packed":
            self.placements, row = {}, 0
            for i in range(model.n_layers):
                for role, _ in MATRICES:
                    p = packed_placement(f"L{i}.{role}", *shapes[role], g, row)
                    self.placements[p.name] = p
                    row = int(p.row.max()) + 1
            self.placements["lm_head"] = p = packed_placement("lm_head", model.d_model, model.vocab, g, row)
            row = int(p.row.max()) + 1
            self.kv = PackedKv.build(model, g, base_row=row)
            end = self.kv.k_base(model.n_layers)
            if end > g.rows_per_bank:
                raise InputError(None, "model", f"{model.name} needs {end} rows per bank with layout 'packed'; "
                                                f"a bank has {g.rows_per_bank}")
        else:
            raise ValueError(f"layout must be 'pim_gpt' or 'packed', got {layout!r}")
        self.layout = layout
        # Parameters the ASIC keeps (embeddings, biases, LayerNorm) are BF16-stored as well.
        self.p = {k: bf16_round(v) for k, v in weights.items() if not k.endswith(".weight") or "ln_" in k}
        self.mats: dict[str, PimMatrix] = {}
        for name, pl in self.placements.items():
            W = weights["wte"].T if name == "lm_head" else \
                weights[f"h.{name.split('.')[0][1:]}.{dict(MATRICES)[name.split('.', 1)[1]]}.weight"]
            if check:
                check_coverage(pl, g)
            self.mats[name] = PimMatrix.from_image(dram_image(W, pl, g), pl, self.lanes)
        self.reset()

    def reset(self) -> None:
        self.kv_image: Image = {}
        self.t = 0

    def _append_kv(self, layer: int, k: np.ndarray, v: np.ndarray) -> None:
        """Write k_t and v_t where the attention placements for t+1 tokens expect token t."""
        m, t, T = self.model, self.t, self.t + 1
        dh, H = m.d_head, m.n_heads
        dim = np.arange(m.d_model, dtype=np.int64)
        h = dim // dh
        write_entries(self.kv_image, self.kv.score_placement(layer, T), dim, h * T + t, k, self.geom.row_elems)
        write_entries(self.kv_image, self.kv.context_placement(layer, T), h * T + t, dim, v, self.geom.row_elems)

    def step(self, token: int, want_logits: bool = True) -> np.ndarray | None:
        """Feed one token at the next position; float32 logits [vocab] when `want_logits`."""
        m, p, f, ro, L = self.model, self.p, self.math, self.readout, self.lanes
        H, T = m.n_heads, self.t + 1
        x = p["wte"][token] + p["wpe"][self.t]
        for i in range(m.n_layers):
            pre = f"h.{i}."
            a = f.layernorm(x, p[pre + "ln_1.weight"], p[pre + "ln_1.bias"])
            qkv = self.mats[f"L{i}.attn.qkv"](a, ro) + p[pre + "attn.c_attn.bias"]
            q, k, v = np.split(qkv, 3)
            self._append_kv(i, k, v)  # K, V stored as BF16
            scores = pim_vmm_from_image(q, self.kv_image, self.kv.score_placement(i, T), L, ro).reshape(H, T)
            probs = f.softmax(scores * F32(1.0 / math.sqrt(m.d_head)))
            ctx = pim_vmm_from_image(probs.reshape(-1), self.kv_image, self.kv.context_placement(i, T), L, ro)
            x = x + (self.mats[f"L{i}.attn.proj"](ctx, ro) + p[pre + "attn.c_proj.bias"])
            a = f.layernorm(x, p[pre + "ln_2.weight"], p[pre + "ln_2.bias"])
            hdn = f.gelu(self.mats[f"L{i}.mlp.fc1"](a, ro) + p[pre + "mlp.c_fc.bias"])
            x = x + (self.mats[f"L{i}.mlp.fc2"](hdn, ro) + p[pre + "mlp.c_proj.bias"])
        self.t += 1
        if not want_logits:
            return None
        return self.mats["lm_head"](f.layernorm(x, p["ln_f.weight"], p["ln_f.bias"]), ro)

    def generate(self, prompt_ids: list[int], generate: int) -> tuple[list[int], np.ndarray]:
        """Greedy decode: (generated ids, float32 logits [generate, vocab]); the logits of step k
        chose generated token k (ties: the lowest id)."""
        if not prompt_ids or generate < 1 or len(prompt_ids) + generate - 1 > self.model.context:
            raise ValueError("need a non-empty prompt, generate >= 1 and prompt + generate - 1 <= context")
        self.reset()
        for tok in prompt_ids[:-1]:
            self.step(int(tok), want_logits=False)
        logits = np.empty((generate, self.model.vocab), np.float32)
        ids: list[int] = []
        last = self.step(int(prompt_ids[-1]))
        for k in range(generate):
            logits[k] = last
            ids.append(int(np.argmax(last)))
            if k + 1 < generate:
                last = self.step(ids[-1])
        return ids, logits


# ---------------------------------------------------------------------------------------------
# CLI entry point


def parse_prompt_ids(value: Any, vocab: int) -> list[int]:
    """Token ids from '15496,11,616' or a list; InputError naming --prompt-ids."""
    if isinstance(value, str):
        try:
            ids = [int(s) for s in value.split(",") if s.strip()]
        except ValueError:
            raise InputError(None, "--prompt-ids",
                             f"got {value!r}; expected comma-separated integer token ids") from None
    else:
        try:
            ids = [int(v) for v in value]
        except (TypeError, ValueError):
            raise InputError(None, "--prompt-ids", f"got {value!r}; expected integer token ids") from None
    if not ids:
        raise InputError(None, "--prompt-ids", "empty; expected at least one token id")
    for k, t in enumerate(ids):
        if not 0 <= t < vocab:
            raise InputError(None, "--prompt-ids", f"got {t} at position {k}; expected 0..{vocab - 1} (vocab {vocab})")
    return ids


def _workload_parts(wl):
    """(ModelSpec, PIM spec or None, ASIC spec or None) of a loaded `pim_gpt` workload: its
    `model`, `hardware.pim` and `hardware.asic` (presets or mappings, loaded here)."""
    from hwsim.models import load_model
    cfg, file = getattr(wl, "config", wl), getattr(wl, "file", None)
    model = load_model(getattr(cfg, "model", cfg), file=file)
    hw = getattr(cfg, "hardware", None)
    pim = getattr(hw, "pim", None)
    asic = getattr(hw, "asic", None)
    if pim is not None and not hasattr(pim, "row_elems"):
        from hwsim.asic.workload import pim_value
        from hwsim.dram_pim.pim import load_pim
        pim = load_pim(pim_value(pim), file, "hardware.pim")
    if asic is not None and not hasattr(asic, "exp_taylor_degree"):
        from hwsim.asic.spec import load_asic
        asic = load_asic(asic, file, "hardware.asic")
    return model, pim, asic


def run_functional(wl, weights_path: str | Path, prompt_ids: Any, generate: Any,
                   dump_logits: str | Path | None = None, *, numerics: AsicNumerics | str | None = None,
                   compare: bool = True, layout: str = "pim_gpt") -> dict:
    """Run the model of workload `wl` on the weights through the PIM path, greedy-decode
    `generate` tokens, write float32 logits [generate, vocab] to `dump_logits` (.npy, atomic) and
    return a summary. With `compare`, the float64 reference (`hwsim.reference_gpt`) runs on the
    same token sequence (teacher-forced) for the logit error and the top-1 agreement."""
    from hwsim.reference_gpt import greedy_decode
    from hwsim.weights import load_gpt2_npz

    model, pim, asic = _workload_parts(wl)
    if isinstance(generate, bool) or not isinstance(generate, (int, np.integer)) or generate < 1:
        raise InputError(None, "--generate", f"got {generate!r}; expected an integer >= 1")
    generate = int(generate)
    ids = parse_prompt_ids(prompt_ids, model.vocab)
    if len(ids) + generate > model.context:
        raise InputError(None, "--generate", f"got {generate}; prompt ({len(ids)} tokens) + generate must be "
                                             f"<= the context of {model.context} ({model.name})")
    num = numerics_from(numerics, asic)
    weights = load_gpt2_npz(weights_path, model)
    t0 = time.perf_counter()
    net = PimGpt(model, weights, pim, num, layout=layout)
    t1 = time.perf_counter()
    gen, logits = net.generate(ids, generate)
    t2 = time.perf_counter()
    if dump_logits is not None:
        with atomic_file(dump_logits, "wb") as fh:
            np.save(fh, logits.astype(np.float32))
    summary: dict[str, Any] = {
        "model": model.name, "numerics": "exact" if num.mode == "exact" else
        f"asic (exp degree {num.exp_degree}, recip {num.recip_iters} NR, rsqrt {num.rsqrt_iters} NR, "
        f"tanh degree {num.tanh_degree})",
        "readout": net.readout, "layout": layout, "channels": net.geom.channels,
        "banks_per_channel": net.geom.banks_per_channel,
        "prompt_ids": ids, "generated_ids": gen, "steps": generate, "vocab": model.vocab,
        "logits_file": str(dump_logits) if dump_logits is not None else None,
        "setup_s": round(t1 - t0, 3), "decode_s": round(t2 - t1, 3),
    }
    if compare:
        ref_ids, ref = greedy_decode(model, weights, ids, generate, forced_ids=gen)
        err = np.abs(logits.astype(np.float64) - ref)
        summary.update({
            "reference_ids": ref_ids,
            "max_abs_logit_error": float(err.max()),
            "max_abs_logit": float(np.abs(ref).max()),
            "top1_agreement": float(np.mean(np.asarray(ref_ids) == np.asarray(gen))),
        })
    return summary
