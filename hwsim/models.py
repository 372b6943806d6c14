"""GPT model zoo: `ModelSpec` (frozen, validated) and `load_model` for presets or inline mappings.

Models are GPT-2 style decoders: pre-LayerNorm, multi-head attention, a 2-layer MLP
(`d_model -> d_ff -> d_model`), biases on every linear layer except the LM head, learned position
embeddings and an LM head tied to the token embedding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hwsim.config import build, field_path, spec
from hwsim.errors import InputError
from hwsim.presets import list_presets, preset_or_mapping


@dataclass(frozen=True)
class ModelSpec:
    """Shape of a GPT decoder."""

    n_layers: int = spec("decoder layers", min=1)
    d_model: int = spec("hidden size", min=1)
    n_heads: int = spec("attention heads (d_model must be divisible by it)", min=1)
    d_ff: int = spec("MLP inner size", min=1)
    vocab: int = spec("vocabulary size (rows of the token embedding / LM head)", min=1)
    context: int = spec("maximum context length (rows of the position embedding)", unit="tokens", min=1)
    name: str = spec("model name", default="custom")

    def validate(self, file: str | None, path: str) -> None:
        if self.d_model % self.n_heads:
            where = field_path(path, "n_heads")
            raise InputError(file, where, f"got {self.n_heads}; d_model={self.d_model} is not divisible by it")

    @property
    def d_head(self) -> int:
        """Size of one attention head."""
        return self.d_model // self.n_heads

    @property
    def n_matrix_params(self) -> int:
        """Weights of the per-layer matrices (QKV, proj, FC1, FC2): 12·L·d² when d_ff = 4·d."""
        d = self.d_model
        return self.n_layers * (4 * d * d + 2 * d * self.d_ff)

    @property
    def n_nonembedding_params(self) -> int:
        """Matrices + their biases + LayerNorm gains/biases (2 per layer and the final one)."""
        d = self.d_model
        biases = 3 * d + d + self.d_ff + d
        layernorms = 2 * 2 * d
        return self.n_matrix_params + self.n_layers * (biases + layernorms) + 2 * d

    @property
    def n_params(self) -> int:
        """All parameters: non-embedding + token embedding (tied LM head) + position embedding."""
        return self.n_nonembedding_params + (self.vocab + self.context) * self.d_model

    def kv_cache_bytes(self, context_len: int, dtype_bytes: int) -> int:
        """Bytes of the K and V caches for `context_len` tokens, all layers."""
        return 2 * self.n_layers * self.d_model * context_len * dtype_bytes


def list_models() -> list[str]:
    """Names of the shipped model presets."""
    return list_presets("models")


def load_model(value: Any, file: str | None = None, path: str = "model") -> ModelSpec:
    """A ModelSpec from a preset name, `{preset: NAME, <field>: override, ...}` or an inline mapping
    of all fields. Errors name `file` and the dotted field path under `path`."""
    if isinstance(value, ModelSpec):
        return value
    value = preset_or_mapping("models", value, file=file, path=path)
    return build(ModelSpec, value, file=file, path=path)
