"""Decode once: an in-process cache and an on-disk ``.pt`` cache of decoded tensors.

Decompressing and parsing Fashion-MNIST's IDX files takes about half a second; loading
the decoded ``.pt`` file takes a few milliseconds, and a second load in the same process
takes nothing. Disk entries are keyed by the source files' paths, sizes and modification
times, so replacing a source file invalidates its entry without any bookkeeping.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path
from typing import Any, TypeVar, cast

import torch

T = TypeVar("T")
Tensors = dict[str, torch.Tensor]

_MEMORY: dict[Hashable, Any] = {}


def cache_dir() -> Path:
    """Where lrlab keeps decoded data: ``$LRLAB_CACHE`` if set, else ``~/.cache/lrlab``.

    >>> import os
    >>> saved = os.environ.get("LRLAB_CACHE")
    >>> os.environ["LRLAB_CACHE"] = "/tmp/lrlab-cache"
    >>> str(cache_dir())
    '/tmp/lrlab-cache'
    >>> _ = os.environ.pop("LRLAB_CACHE") if saved is None else os.environ.update(LRLAB_CACHE=saved)
    """
    env = os.environ.get("LRLAB_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "lrlab"


def source_key(name: str, files: Sequence[Path]) -> str:
    """A short key naming ``files`` as they are now (path, size and mtime of each)."""
    h = hashlib.sha256(name.encode())
    for f in files:
        st = f.stat()
        h.update(f"\0{f.resolve()}\0{st.st_size}\0{st.st_mtime_ns}".encode())
    return f"{name}-{h.hexdigest()[:16]}"


def memoized(key: Hashable, build: Callable[[], T]) -> T:
    """``build()``'s result, computed once per process for each ``key``."""
    if key not in _MEMORY:
        _MEMORY[key] = build()
    return cast(T, _MEMORY[key])


def disk_cached(key: str, decode: Callable[[], Tensors]) -> Tensors:
    """The tensors stored as ``<cache_dir>/<key>.pt``, decoding and storing them on a miss.

    The disk cache is an optimisation only: an unreadable or unwritable cache directory
    falls back to decoding, never to an error.
    """
    path = cache_dir() / f"{key}.pt"
    if path.is_file():
        try:
            tensors: Tensors = torch.load(path, weights_only=True)
            return tensors
        except Exception:  # a truncated or foreign file: decode again and overwrite it
            pass
    tensors = decode()
    _save(tensors, path)
    return tensors


def _save(tensors: Tensors, path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    except OSError:
        return
    try:
        # Write then rename, so a concurrent reader never sees half a file.
        with os.fdopen(fd, "wb") as fh:
            torch.save(tensors, fh)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a shared cache dir must be readable
        os.replace(tmp, path)
    except (OSError, RuntimeError):
        Path(tmp).unlink(missing_ok=True)


def clear_memory_cache() -> None:
    """Forget the tensors cached in this process (the disk cache is kept)."""
    _MEMORY.clear()
