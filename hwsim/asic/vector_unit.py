"""Cycle and action counts of the ASIC's BF16 vector unit (LayerNorm, softmax, GELU, adds).

The model is the definition (docs/pim_gpt.md §2 works every formula by hand):

- The unit has `L = lanes` BF16 lanes; operation units (classes add, mul, cmp, bit) are pipelined
  with depth `latency_cycles[class]`. An **element-wise pass** over n elements applies a dependent
  chain of k operations `c_1..c_k` to g = ceil(n/L) slices of L elements.
  - `issue: chained` (default): each lane chains the k units as one function pipeline; a slice
    enters per cycle, so

        cycles = (g - 1) + sum_i lat(c_i)

  - `issue: single` (single-issue SIMD): each cycle one operation starts on one slice, op-major
    (all g slices of `c_1`, then of `c_2`, ...); operation i+1 of the first slice waits for
    operation i of that slice, so it starts max(g, lat(c_i)) cycles after operation i started:

        cycles = sum_{i<k} max(g, lat(c_i)) + (g - 1) + lat(c_k)

    (g = 1: the sum of the latencies; large g: k·g + lat(c_k) - 1.)
  Each element reads `inputs` BF16 operands from the vector SRAM and writes one result back;
  intermediates stay in pipeline registers.
- A **reduction** of `groups` vectors of n elements each (sum, or max via compares) streams one
  L-wide slice per cycle into a pipelined reduction tree of ceil(log2(min(n, L))) levels (the
  tree's feedback accumulator is interleaved across groups, so only the tree depth is exposed):

      cycles = groups·ceil(n/L) + ceil(log2(min(n, L)))·lat(op),   ops = groups·(n - 1)

- Scalar steps on several independent values (the per-head reciprocal of softmax, LayerNorm's
  inverse square root) are element-wise passes over those values.

Per-element chains (defaults: exp degree 4, reciprocal 2 Newton-Raphson iterations, inverse
square root 1 Newton iteration, tanh degree 7):

- LayerNorm(d): mean = reduce(d, add) then ×1/d [mul]; variance = pass(d, [add, mul]) (x-mean,
  square), reduce(d, add), pass(1, [mul, add]) (×1/d, +eps); fast inverse square root
  pass(1, [bit, bit, mul] + N×[mul, mul, add, mul]) (shift, magic subtract, 0.5·x, then
  y·(1.5 - 0.5x·y·y) per iteration); normalize pass(d, [add, mul, mul, add]) reading x, gain, bias.
- Softmax over H heads of s scores: max = reduce(H groups of s, cmp); exp pass(H·s, [add, mul,
  bit, add] + D×[mul, add] + [bit]) (x - max, ×log2 e, split n + f, f = t - n, Horner degree D
  for 2^f, exponent add of n); sum = reduce(H groups of s, add); reciprocal pass(H, [bit] +
  I×[mul, add, mul]) (magic-constant seed, y·(2 - x·y)); normalize pass(H·s, [mul]).
- GELU (tanh form) on n elements: pass(n, [mul, mul, mul, add, mul, cmp, cmp, mul] +
  (T-1)×[mul, add] + [mul, add, mul, mul]) with T = (degree+1)/2 odd terms: x², x³, ×0.044715,
  +x, ×sqrt(2/pi), clamp (2 compares), u², Horner in u², ×u, 1+t, ×x, ×0.5.
- Bias add, residual add, embedding add (token + position rows): pass(n, [add]) reading 2 inputs.
- Partial-sum accumulation of a VMM tiled into p parts along d_in: pass(n, (p-1)×[add]) reading
  p inputs (nothing when p = 1).
- Attention scaling by 1/sqrt(d_head): pass(H·s, [mul]).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

from hwsim.asic.spec import OP_CLASSES, AsicSpec

BF16_BITS = 16


@dataclass(frozen=True)
class VectorCost:
    """Cycles and action counts of some vector-unit work (immutable; add with +)."""

    cycles: int = 0
    add: int = 0
    mul: int = 0
    cmp: int = 0
    bit: int = 0
    sram_read_bits: int = 0
    sram_write_bits: int = 0

    def __add__(self, other: "VectorCost") -> "VectorCost":
        return VectorCost(self.cycles + other.cycles, self.add + other.add, self.mul + other.mul,
                          self.cmp + other.cmp, self.bit + other.bit, self.sram_read_bits + other.sram_read_bits,
                          self.sram_write_bits + other.sram_write_bits)

    def times(self, k: int) -> "VectorCost":
        """This cost k times over."""
        return VectorCost(k * self.cycles, k * self.add, k * self.mul, k * self.cmp, k * self.bit,
                          k * self.sram_read_bits, k * self.sram_write_bits)

    @property
    def ops(self) -> int:
        """All arithmetic operations."""
        return self.add + self.mul + self.cmp + self.bit

    def counts(self) -> dict[str, int]:
        """Energy-table action counts (asic.add ... in events, asic.sram_* in bits)."""
        return {"asic.add": self.add, "asic.mul": self.mul, "asic.cmp": self.cmp, "asic.bit": self.bit,
                "asic.sram_read": self.sram_read_bits, "asic.sram_write": self.sram_write_bits}


ZERO = VectorCost()


def _ceil_log2(n: int) -> int:
    return 0 if n <= 1 else math.ceil(math.log2(n))


class VectorUnit:
    """The vector unit of one AsicSpec; every method returns a VectorCost (memoised)."""

    def __init__(self, spec: AsicSpec):
        self.spec = spec
        self.lanes = spec.lanes
        self.chained = spec.issue == "chained"
        lat = spec.latency_cycles
        self.lat = {c: getattr(lat, c) for c in OP_CLASSES}
        # Memoise per instance (the spec is frozen, so results depend only on the arguments).
        for name in ("elementwise", "reduce", "layernorm", "softmax", "gelu", "bias_add", "residual_add",
                     "embedding_add", "accumulate", "scale"):
            setattr(self, name, lru_cache(maxsize=None)(getattr(self, name)))

    def ps(self, cost: VectorCost) -> int:
        """Duration of `cost` at the ASIC clock."""
        return self.spec.cycles_to_ps(cost.cycles)

    # -- primitives -------------------------------------------------------------------------
    def elementwise(self, n: int, chain: tuple[str, ...], inputs: int = 1) -> VectorCost:
        """A pass applying the dependent operation chain to n elements (see module docstring)."""
        if n <= 0 or not chain:
            return ZERO
        g = -(-n // self.lanes)
        lat = self.lat
        if self.chained:
            cycles = g - 1 + sum(lat[c] for c in chain)
        else:
            cycles = sum(max(g, lat[c]) for c in chain[:-1]) + (g - 1) + lat[chain[-1]]
        per = {c: 0 for c in OP_CLASSES}
        for c in chain:
            per[c] += n
        return VectorCost(cycles, per["add"], per["mul"], per["cmp"], per["bit"],
                          n * inputs * BF16_BITS, n * BF16_BITS)

    def reduce(self, groups: int, n: int, op: str) -> VectorCost:
        """Reduce `groups` vectors of n elements each with `op` (add: sum, cmp: max)."""
        if groups <= 0 or n <= 0:
            return ZERO
        cycles = groups * -(-n // self.lanes) + _ceil_log2(min(n, self.lanes)) * self.lat[op]
        count = groups * (n - 1)
        per = {c: 0 for c in OP_CLASSES}
        per[op] = count
        return VectorCost(cycles, per["add"], per["mul"], per["cmp"], per["bit"],
                          groups * n * BF16_BITS, groups * BF16_BITS)

    # -- functions --------------------------------------------------------------------------
    def layernorm(self, d: int) -> VectorCost:
        s = self.spec
        mean = self.reduce(1, d, "add") + self.elementwise(1, ("mul",))
        var = (self.elementwise(d, ("add", "mul")) + self.reduce(1, d, "add")
               + self.elementwise(1, ("mul", "add")))
        rsqrt = self.elementwise(1, ("bit", "bit", "mul") + ("mul", "mul", "add", "mul") * s.rsqrt_newton_iterations)
        norm = self.elementwise(d, ("add", "mul", "mul", "add"), inputs=3)
        return mean + var + rsqrt + norm

    def exp_chain(self) -> tuple[str, ...]:
        return ("add", "mul", "bit", "add") + ("mul", "add") * self.spec.exp_taylor_degree + ("bit",)

    def softmax(self, heads: int, s: int) -> VectorCost:
        n = heads * s
        recip = ("bit",) + ("mul", "add", "mul") * self.spec.recip_newton_iterations
        return (self.reduce(heads, s, "cmp") + self.elementwise(n, self.exp_chain())
                + self.reduce(heads, s, "add") + self.elementwise(heads, recip) + self.elementwise(n, ("mul",)))

    def gelu_chain(self) -> tuple[str, ...]:
        terms = (self.spec.gelu_tanh_degree + 1) // 2
        return (("mul", "mul", "mul", "add", "mul", "cmp", "cmp", "mul") + ("mul", "add") * (terms - 1)
                + ("mul", "add", "mul", "mul"))

    def gelu(self, n: int) -> VectorCost:
        return self.elementwise(n, self.gelu_chain())

    def bias_add(self, n: int) -> VectorCost:
        return self.elementwise(n, ("add",), inputs=2)

    def residual_add(self, n: int) -> VectorCost:
        return self.elementwise(n, ("add",), inputs=2)

    def embedding_add(self, d: int) -> VectorCost:
        return self.elementwise(d, ("add",), inputs=2)

    def accumulate(self, n: int, parts: int) -> VectorCost:
        """Sum `parts` partial-result vectors of n elements (a VMM tiled along d_in)."""
        if parts <= 1:
            return ZERO
        return self.elementwise(n, ("add",) * (parts - 1), inputs=parts)

    def scale(self, n: int) -> VectorCost:
        return self.elementwise(n, ("mul",))
