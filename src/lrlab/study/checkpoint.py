"""Per-trial checkpoints: written atomically each epoch, read back with ``weights_only=True``.

A checkpoint is written to a temporary file of the writing process, flushed to disk and
renamed over ``last.pt``, so a kill at any moment leaves the previous checkpoint (or
the new one) whole. A ``last.pt`` that cannot be read anyway (a disk that lost data, a
copy cut short, a file from an incompatible lrlab) is never fatal: it is moved aside
as ``last.pt.corrupt-<time>`` and kept, a note says so, and the trial starts over.
"""

from __future__ import annotations

import os
import pickle
import shutil
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

FORMAT = 1
#: What torch.load raises on a file that is not a whole checkpoint: a truncated zip
#: ("PytorchStreamReader failed reading zip archive"), random bytes ("pop from empty
#: list", "invalid load key"), a pickle of something else.
_UNREADABLE = (
    RuntimeError,
    ValueError,
    EOFError,
    IndexError,
    KeyError,
    AttributeError,
    TypeError,
    pickle.UnpicklingError,
    zipfile.BadZipFile,
    OSError,  # a cut at some offsets: "[Errno 22] Invalid argument"
)
#: OSErrors that say nothing about the file's content: they are raised, not set aside.
_NOT_CORRUPT = (PermissionError, FileNotFoundError, IsADirectoryError)
CORRUPT = "corrupt"


class Checkpoint:
    """The latest checkpoint of one trial, in ``directory/last.pt``.

    >>> import tempfile
    >>> ckpt = Checkpoint(tempfile.mkdtemp())
    >>> ckpt.save({"epoch": 3})
    >>> ckpt.load()["epoch"]
    3
    >>> _ = ckpt.path.write_bytes(b"not a checkpoint")
    >>> ckpt.load() is None, ckpt.note.startswith("checkpoint ")
    (True, True)
    """

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.path = self.directory / "last.pt"
        #: set when `load` or `check` moved an unreadable checkpoint aside
        self.note: str | None = None

    def save(self, state: dict[str, Any]) -> None:
        """Write a temporary file, then rename it over the old one (a kill leaves one of them)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        # one temporary name per process: two writers never rename each other's file
        tmp = self.directory / f"last.pt.tmp-{os.getpid()}"
        with open(tmp, "wb") as f:
            torch.save({"format": FORMAT, **state}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    def _read(self, mmap: bool = False) -> dict[str, Any]:
        state = torch.load(self.path, map_location="cpu", weights_only=True, mmap=mmap)
        if not isinstance(state, dict):
            raise ValueError(f"holds a {type(state).__name__}, not a checkpoint")
        if state.get("format") != FORMAT:
            raise ValueError(f"checkpoint format {state.get('format')!r}, expected {FORMAT}")
        return state

    def load(
        self,
        on_event: Callable[[dict[str, Any]], None] | None = None,
        trial: str | None = None,
    ) -> dict[str, Any] | None:
        """The saved state, or None when there is none or it cannot be read.

        An unreadable ``last.pt`` is moved aside (see `quarantine`); `note` says where,
        and ``on_event`` (a trial's progress callback) receives it as a
        ``checkpoint_corrupt`` event for ``trial``.
        """
        if not self.path.exists():
            return None
        try:
            return self._read()
        except _NOT_CORRUPT:
            raise
        except _UNREADABLE as e:
            self.note = self.quarantine(_why(e))
        if on_event is not None:
            on_event({"kind": "checkpoint_corrupt", "trial": trial, "message": self.note})
        return None

    def check(self) -> str | None:
        """Read the checkpoint cheaply (tensors memory-mapped, not loaded); if it cannot
        be read, move it aside and return the note, else None."""
        if not self.path.exists():
            return None
        try:
            self._read(mmap=True)
        except _NOT_CORRUPT:
            raise
        except _UNREADABLE:
            try:  # mmap refuses what is not a zip archive: read it whole for the reason
                self._read()
            except _NOT_CORRUPT:
                raise
            except _UNREADABLE as e:
                self.note = self.quarantine(_why(e))
                return self.note
        return None

    def quarantine(self, why: str) -> str:
        """Move ``last.pt`` to ``last.pt.corrupt-<time>`` (kept for a look) and say so."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        dest = self.path.with_name(f"last.pt.{CORRUPT}-{stamp}")
        n = 1
        while dest.exists():
            dest, n = self.path.with_name(f"last.pt.{CORRUPT}-{stamp}-{n}"), n + 1
        os.replace(self.path, dest)
        return (
            f"checkpoint {str(self.path)!r} could not be read ({why}); kept as {dest.name}; "
            "the trial restarts from its beginning"
        )

    def remove(self) -> None:
        """Delete the checkpoint directory, except checkpoints moved aside as unreadable."""
        if not self.directory.is_dir():
            return
        kept = [p for p in self.directory.iterdir() if f".{CORRUPT}-" in p.name]
        if not kept:
            shutil.rmtree(self.directory, ignore_errors=True)
            return
        for p in self.directory.iterdir():
            if p not in kept:
                if p.is_dir():
                    shutil.rmtree(p, ignore_errors=True)
                else:
                    p.unlink(missing_ok=True)


def _why(e: BaseException) -> str:
    text = " ".join(str(e).split()).split(". ")[0] or type(e).__name__  # its first sentence
    return f"{type(e).__name__}: {text[:160]}"
