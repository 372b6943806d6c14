"""Model zoo: presets, derived sizes, overrides and input errors."""

import pytest

from hwsim.errors import InputError
from hwsim.models import ModelSpec, list_models, load_model

ZOO = ["gpt2-large", "gpt2-medium", "gpt2-small", "gpt2-xl", "gpt3-large", "gpt3-medium", "gpt3-small", "gpt3-xl"]


def test_zoo_has_the_eight_pim_gpt_models():
    assert list_models() == ZOO


@pytest.mark.parametrize("name", ZOO)
def test_preset_loads_with_its_name_and_d_ff_4d(name):
    m = load_model(name)
    assert m.name == name
    assert m.d_ff == 4 * m.d_model
    assert m.d_head * m.n_heads == m.d_model
    assert m.vocab == 50257
    assert m.context == (1024 if name.startswith("gpt2") else 2048)


def test_gpt2_small_parameter_counts():
    m = load_model("gpt2-small")
    L, d = 12, 768
    assert m.n_matrix_params == 12 * L * d * d
    biases = 3 * d + d + 4 * d + d  # qkv, proj, fc1, fc2
    layernorms = 4 * d  # ln1 and ln2 gain + bias
    assert m.n_nonembedding_params == 12 * L * d * d + L * (biases + layernorms) + 2 * d == 85_056_000
    assert m.n_params == 124_439_808  # published GPT-2 small count (tied LM head)


def test_gpt3_xl_uses_16_heads_of_128():
    m = load_model("gpt3-xl")
    assert (m.n_layers, m.d_model, m.n_heads, m.d_head) == (24, 2048, 16, 128)
    assert m.n_matrix_params / 2**20 == 1152  # the paper's "1.15 billion" (pim-gpt.md §1)


def test_kv_cache_bytes():
    assert load_model("gpt2-small").kv_cache_bytes(512, 2) == 2 * 12 * 768 * 512 * 2


def test_preset_with_overrides():
    m = load_model({"preset": "gpt2-small", "context": 512, "name": "short"})
    assert (m.context, m.name, m.d_model) == (512, "short", 768)


def test_inline_mapping_and_passthrough():
    fields = dict(n_layers=2, d_model=64, n_heads=4, d_ff=256, vocab=100, context=32)
    m = load_model(fields)
    assert m == ModelSpec(**fields) and m.name == "custom"
    assert load_model(m) is m


@pytest.mark.parametrize("value, path, text", [
    ({"preset": "gpt2-small", "n_heads": 10}, "model.n_heads", "d_model=768 is not divisible"),
    ({"preset": "gpt3-xl", "n_heads": 24}, "model.n_heads", "d_model=2048 is not divisible"),
    ({"preset": "gpt2-small", "n_layers": 0}, "model.n_layers", ">= 1"),
    ({"preset": "gpt2-small", "d_model": "big"}, "model.d_model", "expected an integer"),
    ({"preset": "gpt2-small", "layers": 3}, "model.layers", "unknown key"),
    ({"preset": "gpt5"}, "model.preset", "unknown models preset 'gpt5'"),
    (dict(n_layers=2, d_model=64, n_heads=4, d_ff=256, context=32), "model.vocab", "missing required field"),
    (42, "model", "expected a preset name or a mapping"),
])
def test_bad_model_raises_input_error_naming_the_field(value, path, text):
    with pytest.raises(InputError) as exc:
        load_model(value, file="w.yaml")
    assert exc.value.file == "w.yaml"
    assert exc.value.path == path
    assert text in exc.value.message
