"""Decode-step op graph: ids, order, dependencies and exact FLOP/byte counts."""

import networkx as nx
import pytest

from hwsim.errors import InputError
from hwsim.graph import KINDS, build_decode_graph, decode_step, get_op, graph_totals, ops_in_order
from hwsim.models import ModelSpec, load_model

TINY = ModelSpec(n_layers=1, d_model=8, n_heads=2, d_ff=32, vocab=16, context=4, name="tiny")

# Worked by hand for TINY at context_len=3, 2-byte dtype (d=8, H=2, s=3, F=32, V=16, a=2):
# id: (kind, flops, weight_bytes, act_bytes, kv_bytes, kv_write_bytes)
TINY_OPS = {
    "embed": ("embed", 8, 2 * 8 * 2, 8 * 2, 0, 0),                       # 2 rows read, 8 adds
    "L0.ln1": ("layernorm", 7 * 8, 2 * 8 * 2, 2 * 8 * 2, 0, 0),          # 56, gain+bias 32, in+out 32
    "L0.attn.qkv": ("vmm", 2 * 8 * 24 + 24, 9 * 24 * 2, 32 * 2, 0, 0),   # 408, 432, 64
    "L0.attn.kv_write": ("kv_write", 0, 0, 16 * 2, 0, 16 * 2),           # k,v in 32, appended 32
    "L0.attn.score": ("attn_score", 2 * 8 * 3, 0, (8 + 6) * 2, 8 * 3 * 2, 0),    # 48, q+scores 28, K 48
    "L0.attn.softmax": ("softmax", 5 * 6, 0, 2 * 6 * 2, 0, 0),           # 30, 24
    "L0.attn.context": ("attn_context", 2 * 8 * 3, 0, (6 + 8) * 2, 8 * 3 * 2, 0),  # 48, 28, V 48
    "L0.attn.proj": ("vmm", 2 * 8 * 8 + 8, 9 * 8 * 2, 16 * 2, 0, 0),     # 136, 144, 32
    "L0.attn.residual": ("add", 8, 0, 3 * 8 * 2, 0, 0),                  # 8, 48
    "L0.ln2": ("layernorm", 56, 32, 32, 0, 0),
    "L0.mlp.fc1": ("vmm", 2 * 8 * 32 + 32, 9 * 32 * 2, 40 * 2, 0, 0),    # 544, 576, 80
    "L0.mlp.gelu": ("gelu", 8 * 32, 0, 2 * 32 * 2, 0, 0),                # 256, 128
    "L0.mlp.fc2": ("vmm", 2 * 32 * 8 + 8, 33 * 8 * 2, 40 * 2, 0, 0),     # 520, 528, 80
    "L0.mlp.residual": ("add", 8, 0, 48, 0, 0),
    "ln_f": ("layernorm", 56, 32, 32, 0, 0),
    "lm_head": ("vmm", 2 * 8 * 16, 8 * 16 * 2, 24 * 2, 0, 0),            # 256, 256 (no bias), 48
}


@pytest.fixture
def tiny():
    return build_decode_graph(TINY, 3)


def test_tiny_ops_in_order_with_exact_counts(tiny):
    ops = ops_in_order(tiny)
    assert [op.id for op in ops] == list(TINY_OPS)
    for op in ops:
        kind, flops, w, act, kv, kvw = TINY_OPS[op.id]
        assert (op.kind, op.flops, op.weight_bytes, op.act_bytes, op.kv_bytes, op.kv_write_bytes) == \
            (kind, flops, w, act, kv, kvw), op.id
        assert tiny.nodes[op.id]["bytes_total"] == op.bytes_total == w + act + kv + kvw


def test_tiny_totals(tiny):
    # column sums of TINY_OPS, added by hand
    assert graph_totals(tiny) == {
        "flops": 2438, "weight_bytes": 2064, "act_bytes": 752, "kv_bytes": 96, "kv_write_bytes": 32,
        "bytes_total": 2944}


def test_tiny_shapes_and_layers(tiny):
    score, ctx, fc1 = (get_op(tiny, i) for i in ("L0.attn.score", "L0.attn.context", "L0.mlp.fc1"))
    assert (score.d_in, score.d_out, score.heads, score.elements) == (4, 3, 2, 6)
    assert (ctx.d_in, ctx.d_out, ctx.heads, ctx.elements) == (3, 4, 2, 8)
    assert (fc1.d_in, fc1.d_out, fc1.layer, fc1.role) == (8, 32, 0, "mlp.fc1")
    assert get_op(tiny, "lm_head").layer is None and get_op(tiny, "lm_head").role == "lm_head"


def test_edges_follow_data_dependencies(tiny):
    assert nx.is_directed_acyclic_graph(tiny)
    preds = {n: set(tiny.predecessors(n)) for n in tiny}
    assert preds["embed"] == set()
    assert preds["L0.attn.score"] == {"L0.attn.qkv", "L0.attn.kv_write"}
    assert preds["L0.attn.context"] == {"L0.attn.softmax", "L0.attn.kv_write"}
    assert preds["L0.attn.residual"] == {"L0.attn.proj", "embed"}
    assert preds["L0.mlp.residual"] == {"L0.mlp.fc2", "L0.attn.residual"}
    assert preds["lm_head"] == {"ln_f"}


def test_layers_chain_through_the_residual_stream():
    g = build_decode_graph(load_model("gpt2-small"), 7)
    assert set(g.predecessors("L5.ln1")) == {"L4.mlp.residual"}
    assert set(g.predecessors("ln_f")) == {"L11.mlp.residual"}
    assert len(g) == 1 + 12 * 13 + 2
    assert {op.kind for op in ops_in_order(g)} == set(KINDS)


def test_optional_embedding_and_lm_head():
    g = build_decode_graph(TINY, 1, include_embedding=False, include_lm_head=False)
    ids = [op.id for op in ops_in_order(g)]
    assert ids[0] == "L0.ln1" and ids[-1] == "ln_f"
    assert set(g.predecessors("L0.attn.residual")) == {"L0.attn.proj"}


def test_gpt2_small_bytes_match_model_sizes():
    m = load_model("gpt2-small")
    g = build_decode_graph(m, 512)
    t = graph_totals(g)
    # every non-embedding weight once, the tied LM head once, one token row + one position row
    assert t["weight_bytes"] == 2 * (m.n_nonembedding_params + m.vocab * m.d_model + 2 * m.d_model)
    assert t["weight_bytes"] == 247_309_824  # gpu-baselines.md §7.7: 0.247 GB
    assert t["kv_bytes"] == m.kv_cache_bytes(512, 2) == 18_874_368  # §7.7: 19 MB
    assert t["kv_write_bytes"] == m.kv_cache_bytes(1, 2)


def test_dtype_scales_bytes_not_flops():
    g2, g4 = build_decode_graph(TINY, 3), build_decode_graph(TINY, 3, dtype_bytes=4)
    t2, t4 = graph_totals(g2), graph_totals(g4)
    assert t4["flops"] == t2["flops"] and t4["bytes_total"] == 2 * t2["bytes_total"]
    assert decode_step(g4).dtype_bytes == 4 and decode_step(g4).model is TINY


@pytest.mark.parametrize("kwargs, path", [
    ({"context_len": 0}, "context_len"),
    ({"context_len": 5}, "context_len"),
    ({"context_len": 2, "dtype_bytes": 0}, "dtype_bytes"),
])
def test_bad_arguments(kwargs, path):
    with pytest.raises(InputError) as exc:
        build_decode_graph(TINY, **kwargs)
    assert exc.value.path == path
