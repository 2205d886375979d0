"""Per-trial checkpoints: written atomically each epoch, read back with ``weights_only=True``."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import torch

FORMAT = 1


class Checkpoint:
    """The latest checkpoint of one trial, in ``directory/last.pt``."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.path = self.directory / "last.pt"

    def save(self, state: dict[str, Any]) -> None:
        """Write a temporary file, then rename it over the old one (a kill leaves one of them)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        torch.save({"format": FORMAT, **state}, tmp)
        os.replace(tmp, self.path)

    def load(self) -> dict[str, Any] | None:
        if not self.path.exists():
            return None
        state = torch.load(self.path, map_location="cpu", weights_only=True)
        if state.get("format") != FORMAT:
            raise ValueError(
                f"{self.path}: checkpoint format {state.get('format')!r}, expected {FORMAT}"
            )
        return state

    def remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)
