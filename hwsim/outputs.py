"""Result files: deterministic JSON, atomic run folders (all files appear at once or none)."""

from __future__ import annotations

import json
import os
import secrets
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from hwsim.errors import InputError


def dumps_json(obj: Any) -> str:
    """Sorted, indented JSON with a trailing newline (byte-comparable across runs)."""
    return json.dumps(obj, indent=2, sort_keys=True, default=_default) + "\n"


def _default(obj):
    import numpy as np
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def dumps_yaml(obj: Any) -> str:
    return yaml.safe_dump(obj, sort_keys=False, default_flow_style=None)


def _sibling_name(p: Path) -> Path:
    """A hidden `.NAME.<pid>.<random>.tmp` sibling of `p` (the shape `remove_stale_temporaries` clears)."""
    return p.with_name(f".{p.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


@contextmanager
def atomic_file(path: str | Path, mode: str = "w"):
    """Yield a file handle (`mode` "w" text or "wb" binary) whose contents replace `path` in one
    rename when the block ends, or vanish if it raises. The temporary is created inside the clean-up's reach, so a signal raised
    at any bytecode (even right after the file is made) leaves nothing behind."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = _sibling_name(p)
    try:
        with open(tmp, mode.replace("w", "x")) as fh:
            yield fh
        os.replace(tmp, p)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_atomic(path: str | Path, text: str) -> None:
    """Write a text file through a temporary sibling and a rename."""
    with atomic_file(path) as fh:
        fh.write(text)


def check_out_dir(out_dir: str | Path, overwrite: bool) -> Path:
    """Refuse an existing folder unless `overwrite`; an InputError names it."""
    out = Path(out_dir)
    if out.exists() and not overwrite:
        raise InputError(str(out), "-o", "output folder exists; pass --overwrite to replace it")
    return out


def write_run_folder(out_dir: str | Path, files: dict[str, str], overwrite: bool = False) -> Path:
    """Write `files` (name -> text) into a fresh folder, swapped into place in one rename."""
    out = check_out_dir(out_dir, overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = _sibling_name(out)
    try:
        tmp.mkdir()  # inside the try: a signal right after it still removes the folder
        for name, text in files.items():
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp / name).write_text(text)
        if out.exists():
            old = out.with_name(f".{out.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            out.rename(old)
            tmp.rename(out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def remove_stale_temporaries(folder: str | Path) -> list[Path]:
    """Delete the hidden `.NAME.*.tmp` / `.NAME.old` siblings that only a killed writer leaves behind."""
    root = Path(folder)
    if not root.is_dir():
        return []
    stale = [p for p in root.iterdir() if p.name.startswith(".") and (p.name.endswith(".tmp") or
                                                                     p.name.endswith(".old"))]
    for p in stale:
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
    return stale
