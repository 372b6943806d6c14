"""The PIM-GPT controller: compiles the decode op graph into instructions and executes them on
the event engine under one of two policies.

Instructions (one token; `L` = layer prefix `Li.`; op ids are those of `hwsim.graph`):

    [embed fetch]   link: token row + position row from the PIM DRAM       op embed     (transfer)
    [embed add]     ASIC: token + position                                  op embed     (asic)
    per layer:
    param fetch     link: the layer's LayerNorm gains/biases and biases     op L.ln1     (transfer)
                    (only with `params: fetch`)
    ln1             ASIC: LayerNorm                                         op L.ln1
    qkv             PIM:  x (d) -> q, k, v (3d), broadcast + MAC + readout  op L.attn.qkv
    qkv epilogue    ASIC: partial-sum accumulation (tiled) + bias add       op L.attn.qkv
    kv append       PIM:  write k (row-major) and v (column-major)          op L.attn.kv_write
    score           PIM:  q . K^T for every head                            op L.attn.score
    softmax         ASIC: accumulation (if tiled), scaling 1/sqrt(d_head),  op L.attn.score/softmax
                          softmax per head
    context         PIM:  p . V for every head                              op L.attn.context
    context epil.   ASIC: partial-sum accumulation (if tiled)               op L.attn.context
    proj            PIM:  d -> d                                            op L.attn.proj
    proj epilogue   ASIC: accumulation + bias add, residual add             op L.attn.proj, L.attn.residual
    ln2             ASIC: LayerNorm                                         op L.ln2
    fc1             PIM:  d -> d_ff                                         op L.mlp.fc1
    fc1 epilogue    ASIC: accumulation + bias add, GELU                     op L.mlp.fc1, L.mlp.gelu
    fc2             PIM:  d_ff -> d (tiled along d_in)                      op L.mlp.fc2
    fc2 epilogue    ASIC: accumulation + bias add, residual add             op L.mlp.fc2, L.mlp.residual
    [ln_f fetch], ln_f (ASIC), [lm_head (PIM), lm_head epilogue (ASIC: accumulation, argmax)]

Every instruction also costs `instruction_issue_cycles` ASIC cycles (category `other`); a PIM
instruction costs the link latency once for the command path and once for the result return
(category `transfer`); the PIM command stream itself (global-buffer writes of the vector, MACs,
result reads) is the PIM's time (category `pim_vmm`, or `kv_write` for KV appends).

Policies:

- `serial` (the paper's simulator, pim-gpt.md §9 [SIM]): an instruction is issued only when the
  ASIC and every PIM channel are idle, so the token latency is exactly the sum of the
  instruction latencies.
- `overlap`: the ASIC and the PIM channels each execute their instructions in program order;
  an instruction waits only for its data dependencies and its own unit. What overlaps:
  (1) *streamed epilogues*: an ASIC epilogue (accumulation, bias, GELU, residual, scaling)
  consumes a VMM's outputs as the PIM reads them out, so it may start with its VMM and ends at
  max(its start + its duration, VMM end + the epilogue's time on the last readout round of
  `banks` outputs); (2) *parameter prefetch*: a layer's parameter fetch uses the channels as
  soon as the previous PIM instruction is done, concurrently with the ASIC's work (LayerNorm
  waits for it); (3) instruction issue overlaps the other unit's work. Nothing else overlaps:
  LayerNorm and softmax need whole vectors, every VMM needs its whole input vector, and the
  channels are one resource (a VMM uses all channels). Tokens never overlap (the next token's
  embedding needs the previous token's argmax).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np

from hwsim.asic.spec import AsicSpec
from hwsim.asic.vector_unit import ZERO, VectorCost, VectorUnit
from hwsim.engine import Engine, SimulationError
from hwsim.models import ModelSpec

CATEGORIES = ("pim_vmm", "kv_write", "transfer", "asic", "other")
# Overlap-mode attribution: an instant where several units are busy counts for the first of these.
_PRIORITY = {c: i for i, c in enumerate(CATEGORIES)}
Policy = Literal["serial", "overlap"]


# --------------------------------------------------------------------------------------------
# What the controller needs from the PIM side


@dataclass
class PimOpResult:
    """Outcome of one PIM instruction as the controller sees it."""

    end_ps: int                      # when the last command's effect is done (results read out)
    busy_ps: int                     # PIM time of the instruction (end - start unless stalled)
    counts: dict[str, float] = field(default_factory=dict)   # energy-table action counts (PIM side)
    row_hits: int = 0
    row_misses: int = 0
    bytes_in: int = 0                # ASIC -> PIM (vector broadcast, KV data)
    bytes_out: int = 0               # PIM -> ASIC (results)
    first_out_ps: int | None = None  # when the first results are available (streaming); None: end
    other_ps: int = 0                # part of busy_ps spent on refresh (category other)
    phases_ps: dict[str, int] = field(default_factory=dict)  # PIM time by phase (critical channel)
    channel_end_ps: tuple[int, ...] = ()   # per PIM channel: when its part of the instruction is done


class PimPort(Protocol):
    """The PIM as the controller drives it (implemented over `hwsim.dram_pim.pim.PimSystem`)."""

    banks: int  # MAC units working in parallel (outputs per readout round)

    def weight(self, op_id: str) -> Any: ...                       # placement of a weight VMM
    def score(self, layer: int, ctx: int) -> Any: ...              # placement of q.K^T
    def context(self, layer: int, ctx: int) -> Any: ...            # placement of p.V
    def parts(self, placement: Any) -> int: ...                    # partial results per output
    def vmm(self, placement: Any, start_ps: int, memo: bool) -> PimOpResult: ...
    def kv_append(self, layer: int, token: int, start_ps: int, memo: bool) -> PimOpResult: ...
    def refresh_idle(self, now_ps: int) -> int | None: ...        # overlap: refresh while idle
    def layer_rows(self, layer: int) -> int: ...                    # rows from layer 0's KV region up to the layer's
    def tiles(self, placement: Any, max_rows: int) -> list: ...    # one instruction per piece


class PimSystemPort:
    """`PimPort` over `hwsim.dram_pim.pim.PimSystem` (ticks of the DRAM command clock <-> ps).

    Refresh (the PIM's `deferred` policy): before each PIM instruction, owed REFab are flushed at
    the instruction boundary (`flush_refresh`); their time counts as `other`."""

    def __init__(self, system, model_placement):
        from hwsim.dram_pim.pim import pim_energy_counts

        self.system = system
        self.mp = model_placement
        self.tck = system.tCK_ps
        self.banks = system.spec.banks_total
        self._energy_counts = pim_energy_counts
        self._parts: dict[bytes, int] = {}
        self.results: list = []          # every VmmResult of the current token (energy counts)
        self._serial = None              # or the current token's compiled serial run (its energy counts)

    def weight(self, op_id: str):
        return self.mp[op_id]

    def score(self, layer: int, ctx: int):
        return self.system.kv_score_placement(layer, ctx)

    def context(self, layer: int, ctx: int):
        return self.system.kv_context_placement(layer, ctx)

    def parts(self, placement) -> int:
        from hwsim.mapping.partition import placement_signature

        sig = placement_signature(placement)
        n = self._parts.get(sig)
        if n is None:
            n = self._parts[sig] = int(np.bincount(placement.out_index).max()) if placement.n_segments else 1
        return n

    def tiles(self, placement, max_rows: int = 0) -> list:
        """The placement cut into PIM instructions: one per input chunk (global-buffer window),
        and within a chunk at most `max_rows` rows per bank (0: no limit). Equal pieces have equal
        signatures, so their simulations are memoised."""
        from hwsim.mapping.partition import make_placement, window_elems

        if placement.n_segments == 0:
            return [placement]
        W = window_elems(self.system.spec)
        key = placement.in_start // W
        if max_rows:
            lo = np.full(int(key.max()) + 1, np.iinfo(np.int64).max, dtype=np.int64)
            np.minimum.at(lo, key, placement.row)
            key = key * (1 << 32) + (placement.row - lo[key]) // max_rows
        uniq = np.unique(key)
        if len(uniq) == 1:
            return [placement]
        out = []
        for i, u in enumerate(uniq.tolist()):
            sel = np.flatnonzero(key == u)
            out.append(make_placement(f"{placement.name}.t{i}", placement.d_in, placement.d_out,
                                      *(getattr(placement, a)[sel] for a in
                                        ("channel", "bank", "row", "col_elem", "out_index", "in_start", "length"))))
        return out

    def layer_rows(self, layer: int) -> int:
        """How many rows above layer 0's the KV region of `layer` starts: the first rows (memo
        bases) of its attention instructions are layer 0's plus this."""
        return layer * self.system._kv().rows_per_layer

    def _refresh(self, tick: int) -> tuple[int, list]:
        r = self.system.flush_refresh(start_tick=tick)
        return (r.end_tick, [r]) if r is not None else (tick, [])

    def _wrap(self, start_tick: int, pre: list, r) -> PimOpResult:
        rs = pre + [r]
        self.results.extend(rs)
        counts = {}
        for k, v in r.commands.items():
            counts[k] = v
        for q in pre:
            for k, v in q.commands.items():
                counts[k] = counts.get(k, 0) + v
        other = (pre[-1].end_tick - start_tick) * self.tck if pre else 0
        return PimOpResult(end_ps=r.end_tick * self.tck, busy_ps=(r.end_tick - start_tick) * self.tck,
                           counts=counts, row_hits=r.row_hits, row_misses=r.row_misses, bytes_in=r.bytes_in,
                           bytes_out=r.bytes_out, other_ps=other,
                           phases_ps={k: v * self.tck for k, v in r.cycles.items() if v},
                           channel_end_ps=tuple(e * self.tck for e in r.channel_end_tick))

    def vmm(self, placement, start_ps: int, memo: bool) -> PimOpResult:
        t = -(-start_ps // self.tck)
        t2, pre = self._refresh(t)
        return self._wrap(t, pre, self.system.vmm(placement, memo=memo, start_tick=t2))

    def kv_append(self, layer: int, token: int, start_ps: int, memo: bool) -> PimOpResult:
        t = -(-start_ps // self.tck)
        t2, pre = self._refresh(t)
        return self._wrap(t, pre, self.system.kv_append(layer, token, memo=memo, start_tick=t2))

    def refresh_idle(self, now_ps: int) -> int | None:
        """Flush owed refreshes now (the channels are idle); return when they are done, or None."""
        t = -(-now_ps // self.tck)
        t2, pre = self._refresh(t)
        if not pre:
            return None
        self.results.extend(pre)
        return t2 * self.tck

    @property
    def compiled_serial(self) -> bool:
        """Whether `run_serial` can run a token (not while the system keeps a command log)."""
        return not self.system.record

    def memo_key(self, vmm: bool, payload) -> tuple[int, int, int]:
        """(memo signature id, first row, useful MACs or -1) of a VMM or KV-append instruction."""
        return self.system.vmm_key(payload) if vmm else self.system.kv_append_key(*payload)

    def run_serial(self, enc: "_Encoding", now_ps: int, issue_ps: int, lat_ps: int):
        """A serial program as one compiled loop (`hwsim.dram_pim.serial.run_serial`); its energy
        counts are this token's."""
        from hwsim.dram_pim.serial import run_serial

        self._serial = run_serial(self.system, enc.kind, enc.pre_ps, enc.back_ps, enc.op, len(enc.pim_ops),
                                  enc.payloads, enc.sig, enc.base, enc.macs, now_ps, issue_ps, lat_ps)
        return self._serial

    def energy_counts(self, elapsed_ns: float) -> dict[str, float]:
        """Energy-table counts of this token's PIM work, standby over `elapsed_ns`; clears the list."""
        if self._serial is not None:
            out = self._serial.energy_counts(self.system.spec.channels, elapsed_ns)
            self._serial = None
            return out
        out = self._energy_counts(self.results, elapsed_ns=elapsed_ns) if self.results else {}
        self.results = []
        return out


# --------------------------------------------------------------------------------------------
# Instructions


@dataclass(frozen=True, slots=True)
class Part:
    """A piece of an instruction's work, accounted to one op id and one category."""

    op_id: str
    category: str
    cost: VectorCost = ZERO


@dataclass(frozen=True, slots=True)
class Instr:
    """One instruction. `unit` is 'asic' or 'pim' (the channels: VMM, KV append, link fetch)."""

    name: str
    unit: str
    kind: str                       # vector | vmm | kv_append | fetch
    op_id: str                      # the op the instruction belongs to (first part for vector)
    parts: tuple[Part, ...] = ()    # vector: the passes, in order
    payload: Any = None             # vmm: placement; kv_append: (layer, token); fetch: (bytes, channels)
    deps: tuple[int, ...] = ()      # indices (within the token program) it needs finished
    stream_from: int = -1           # overlap: may stream the outputs of this instruction
    tail_cycles: int = 0            # overlap: epilogue cycles on the VMM's last readout round


class Program(list):
    """A token's instructions. Programs with the same `template` hold the same instruction objects
    everywhere but at the positions `dynamic` (the context-dependent attention blocks, one per
    layer, at `sites`: (position, layer)). `attention` is (layer 0's block, ctx, token). A `lazy`
    program holds None at the other layers' block positions: the compiled serial executor derives
    them from layer 0's (`_Encoding.add_attention`)."""

    template: object | None = None
    dynamic: tuple[int, ...] = ()
    shape: object = None
    sites: tuple[tuple[int, int], ...] = ()
    attention: tuple | None = None
    lazy: bool = False


@dataclass(frozen=True)
class CompileOptions:
    include_embedding: bool = True
    include_lm_head: bool = True
    params: str = "fetch"            # fetch | resident
    tile_vmms: bool = True           # one PIM instruction per input chunk (global-buffer window)
    max_rows: int = 64               # ... and at most this many rows per bank (0: no limit)
    include_final_layernorm: bool = True   # ln_f (and its parameter fetch) before the LM head


def layer_param_elems(model: ModelSpec) -> int:
    """LayerNorm gains/biases (4d) and linear biases (3d + d + d_ff + d) of one layer."""
    d = model.d_model
    return 4 * d + 3 * d + d + model.d_ff + d


# Positions of the instructions in an attention block (`Compiler._attention`); a context
# epilogue, if any, follows.
KV_ROLE, SCORE_ROLE, SOFTMAX_ROLE, CONTEXT_ROLE = range(4)


def layer_op_id(op_id: str, layer: int) -> str:
    """Layer `layer`'s op id of layer 0's op id `op_id` ("L0.attn.score" -> "L5.attn.score")."""
    return f"L{layer}.{op_id[3:]}" if layer else op_id


def attention_payload(pim: PimPort, role: int, layer: int, ctx: int, token: int):
    """The payload `Compiler._attention` gives the PIM instruction at `role` of layer `layer`'s block."""
    if role == KV_ROLE:
        return (layer, token)
    return pim.score(layer, ctx) if role == SCORE_ROLE else pim.context(layer, ctx)


class Compiler:
    """Turns the decode step of `model` at one context length into an instruction list."""

    def __init__(self, model: ModelSpec, vu: VectorUnit, pim: PimPort, opts: CompileOptions):
        self.model, self.vu, self.pim, self.opts = model, vu, pim, opts
        m = model
        self._weights = {}
        roles = ("attn.qkv", "attn.proj", "mlp.fc1", "mlp.fc2")
        ops = [f"L{i}.{r}" for i in range(m.n_layers) for r in roles] + (["lm_head"] if opts.include_lm_head else [])
        for op in ops:
            pl = pim.weight(op)
            tiles = pim.tiles(pl, opts.max_rows) if opts.tile_vmms else (pl,)
            self._weights[op] = (tuple(tiles), pim.parts(pl))
        self._epilogues: dict[tuple, tuple] = {}   # (name, n, k) -> (parts, tail cycles): the same every token
        self._tile_names: dict[str, list[str]] = {}
        self._last: Program | None = None
        self._attention_sites: list[tuple[int, int, int]] = []   # (position, layer, qkv epilogue) per layer

    def _epilogue(self, name, make, n, k, producer, deps=()) -> Instr:
        """An ASIC epilogue over the n outputs of `producer` (k partial sums each); `make(m, k)`
        gives its parts on m elements (the tail is the last readout round: one output per MAC unit)."""
        key = (name, n, k)
        built = self._epilogues.get(key)
        if built is None:
            built = self._epilogues[key] = (tuple(make(n, k)), sum(p.cost.cycles for p in make(min(n, self.pim.banks), k)))
        parts, tail = built
        return Instr(name, "asic", "vector", parts[0].op_id, parts, None, (producer, *deps), producer, tail)

    def _attention(self, i: int, ctx: int, token: int, at: int, ep: int) -> list[Instr]:
        """Layer i's context-dependent block, placed at position `at` after the qkv epilogue `ep`:
        KV append, score VMM, softmax, context VMM and, when its outputs come in parts, their
        accumulation (the block's last instruction produces the attention output). Every layer's
        block is layer 0's with the layer in its names and op ids (`layer_op_id`) and its payloads
        those of the layer (`attention_payload`)."""
        vu, d, h = self.vu, self.model.d_model, self.model.n_heads
        p = f"L{i}."
        kv, sc, sm, cx = at + KV_ROLE, at + SCORE_ROLE, at + SOFTMAX_ROLE, at + CONTEXT_ROLE
        spl = self.pim.score(i, ctx)
        k = self.pim.parts(spl)
        sm_parts = []
        if k > 1:
            sm_parts.append(Part(p + "attn.score", "asic", vu.accumulate(h * ctx, k)))
        sm_parts.append(Part(p + "attn.softmax", "asic", vu.scale(h * ctx) + vu.softmax(h, ctx)))
        cpl = self.pim.context(i, ctx)
        block = [Instr(p + "kv", "pim", "kv_append", p + "attn.kv_write", (), (i, token), (ep,)),
                 Instr(p + "score", "pim", "vmm", p + "attn.score", (), spl, (ep, kv)),
                 Instr(p + "softmax", "asic", "vector", sm_parts[0].op_id, tuple(sm_parts), None, (sc,)),
                 Instr(p + "context", "pim", "vmm", p + "attn.context", (), cpl, (sm, kv))]
        k = self.pim.parts(cpl)
        if k > 1:
            block.append(self._epilogue(p + "context.epi", lambda n, k: [
                Part(p + "attn.context", "asic", vu.accumulate(n, k))], d, k, cx))
        return block

    def token(self, ctx: int, token: int, *, lazy: bool = False) -> Program:
        """Instructions of the decode step that writes cache slot `token` (= ctx - 1). Only the
        attention blocks depend on the context: while their shape (whether the context VMM's outputs
        need accumulating) stays the previous token's, that program is reused with them rebuilt
        (with `lazy`, only layer 0's: the others are left None, `Program`)."""
        shape = self.pim.parts(self.pim.context(0, ctx)) > 1
        last = self._last
        if last is not None and last.shape == shape:
            prog = Program(last)
            prog.template, prog.dynamic, prog.shape, prog.sites = last.template, last.dynamic, shape, last.sites
            for n, (at, i, ep) in enumerate(self._attention_sites):
                if n == 0 or not lazy:
                    block = self._attention(i, ctx, token, at, ep)
                    if n == 0:
                        prog.attention = (tuple(block), ctx, token)
                    prog[at:at + len(block)] = block
                else:
                    prog[at:at + len(block)] = [None] * len(block)
            prog.lazy = lazy and len(self._attention_sites) > 1
            self._last = prog
            return prog
        prog = self._build(ctx, token)
        prog.template, prog.shape = object(), shape
        self._last = prog
        return prog

    def _build(self, ctx: int, token: int) -> Program:
        """`token`'s program built whole (recording where the attention blocks are)."""
        m, vu, o = self.model, self.vu, self.opts
        d, f = m.d_model, m.d_ff
        prog = Program()
        sites = self._attention_sites = []
        dynamic = []

        def emit(ins: Instr) -> int:
            prog.append(ins)
            return len(prog) - 1

        def vec(name, parts, deps):
            return emit(Instr(name, "asic", "vector", parts[0].op_id, tuple(parts), None, tuple(deps)))

        def epilogue(name, make, n, k, producer, deps=()):
            return emit(self._epilogue(name, make, n, k, producer, deps))

        def vmm(name, op, pl, deps):
            return emit(Instr(name, "pim", "vmm", op, (), pl, tuple(deps)))

        def tiled(name, op, deps):
            """One PIM instruction per input chunk of weight matrix `op`; returns (last, all, parts)."""
            tiles, k = self._weights[op]
            names = self._tile_names.get(name)
            if names is None:
                names = self._tile_names[name] = [name] if len(tiles) == 1 else [f"{name}.t{t}" for t in range(len(tiles))]
            ids = []
            for t, pl in enumerate(tiles):
                ids.append(vmm(names[t], op, pl, deps if t == 0 else [ids[-1]]))
            return ids[-1], ids[:-1], k

        def fetch(name, op, nbytes, channels=0):
            """A read of `nbytes` over the link, striped over `channels` interfaces (0: all)."""
            return emit(Instr(name, "pim", "fetch", op, (), (nbytes, channels), ()))

        x = -1  # producer of the residual stream
        if o.include_embedding:
            # one token-embedding row (a column of the tied LM head: one bank) and one position row,
            # each from one channel, in parallel
            e = fetch("embed.fetch", "embed", 2 * d * 2, channels=2)
            x = vec("embed.add", [Part("embed", "asic", vu.embedding_add(d))], [e])
        for i in range(m.n_layers):
            p = f"L{i}."
            deps = [x] if x >= 0 else []
            if o.params == "fetch":
                deps.append(fetch(p + "params", p + "ln1", layer_param_elems(m) * 2))
            ln1 = vec(p + "ln1", [Part(p + "ln1", "asic", vu.layernorm(d))], deps)
            qkv, more, k = tiled(p + "qkv", p + "attn.qkv", [ln1])
            ep = epilogue(p + "qkv.epi", lambda n, k: [
                Part(p + "attn.qkv", "asic", vu.accumulate(n, k) + vu.bias_add(n))], 3 * d, k, qkv, more)
            sites.append((len(prog), i, ep))
            block = self._attention(i, ctx, token, len(prog), ep)
            if i == 0:
                prog.attention = (tuple(block), ctx, token)
            dynamic.extend(range(len(prog), len(prog) + len(block)))
            prog.extend(block)
            y = len(prog) - 1
            pr, more, k = tiled(p + "proj", p + "attn.proj", [y])
            x = epilogue(p + "proj.epi", lambda n, k: [
                Part(p + "attn.proj", "asic", vu.accumulate(n, k) + vu.bias_add(n)),
                Part(p + "attn.residual", "asic", vu.residual_add(n))], d, k, pr, more + ([x] if x >= 0 else []))
            ln2 = vec(p + "ln2", [Part(p + "ln2", "asic", vu.layernorm(d))], [x])
            f1, more, k = tiled(p + "fc1", p + "mlp.fc1", [ln2])
            g = epilogue(p + "fc1.epi", lambda n, k: [
                Part(p + "mlp.fc1", "asic", vu.accumulate(n, k) + vu.bias_add(n)),
                Part(p + "mlp.gelu", "asic", vu.gelu(n))], f, k, f1, more)
            f2, more, k = tiled(p + "fc2", p + "mlp.fc2", [g])
            x = epilogue(p + "fc2.epi", lambda n, k: [
                Part(p + "mlp.fc2", "asic", vu.accumulate(n, k) + vu.bias_add(n)),
                Part(p + "mlp.residual", "asic", vu.residual_add(n))], d, k, f2, more + [x])
        deps = [x] if x >= 0 else []
        if o.include_final_layernorm:
            if o.params == "fetch":
                deps.append(fetch("ln_f.params", "ln_f", 2 * d * 2))
            lnf = vec("ln_f", [Part("ln_f", "asic", vu.layernorm(d))], deps)
        else:
            lnf = x
        if o.include_lm_head:
            lm, more, k = tiled("lm_head", "lm_head", [lnf] if lnf >= 0 else [])
            epilogue("lm_head.epi", lambda n, k: [
                Part("lm_head", "asic", vu.accumulate(n, k) + vu.reduce(1, n, "cmp"))], m.vocab, k, lm, more)
        prog.dynamic = tuple(dynamic)
        prog.sites = tuple((at, i) for at, i, _ in sites)
        return prog


# --------------------------------------------------------------------------------------------
# Execution


@dataclass
class TokenResult:
    """Timing and counts of one decode step."""

    start_ps: int
    end_ps: int
    breakdown_ps: dict[str, int]
    op_ps: dict[str, int]                 # busy time per op id (sums to latency under serial)
    asic_cost: VectorCost
    pim_counts: dict[str, float]
    link_bits: int
    row_hits: int
    row_misses: int
    offchip_bytes: int
    instructions: int
    refresh_ps: int = 0
    phases_ps: dict[str, int] = field(default_factory=dict)   # PIM instruction time by command phase
    segments: list[tuple[int, int, str, str]] | None = None   # (start, end, category, op id)
    schedule: list[tuple[str, str, int, int]] | None = None   # (name, unit, start, end) per instruction
    channel_spans: list[tuple[int, int, int, str]] | None = None   # (channel, start, end, op id) of PIM work

    @property
    def latency_ps(self) -> int:
        return self.end_ps - self.start_ps


class Executor:
    """Runs instruction lists on the engine under a policy, one token after another."""

    def __init__(self, engine: Engine, pim: PimPort, asic: AsicSpec, vu: VectorUnit, channels: int,
                 policy: Policy = "serial", memo: bool = True, keep_segments: bool = False):
        if policy not in ("serial", "overlap"):
            raise SimulationError(f"unknown policy {policy!r}")
        self.engine, self.pim, self.asic, self.vu = engine, pim, asic, vu
        self.policy, self.memo, self.keep_segments = policy, memo, keep_segments
        self.issue_ps = asic.cycles_to_ps(asic.instruction_issue_cycles)
        self.link_lat_ps = round(asic.link.latency_ns * 1000)
        self.link_Bpns = asic.link_bytes_per_ns(channels)
        self._encoded: tuple | None = None   # (template, _Encoding of its shared instructions): compiled serial
        self._layout: tuple | None = None    # (template, _AttentionLayout of its attention blocks)

    # -- durations ---------------------------------------------------------------------------
    def _fetch_ps(self, nbytes: int, channels: int = 0) -> int:
        """Link latency plus `nbytes` striped over `channels` channel interfaces (0: all)."""
        bw = self.link_Bpns if not channels else min(self.link_Bpns, self.asic.link.GBps_per_channel * channels)
        return self.link_lat_ps + math.ceil(nbytes * 1000 / bw)

    # -- one token ---------------------------------------------------------------------------
    @property
    def runs_compiled(self) -> bool:
        """Whether `run_token` runs programs as one compiled loop (the serial policy with the memo,
        no segments kept, a port that can): then programs may be `lazy` (`Compiler.token`)."""
        return (self.policy == "serial" and self.memo and not self.keep_segments
                and getattr(self.pim, "compiled_serial", False))

    def run_token(self, prog: list[Instr]) -> TokenResult:
        if self.runs_compiled:
            return self._run_token_compiled(prog)
        if getattr(prog, "lazy", False):
            raise SimulationError("a lazy program needs the compiled serial executor (internal error)")
        eng = self.engine
        t0 = eng.now_ps
        n = len(prog)
        start = [0] * n
        end = [0] * n
        done = [False] * n
        issued = [False] * n
        busy = {"asic": False, "pim": False}
        queues = {"asic": deque(), "pim": deque()}
        for i, ins in enumerate(prog):
            queues[ins.unit].append(i)
        acc = _Accumulator(self.keep_segments or self.policy == "overlap")
        serial = self.policy == "serial"
        state = {"next": 0}

        def ready(i: int) -> bool:
            ins = prog[i]
            for d in ins.deps:
                if d == ins.stream_from:
                    if not issued[d]:
                        return False
                elif not done[d]:
                    return False
            return True

        def try_issue() -> None:
            if serial:
                if busy["asic"] or busy["pim"] or state["next"] >= n:
                    return
                i = state["next"]
                state["next"] += 1
                queues[prog[i].unit].popleft()
                issue(i)
                return
            progressed = True
            while progressed:
                progressed = False
                for unit in ("pim", "asic"):
                    q = queues[unit]
                    if busy[unit] or not q:
                        continue
                    if ready(q[0]):
                        issue(q.popleft())
                        progressed = True

        def issue(i: int) -> None:
            ins = prog[i]
            now = eng.now_ps
            segs = self._execute(ins, now, acc, start, end, serial)
            start[i] = now
            end[i] = segs
            issued[i] = True
            busy[ins.unit] = True
            eng.schedule(segs, complete, i)

        def complete(i: int) -> None:
            done[i] = True
            busy[prog[i].unit] = False
            if not serial and prog[i].unit == "pim":
                # Overlap: owed refreshes go out as soon as the channels are idle, while the ASIC works.
                end_ps = self.pim.refresh_idle(eng.now_ps)
                if end_ps is not None and end_ps > eng.now_ps:
                    acc.segment(eng.now_ps, end_ps, "other", "refresh")
                    acc.refresh_ps += end_ps - eng.now_ps
                    busy["pim"] = True
                    eng.schedule(end_ps, free_pim)
                    return
            try_issue()

        def free_pim() -> None:
            busy["pim"] = False
            try_issue()

        eng.schedule(t0, try_issue)
        eng.run()
        if not all(done):
            raise SimulationError("deadlock: some instructions never became ready")
        t1 = max(end) if n else t0
        eng.run(t1)
        res = acc.result(t0, t1, n, self.policy)
        if self.keep_segments:
            res.schedule = [(ins.name, ins.unit, start[i], end[i]) for i, ins in enumerate(prog)]
        return res

    def _run_token_compiled(self, prog: list[Instr]) -> TokenResult:
        """`run_token` under the serial policy as one compiled loop over the program (the port's
        `run_serial`): the same times and totals. ASIC and link instructions only take their fixed
        durations there; their time and counts are added here (`_Encoding`, kept for the
        instructions a `Program` shares with the previous token's)."""
        enc = self.encode(prog)
        t0 = self.engine.now_ps
        r = self.pim.run_serial(enc, t0, self.issue_ps, self.link_lat_ps)
        op_ps, cat = enc.op_ps, enc.cat
        for op_id, j in enc.pim_ops.items():
            v = int(r.op_ps[j])
            if v:
                op_ps[op_id] = op_ps.get(op_id, 0) + v
        for k, v in r.category_ps.items():
            cat[k] += v
        cost = ZERO
        for c, k in enc.costs.items():
            cost = cost + c.times(k)
        t1 = r.now_ps
        self.engine.run(t1)
        if sum(cat.values()) != t1 - t0:
            raise SimulationError(f"serial schedule has {(t1 - t0) - sum(cat.values())} ps not covered by instructions")
        return TokenResult(t0, t1, cat, op_ps, cost, r.commands, enc.link_bits, r.row_hits, r.row_misses,
                           enc.offchip + r.bytes_io, len(prog), r.refresh_ps, r.phases_ps)

    def encode(self, prog: list[Instr]) -> "_Encoding":
        """`prog` as `run_serial` takes it. A `Program`'s shared instructions are encoded once per
        template, its attention blocks from layer 0's (`_Encoding.add_attention`)."""
        tpl = getattr(prog, "template", None)
        if tpl is not None and self._encoded is not None and self._encoded[0] is tpl:
            enc = self._encoded[1].copy()
        else:
            dynamic = set(prog.dynamic) if tpl is not None else set()
            enc = _Encoding(len(prog))
            for i, ins in enumerate(prog):
                if i not in dynamic:
                    enc.add(i, ins, self)
            self._encoded = (tpl, enc.copy()) if tpl is not None else None
        if tpl is not None:
            enc.add_attention(prog, self)
        return enc

    def _attention_layout(self, prog: Program, pim_ops: dict[str, int]) -> "_AttentionLayout":
        """The `_AttentionLayout` of `prog`'s template (made from its first program, whose
        `pim_ops` so far are the template's)."""
        if self._layout is None or self._layout[0] is not prog.template:
            self._layout = (prog.template, _AttentionLayout(prog, self, pim_ops))
        return self._layout[1]

    def _fixed_spans(self, ins: Instr) -> list[tuple[str, str, int]]:
        """(category, op id, ps) of an ASIC or link instruction's issue and work, in order: their
        durations do not depend on when it runs."""
        spans = [("other", ins.op_id, self.issue_ps)]
        if ins.kind == "vector":
            spans += [(p.category, p.op_id, self.vu.ps(p.cost)) for p in ins.parts]
        else:
            nbytes, channels = ins.payload
            spans.append(("transfer", ins.op_id, self._fetch_ps(nbytes, channels)))
        return spans

    def _execute(self, ins: Instr, now: int, acc: "_Accumulator", start, end, serial: bool) -> int:
        """Start `ins` at `now`; record its work; return its end time."""
        t = now
        if ins.kind == "vector" or ins.kind == "fetch":
            for category, op_id, ps in self._fixed_spans(ins):
                acc.segment(t, t + ps, category, op_id)
                t += ps
            if ins.kind == "fetch":
                acc.link(ins.payload[0])
                return t
            for p in ins.parts:
                acc.asic(p.cost)
            if not serial and ins.stream_from >= 0:
                t = max(t, end[ins.stream_from] + self.asic.cycles_to_ps(ins.tail_cycles))
            return t
        acc.segment(t, t + self.issue_ps, "other", ins.op_id)
        t += self.issue_ps
        # PIM instructions: command path latency, the PIM's work, result return latency
        lat = self.link_lat_ps
        acc.segment(t, t + lat, "transfer", ins.op_id)
        t += lat
        if ins.kind == "vmm":
            r = self.pim.vmm(ins.payload, t, self.memo)
            cat, back = "pim_vmm", lat
        else:
            layer, token = ins.payload
            r = self.pim.kv_append(layer, token, t, self.memo)
            cat, back = "kv_write", 0
        if r.end_ps < t:
            raise SimulationError(f"{ins.name}: PIM finished before it started")
        if r.other_ps:
            acc.segment(t, t + r.other_ps, "other", ins.op_id)
            acc.refresh_ps += r.other_ps
        acc.segment(t + r.other_ps, r.end_ps, cat, ins.op_id)
        acc.channels(t + r.other_ps, r.channel_end_ps, ins.op_id)
        acc.pim(r)
        t = r.end_ps
        if back:
            acc.segment(t, t + back, "transfer", ins.op_id)
            t += back
        return t


class _Encoding:
    """A serial program as `run_serial` takes it (per instruction: kind 0 fixed, 1 VMM, 2 KV
    append; its fixed duration or the time before its PIM work; the time after it; its op's index;
    its PIM payload and the port's `memo_key` of it) plus the time and counts of the fixed
    instructions, which do not depend on when they run."""

    def __init__(self, n: int):
        self.kind = np.zeros(n, np.int64)
        self.pre_ps = np.zeros(n, np.int64)
        self.back_ps = np.zeros(n, np.int64)
        self.op = np.zeros(n, np.int64)
        self.sig = np.zeros(n, np.int64)
        self.base = np.zeros(n, np.int64)
        self.macs = np.full(n, -1, np.int64)
        self.payloads: list = [None] * n
        self.pim_ops: dict[str, int] = {}
        self.cat = dict.fromkeys(CATEGORIES, 0)
        self.op_ps: dict[str, int] = {}
        self.costs: dict[VectorCost, int] = {}   # summed once per distinct cost (most repeat in every layer)
        self.link_bits = self.offchip = 0

    def copy(self) -> "_Encoding":
        out = _Encoding.__new__(_Encoding)
        out.kind, out.pre_ps, out.back_ps, out.op, out.sig, out.base, out.macs = (
            a.copy() for a in (self.kind, self.pre_ps, self.back_ps, self.op, self.sig, self.base, self.macs))
        out.payloads = list(self.payloads)
        out.pim_ops, out.cat, out.op_ps, out.costs = (dict(x) for x in (self.pim_ops, self.cat, self.op_ps, self.costs))
        out.link_bits, out.offchip = self.link_bits, self.offchip
        return out

    def _add_time(self, category: str, op_id: str, ps: int) -> None:
        if ps > 0:
            self.cat[category] += ps
            self.op_ps[op_id] = self.op_ps.get(op_id, 0) + ps

    def add(self, i: int, ins: Instr, ex: "Executor") -> None:
        """Instruction i (as `Executor._execute` would time it under the serial policy)."""
        if ins.kind == "vector" or ins.kind == "fetch":
            self.kind[i] = 0
            self.back_ps[i] = 0
            d = 0
            for category, op_id, ps in ex._fixed_spans(ins):
                self._add_time(category, op_id, ps)
                d += ps
            self.pre_ps[i] = d
            if ins.kind == "fetch":
                self.link_bits += 8 * ins.payload[0]
                self.offchip += ins.payload[0]
            else:
                for p in ins.parts:
                    self.costs[p.cost] = self.costs.get(p.cost, 0) + 1
            return
        self.kind[i], self.pre_ps[i], self.back_ps[i] = _pim_times(ins, ex)
        self.op[i] = self.pim_ops.setdefault(ins.op_id, len(self.pim_ops))
        self.payloads[i] = ins.payload
        self.sig[i], self.base[i], self.macs[i] = ex.pim.memo_key(ins.kind == "vmm", ins.payload)

    def add_attention(self, prog: Program, ex: "Executor") -> None:
        """Every layer's attention block of `prog` (as `add` would encode them position by position,
        in the same order) from layer 0's: layer i's has layer 0's durations, costs and memo
        signatures, its op ids, and memo bases `ex.pim.layer_rows(i)` rows higher. Its payloads are
        made only if a memo miss reads them (`_Payloads`). What depends only on the program's
        template (positions, op ids and indices) is kept per template (`_AttentionLayout`)."""
        block = prog.attention[0]
        lay = ex._attention_layout(prog, self.pim_ops)
        n = len(prog.sites)
        span_ps = {}   # per fixed role: its spans' durations
        for j, ins in enumerate(block):
            pos = lay.positions[j]
            if ins.kind == "vector":
                spans = ex._fixed_spans(ins)
                self.kind[pos] = self.back_ps[pos] = 0
                self.pre_ps[pos] = sum(ps for _, _, ps in spans)
                for category, _, ps in spans:
                    if ps > 0:
                        self.cat[category] += n * ps
                for p in ins.parts:
                    self.costs[p.cost] = self.costs.get(p.cost, 0) + n
                span_ps[j] = [ps for _, _, ps in spans]
                continue
            self.kind[pos], self.pre_ps[pos], self.back_ps[pos] = _pim_times(ins, ex)
            self.op[pos] = lay.op_index[j]
            sig, base, macs = ex.pim.memo_key(ins.kind == "vmm", ins.payload)
            self.sig[pos], self.macs[pos] = sig, macs
            self.base[pos] = base + lay.rows
        op_ps = self.op_ps
        for op_id, j, k in lay.span_order:   # layer by layer, as position-by-position encoding adds them
            ps = span_ps[j][k]
            if ps > 0:
                op_ps[op_id] = op_ps.get(op_id, 0) + ps
        self.pim_ops = dict(lay.pim_ops)
        self.payloads = _Payloads(self.payloads, ex.pim, prog, lay.payload_of)


def _pim_times(ins: Instr, ex: "Executor") -> tuple[int, int, int]:
    """(item kind, time before, time after its PIM work) of a PIM instruction in `run_serial`:
    issue and the command path's latency before; a VMM's result return after."""
    vmm = ins.kind == "vmm"
    return (1 if vmm else 2), ex.issue_ps + ex.link_lat_ps, ex.link_lat_ps if vmm else 0


class _AttentionLayout:
    """What encoding a template's attention blocks takes from the template alone: per role (the
    instruction's place in a block) its positions in the program, and its op ids (fixed
    instructions: per span, in the order position-by-position encoding first adds them) or op
    indices (PIM instructions, `pim_ops` afterwards); the layers' row offsets; per PIM position its
    (layer, role)."""

    def __init__(self, prog: Program, ex: "Executor", pim_ops: dict[str, int]):
        block = prog.attention[0]
        ats = [at for at, _ in prog.sites]
        layers = [layer for _, layer in prog.sites]
        self.positions = [np.array([at + j for at in ats], np.int64) for j in range(len(block))]
        self.rows = np.array([ex.pim.layer_rows(layer) for layer in layers], np.int64)
        self.pim_ops = dict(pim_ops)
        self.span_order: list[tuple[str, int, int]] = []   # (op id, role, span)
        self.payload_of: dict[int, tuple[int, int]] = {}
        op_index = {j: [] for j, ins in enumerate(block) if ins.kind != "vector"}
        for at, layer in prog.sites:
            for j, ins in enumerate(block):
                if ins.kind == "vector":
                    self.span_order += [(layer_op_id(op_id, layer), j, k)
                                        for k, (_, op_id, _) in enumerate(ex._fixed_spans(ins))]
                else:
                    op_index[j].append(self.pim_ops.setdefault(layer_op_id(ins.op_id, layer), len(self.pim_ops)))
                    self.payload_of[at + j] = (layer, j)
        self.op_index = {j: np.array(v, np.int64) for j, v in op_index.items()}


class _Payloads(list):
    """A program's PIM payloads by position, those of its attention blocks (None) made when first
    read (`attention_payload` of (layer, role) `made[position]`): only memo misses read them."""

    def __init__(self, items: list, pim: PimPort, prog: Program, made: dict[int, tuple[int, int]]):
        super().__init__(items)
        _, self.ctx, self.token = prog.attention
        self.pim, self.made = pim, made

    def __getitem__(self, i):
        p = super().__getitem__(i)
        if p is None and i in self.made:
            layer, role = self.made[i]
            p = self[i] = attention_payload(self.pim, role, layer, self.ctx, self.token)
        return p


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


class _Accumulator:
    def __init__(self, keep: bool):
        self.keep = keep
        self.segments: list[tuple[int, int, str, str]] = []
        self.channel_spans: list[tuple[int, int, int, str]] = []
        self.cat_ps = dict.fromkeys(CATEGORIES, 0)
        self.op_ps: dict[str, int] = {}
        self.cost = ZERO
        self.pim_counts: dict[str, float] = {}
        self.link_bits = 0
        self.hits = self.misses = 0
        self.offchip = 0
        self.refresh_ps = 0
        self.phases: dict[str, int] = {}
        self.n = 0

    def segment(self, a: int, b: int, cat: str, op: str) -> None:
        if b <= a:
            return
        self.cat_ps[cat] += b - a
        self.op_ps[op] = self.op_ps.get(op, 0) + (b - a)
        if self.keep:
            self.segments.append((a, b, cat, op))

    def channels(self, start: int, ends: tuple[int, ...], op: str) -> None:
        if self.keep:
            self.channel_spans.extend((c, start, e, op) for c, e in enumerate(ends) if e > start)

    def asic(self, cost: VectorCost) -> None:
        self.cost = self.cost + cost

    def link(self, nbytes: int) -> None:
        self.link_bits += 8 * nbytes
        self.offchip += nbytes

    def pim(self, r: PimOpResult) -> None:
        for k, v in r.counts.items():
            self.pim_counts[k] = self.pim_counts.get(k, 0) + v
        self.hits += r.row_hits
        self.misses += r.row_misses
        self.offchip += r.bytes_in + r.bytes_out
        for k, v in r.phases_ps.items():
            self.phases[k] = self.phases.get(k, 0) + v

    def result(self, t0: int, t1: int, n: int, policy: str) -> TokenResult:
        if policy == "serial":
            breakdown = dict(self.cat_ps)
            gap = (t1 - t0) - sum(breakdown.values())
            if gap:
                raise SimulationError(f"serial schedule has {gap} ps not covered by instructions")
        else:
            breakdown = attribute(self.segments, t0, t1)
        return TokenResult(t0, t1, breakdown, dict(self.op_ps), self.cost, dict(self.pim_counts), self.link_bits,
                           self.hits, self.misses, self.offchip, n, self.refresh_ps, dict(self.phases),
                           self.segments if self.keep else None,
                           channel_spans=self.channel_spans if self.keep else None)


def attribute(segments: list[tuple], t0: int, t1: int) -> dict[str, int]:
    """Split [t0, t1) among categories: each instant goes to the highest-priority busy category
    (pim_vmm > kv_write > transfer > asic > other); idle instants go to `other`."""
    events = []
    for a, b, c, *_ in segments:
        events.append((a, 0, c))
        events.append((b, 1, c))
    events.sort()
    out = dict.fromkeys(CATEGORIES, 0)
    active = dict.fromkeys(CATEGORIES, 0)
    t = t0
    for time, kind, c in events:
        if time > t:
            cur = next((k for k in CATEGORIES if active[k] > 0), "other")
            out[cur] += min(time, t1) - t
            t = time
        active[c] += 1 if kind == 0 else -1
    if t1 > t:
        out["other"] += t1 - t
    return out
