"""GPT-2 weight files: numpy `.npz` archives with GPT-2 state-dict names (no `transformer.` prefix).

Arrays (d = d_model, F = d_ff, V = vocab, C = context, i = layer):

    wte [V, d]   wpe [C, d]
    h.{i}.ln_1.weight [d]   h.{i}.ln_1.bias [d]
    h.{i}.attn.c_attn.weight [d, 3d]   h.{i}.attn.c_attn.bias [3d]
    h.{i}.attn.c_proj.weight [d, d]    h.{i}.attn.c_proj.bias [d]
    h.{i}.ln_2.weight [d]   h.{i}.ln_2.bias [d]
    h.{i}.mlp.c_fc.weight [d, F]       h.{i}.mlp.c_fc.bias [F]
    h.{i}.mlp.c_proj.weight [F, d]     h.{i}.mlp.c_proj.bias [d]
    ln_f.weight [d]   ln_f.bias [d]

Linear weights are [in, out] (GPT-2's Conv1D layout, y = x @ W + b); the LM head is tied to `wte`.
`wte.weight` / `wpe.weight` (the Hugging Face names) are accepted for `wte` / `wpe`, and a
`transformer.` prefix on every name is stripped. Other arrays in the file (`lm_head.weight`, the
causal-mask buffers `h.{i}.attn.bias`) are ignored. See docs/functional.md for converting a
Hugging Face checkpoint.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from hwsim.errors import InputError
from hwsim.models import ModelSpec
from hwsim.outputs import atomic_file

_ALIASES = {"wte.weight": "wte", "wpe.weight": "wpe"}


def expected_shapes(model: ModelSpec) -> dict[str, tuple[int, ...]]:
    """Every array a GPT-2 weight file must hold, with its shape, in file order."""
    d, f = model.d_model, model.d_ff
    shapes: dict[str, tuple[int, ...]] = {"wte": (model.vocab, d), "wpe": (model.context, d)}
    for i in range(model.n_layers):
        p = f"h.{i}."
        shapes.update({
            p + "ln_1.weight": (d,), p + "ln_1.bias": (d,),
            p + "attn.c_attn.weight": (d, 3 * d), p + "attn.c_attn.bias": (3 * d,),
            p + "attn.c_proj.weight": (d, d), p + "attn.c_proj.bias": (d,),
            p + "ln_2.weight": (d,), p + "ln_2.bias": (d,),
            p + "mlp.c_fc.weight": (d, f), p + "mlp.c_fc.bias": (f,),
            p + "mlp.c_proj.weight": (f, d), p + "mlp.c_proj.bias": (d,),
        })
    shapes.update({"ln_f.weight": (d,), "ln_f.bias": (d,)})
    return shapes


def _shape_str(shape: tuple[int, ...]) -> str:
    return str(tuple(int(n) for n in shape))


def load_gpt2_npz(path: str | Path, model: ModelSpec) -> dict[str, np.ndarray]:
    """Read and check a GPT-2 `.npz` for `model`; arrays come back as C-contiguous float32.

    Every failure is an InputError naming the file and the array: missing, wrong shape, not a float
    dtype, non-finite values, or a file that is not an npz archive."""
    file = str(path)
    p = Path(path)
    if not p.exists():
        raise InputError(file, "", "file not found")
    if p.is_dir():
        raise InputError(file, "", "is a folder; expected a numpy .npz file")
    if not zipfile.is_zipfile(p):
        raise InputError(file, "", "not a numpy .npz archive (expected a zip of .npy arrays, as np.savez writes)")
    try:
        archive = np.load(p, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise InputError(file, "", f"cannot read as a numpy .npz archive ({exc.__class__.__name__}: {exc})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):  # pragma: no cover - is_zipfile rules this out
        raise InputError(file, "", "not a numpy .npz archive")
    with archive:
        names: dict[str, str] = {}
        for key in archive.files:
            name = key[len("transformer."):] if key.startswith("transformer.") else key
            names.setdefault(_ALIASES.get(name, name), key)
        out: dict[str, np.ndarray] = {}
        for name, shape in expected_shapes(model).items():
            if name not in names:
                raise InputError(file, name, f"missing; expected shape {_shape_str(shape)} ({model.name})")
            try:
                arr = archive[names[name]]
            except (OSError, ValueError, zipfile.BadZipFile) as exc:
                raise InputError(file, name, f"cannot read array ({exc.__class__.__name__}: {exc})") from None
            if tuple(arr.shape) != shape:
                raise InputError(file, name, f"got shape {_shape_str(arr.shape)}; expected {_shape_str(shape)} "
                                             f"({model.name})")
            if arr.dtype.kind != "f":
                raise InputError(file, name, f"got dtype {arr.dtype}; expected a float dtype "
                                             "(float16, float32 or float64)")
            arr = np.ascontiguousarray(arr, dtype=np.float32)
            if not np.all(np.isfinite(arr)):
                raise InputError(file, name, "holds NaN or infinite values (after conversion to float32)")
            out[name] = arr
    return out


def random_gpt2_weights(model: ModelSpec, seed: int = 0, *, gain: float = 0.8, wte_gain: float = 2.4,
                        wpe_ratio: float = 6.0) -> dict[str, np.ndarray]:
    """Random float32 weights for tests, scaled so that any size behaves alike.

    Matrices ~ N(0, (gain/sqrt(d_in))²), the residual projections (c_proj) further scaled by
    1/sqrt(2·n_layers) as in GPT-2's init; biases ~ N(0, 0.02²) rather than zero; LayerNorm
    gains 1 + N(0, 0.1²), biases N(0, 0.1²). `wte` ~ N(0, (wte_gain/sqrt(d))²), so the tied LM
    head's logits have a standard deviation near wte_gain; `wpe` is `wpe_ratio` times larger than
    `wte`, so the next token depends on the position and greedy decoding does not just repeat
    the last token (which a random tied-embedding model otherwise does)."""
    rng = np.random.default_rng(seed)
    d = model.d_model
    wte_std = wte_gain / np.sqrt(d)
    out: dict[str, np.ndarray] = {}
    for name, shape in expected_shapes(model).items():
        if name == "wte":
            a = rng.normal(0.0, wte_std, shape)
        elif name == "wpe":
            a = rng.normal(0.0, wte_std * wpe_ratio, shape)
        elif name.endswith(("ln_1.weight", "ln_2.weight", "ln_f.weight")):
            a = 1.0 + rng.normal(0.0, 0.1, shape)
        elif name.endswith(("ln_1.bias", "ln_2.bias", "ln_f.bias")):
            a = rng.normal(0.0, 0.1, shape)
        elif name.endswith(".weight"):
            std = gain / np.sqrt(shape[0])
            if name.endswith("c_proj.weight"):
                std /= np.sqrt(2 * model.n_layers)
            a = rng.normal(0.0, std, shape)
        else:
            a = rng.normal(0.0, 0.02, shape)
        out[name] = a.astype(np.float32)
    return out


def save_npz(weights: dict[str, np.ndarray], path: str | Path) -> Path:
    """Write `weights` as an uncompressed `.npz` through a temporary sibling and a rename."""
    with atomic_file(path, "wb") as fh:
        np.savez(fh, **weights)
    return Path(path)
