"""An independent float64 numpy GPT-2 (the yardstick for the PIM functional path).

Plain math, no rounding model and no code shared with `hwsim.asic.functional`: the prompt runs as
one causal-masked pass, generated tokens one at a time against a KV cache, greedy argmax.
Weights use the names of `hwsim.weights` ([in, out] matrices, LM head tied to `wte`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwsim.models import ModelSpec

LN_EPS = 1e-5


def _ln(x: np.ndarray, g: np.ndarray, b: np.ndarray) -> np.ndarray:
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
    return (x - mu) / np.sqrt(var + LN_EPS) * g + b


def _gelu(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x ** 3)))


def _softmax(s: np.ndarray) -> np.ndarray:
    e = np.exp(s - s.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


@dataclass
class ReferenceGPT:
    """GPT-2 in float64 with a KV cache."""

    model: ModelSpec
    w: dict[str, np.ndarray]

    @classmethod
    def from_weights(cls, model: ModelSpec, weights: dict[str, np.ndarray]) -> "ReferenceGPT":
        return cls(model, {k: np.asarray(v, dtype=np.float64) for k, v in weights.items()})

    def reset(self) -> None:
        L = self.model.n_layers
        self.k: list[np.ndarray] = [np.zeros((self.model.n_heads, 0, self.model.d_head)) for _ in range(L)]
        self.v: list[np.ndarray] = [np.zeros((self.model.n_heads, 0, self.model.d_head)) for _ in range(L)]

    def forward(self, ids: list[int]) -> np.ndarray:
        """Run `ids` after whatever is cached; logits [len(ids), vocab] (float64)."""
        m, w = self.model, self.w
        H, dh = m.n_heads, m.d_head
        t0 = self.k[0].shape[1]
        n = len(ids)
        pos = np.arange(t0, t0 + n)
        x = w["wte"][np.asarray(ids)] + w["wpe"][pos]  # [n, d]
        for i in range(m.n_layers):
            p = f"h.{i}."
            a = _ln(x, w[p + "ln_1.weight"], w[p + "ln_1.bias"])
            qkv = a @ w[p + "attn.c_attn.weight"] + w[p + "attn.c_attn.bias"]
            q, k, v = np.split(qkv, 3, axis=-1)
            q, k, v = (z.reshape(n, H, dh).transpose(1, 0, 2) for z in (q, k, v))  # [H, n, dh]
            self.k[i] = np.concatenate([self.k[i], k], axis=1)
            self.v[i] = np.concatenate([self.v[i], v], axis=1)
            K, V = self.k[i], self.v[i]  # [H, T, dh]
            s = q @ K.transpose(0, 2, 1) / np.sqrt(dh)  # [H, n, T]
            T = K.shape[1]
            causal = np.arange(T)[None, :] > pos[:, None]  # query at pos sees keys <= pos
            s = np.where(causal[None], -np.inf, s)
            o = (_softmax(s) @ V).transpose(1, 0, 2).reshape(n, m.d_model)
            x = x + o @ w[p + "attn.c_proj.weight"] + w[p + "attn.c_proj.bias"]
            a = _ln(x, w[p + "ln_2.weight"], w[p + "ln_2.bias"])
            hdn = _gelu(a @ w[p + "mlp.c_fc.weight"] + w[p + "mlp.c_fc.bias"])
            x = x + hdn @ w[p + "mlp.c_proj.weight"] + w[p + "mlp.c_proj.bias"]
        x = _ln(x, w["ln_f.weight"], w["ln_f.bias"])
        return x @ w["wte"].T


def greedy_decode(model: ModelSpec, weights: dict[str, np.ndarray], prompt_ids: list[int], generate: int,
                  forced_ids: list[int] | None = None) -> tuple[list[int], np.ndarray]:
    """Greedy decoding: (generated ids, logits [generate, vocab] float64).

    Logits of step k are the ones that chose generated token k. With `forced_ids` (length
    >= generate - 1) the tokens fed back are those instead of the reference's own argmax (teacher
    forcing), so that another decoder's logits can be compared step by step; the returned ids are
    still the reference's own argmax at each step."""
    if not prompt_ids:
        raise ValueError("prompt_ids must not be empty")
    if len(prompt_ids) + generate - 1 > model.context:
        raise ValueError(f"prompt + generate exceeds the context of {model.context}")
    net = ReferenceGPT.from_weights(model, weights)
    net.reset()
    logits = np.empty((generate, model.vocab))
    ids: list[int] = []
    last = net.forward(list(prompt_ids))[-1]
    for k in range(generate):
        logits[k] = last
        ids.append(int(np.argmax(last)))
        if k + 1 < generate:
            feed = forced_ids[k] if forced_ids is not None else ids[-1]
            last = net.forward([int(feed)])[-1]
    return ids, logits
