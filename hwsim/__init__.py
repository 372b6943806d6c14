"""hwsim: cycle-accurate simulation of PIM-GPT and T3 on a shared DRAM core."""

import hashlib
import os
import shutil
import sys
from pathlib import Path

__version__ = "0.1.0"

__all__ = ["__version__", "kernel_source_digest"]

# Packages whose modules hold numba kernels or code the kernels inline (device.earliest/issue,
# refresh.due_refresh are compiled into the scheduler, PIM and T3 kernels).
_KERNEL_PACKAGES = ("dram_pim", "t3")
_CACHES_KEPT = 4   # the current kernel cache and the most recently used older ones


def kernel_source_digest(root: Path) -> str:
    """A digest of every module of the kernel packages under `root` (the hwsim package folder)."""
    h = hashlib.sha1()
    for package in _KERNEL_PACKAGES:
        for path in sorted((root / package).glob("*.py")):
            h.update(f"{package}/{path.name}\0".encode())
            h.update(path.read_bytes())
    return h.hexdigest()[:16]


def _key_numba_cache_on_kernel_sources() -> None:
    """numba keys a kernel's on-disk cache on the kernel's own source file only, so a cached
    scheduler, PIM or T3 kernel would survive a change to the device model it inlines and give
    wrong timing after an upgrade. Unless the user chose NUMBA_CACHE_DIR, put the cache in a folder
    named after the digest of all kernel sources, so any change to them starts a fresh cache."""
    if "NUMBA_CACHE_DIR" in os.environ:
        return
    root = Path(__file__).resolve().parent
    folder = root / "__pycache__" / f"numba-{kernel_source_digest(root)}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        folder.touch()   # its mtime marks it as recently used
    except OSError:
        return  # a read-only install: numba's default locations apply
    older = sorted((d for d in folder.parent.glob("numba-*") if d != folder), key=lambda d: d.stat().st_mtime)
    for stale in older[:max(len(older) - (_CACHES_KEPT - 1), 0)]:
        shutil.rmtree(stale, ignore_errors=True)
    os.environ["NUMBA_CACHE_DIR"] = str(folder)
    if "numba" in sys.modules:  # numba read its configuration before hwsim was imported
        from numba.core import config

        config.reload_config()


_key_numba_cache_on_kernel_sources()
