"""Op graph of one GPT decode step (batch 1): a networkx DiGraph in execution order.

Node ids are stable (`embed`, `L0.ln1`, `L0.attn.qkv`, ..., `ln_f`, `lm_head`); node attributes
are the fields of `Op` plus `bytes_total`. Counting rules (a = dtype_bytes, d = d_model,
H = heads, s = context_len, F = d_ff, V = vocab):

- vmm (d_in -> d_out): flops 2·d_in·d_out (+ d_out bias adds); weights (d_in + 1)·d_out·a with
  bias; activations (d_in + d_out)·a.
- kv_write: reads the new k and v (2·d·a) and appends them to the cache (2·d·a).
- attn_score: q·K^T over s cached tokens, flops 2·d·s; reads K (d·s·a) and q (d·a), writes
  H·s scores. attn_context: probs·V, flops 2·d·s; reads V (d·s·a) and H·s probs, writes d.
- element-wise ops, flops per element: layernorm 7, softmax 5, gelu 8 (tanh form), add 1
  (gpu-baselines.md §7.1); each reads and writes its vector (add reads two), layernorm also
  reads its gain and bias.
- embed: reads one token-embedding row and one position row (2·d·a), adds them (d flops).
- lm_head: d -> V, no bias, weights tied to the token embedding but read once here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import networkx as nx

from hwsim.errors import InputError
from hwsim.models import ModelSpec

KINDS = ("vmm", "attn_score", "attn_context", "layernorm", "softmax", "gelu", "add", "kv_write", "embed")
COUNTS = ("flops", "weight_bytes", "act_bytes", "kv_bytes", "kv_write_bytes", "bytes_total")


@dataclass(frozen=True)
class Op:
    """One op of the decode step; matrix shapes are per head for attention ops."""

    id: str
    kind: str
    layer: int | None
    elements: int  # output elements
    flops: int
    weight_bytes: int = 0
    act_bytes: int = 0
    kv_bytes: int = 0  # read from the KV cache
    kv_write_bytes: int = 0  # appended to the KV cache
    d_in: int = 0
    d_out: int = 0
    heads: int = 0

    @property
    def bytes_total(self) -> int:
        return self.weight_bytes + self.act_bytes + self.kv_bytes + self.kv_write_bytes

    @property
    def role(self) -> str:
        """The id without its layer prefix (`attn.qkv` for `L3.attn.qkv`)."""
        return self.id if self.layer is None else self.id.split(".", 1)[1]


@dataclass(frozen=True)
class DecodeStep:
    """What a graph was built for."""

    model: ModelSpec
    context_len: int
    dtype_bytes: int


def build_decode_graph(model: ModelSpec, context_len: int, *, include_lm_head: bool = True,
                       include_embedding: bool = True, dtype_bytes: int = 2,
                       include_final_layernorm: bool = True) -> nx.DiGraph:
    """Ops of one decode step at `context_len` cached tokens (including the new one)."""
    if not isinstance(context_len, int) or not 1 <= context_len <= model.context:
        raise InputError(None, "context_len", f"got {context_len!r}; expected 1..{model.context} ({model.name})")
    if not isinstance(dtype_bytes, int) or dtype_bytes < 1:
        raise InputError(None, "dtype_bytes", f"got {dtype_bytes!r}; expected an integer >= 1")
    a, d, h, s, f = dtype_bytes, model.d_model, model.n_heads, context_len, model.d_ff
    g = nx.DiGraph(step=DecodeStep(model, context_len, dtype_bytes))

    def add(op: Op, *deps: str | None) -> str:
        g.add_node(op.id, **_attrs(op))
        g.add_edges_from((dep, op.id) for dep in deps if dep is not None)
        return op.id

    stream = add(Op("embed", "embed", None, d, d, weight_bytes=2 * d * a, act_bytes=d * a)) \
        if include_embedding else None
    for i in range(model.n_layers):
        p = f"L{i}."
        x = add(_layernorm(p + "ln1", i, d, a), stream)
        qkv = add(_vmm(p + "attn.qkv", i, d, 3 * d, a), x)
        kv = add(Op(p + "attn.kv_write", "kv_write", i, 2 * d, 0, act_bytes=2 * d * a,
                    kv_write_bytes=2 * d * a, heads=h), qkv)
        x = add(Op(p + "attn.score", "attn_score", i, h * s, 2 * d * s, act_bytes=(d + h * s) * a,
                   kv_bytes=d * s * a, d_in=model.d_head, d_out=s, heads=h), qkv, kv)
        x = add(Op(p + "attn.softmax", "softmax", i, h * s, 5 * h * s, act_bytes=2 * h * s * a, heads=h), x)
        x = add(Op(p + "attn.context", "attn_context", i, d, 2 * d * s, act_bytes=(h * s + d) * a,
                   kv_bytes=d * s * a, d_in=s, d_out=model.d_head, heads=h), x, kv)
        x = add(_vmm(p + "attn.proj", i, d, d, a), x)
        stream = add(_add(p + "attn.residual", i, d, a), x, stream)
        x = add(_layernorm(p + "ln2", i, d, a), stream)
        x = add(_vmm(p + "mlp.fc1", i, d, f, a), x)
        x = add(Op(p + "mlp.gelu", "gelu", i, f, 8 * f, act_bytes=2 * f * a), x)
        x = add(_vmm(p + "mlp.fc2", i, f, d, a), x)
        stream = add(_add(p + "mlp.residual", i, d, a), x, stream)
    x = add(_layernorm("ln_f", None, d, a), stream) if include_final_layernorm else stream
    if include_lm_head:
        add(_vmm("lm_head", None, d, model.vocab, a, bias=False), x)
    return g


def _attrs(op: Op) -> dict:
    attrs = asdict(op)
    del attrs["id"]
    attrs["bytes_total"] = op.bytes_total
    return attrs


def _vmm(op_id: str, layer: int | None, d_in: int, d_out: int, a: int, *, bias: bool = True) -> Op:
    b = 1 if bias else 0
    return Op(op_id, "vmm", layer, d_out, 2 * d_in * d_out + b * d_out,
              weight_bytes=(d_in + b) * d_out * a, act_bytes=(d_in + d_out) * a, d_in=d_in, d_out=d_out)


def _layernorm(op_id: str, layer: int | None, d: int, a: int) -> Op:
    return Op(op_id, "layernorm", layer, d, 7 * d, weight_bytes=2 * d * a, act_bytes=2 * d * a)


def _add(op_id: str, layer: int, d: int, a: int) -> Op:
    return Op(op_id, "add", layer, d, d, act_bytes=3 * d * a)


_OP_FIELDS = tuple(f.name for f in fields(Op) if f.name != "id")


def get_op(graph: nx.DiGraph, op_id: str) -> Op:
    """The Op stored under node `op_id`."""
    attrs = graph.nodes[op_id]
    return Op(op_id, **{k: attrs[k] for k in _OP_FIELDS})


def ops_in_order(graph: nx.DiGraph) -> list[Op]:
    """All ops in a topological order that keeps insertion order where dependencies allow."""
    rank = {n: i for i, n in enumerate(graph.nodes)}
    return [get_op(graph, n) for n in nx.lexicographical_topological_sort(graph, key=rank.__getitem__)]


def decode_step(graph: nx.DiGraph) -> DecodeStep:
    """Model, context length and dtype the graph was built for."""
    return graph.graph["step"]


def graph_totals(graph: nx.DiGraph) -> dict[str, int]:
    """Sums over all ops of flops and of each byte class (keys: COUNTS)."""
    return {k: sum(attrs[k] for _, attrs in graph.nodes(data=True)) for k in COUNTS}
