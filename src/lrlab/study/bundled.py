"""Studies shipped with lrlab (``studies/*.toml`` in the repo, ``lrlab/_studies`` in a wheel)."""

from __future__ import annotations

import difflib
from pathlib import Path


def bundled_dir() -> Path | None:
    here = Path(__file__).resolve().parent.parent
    for candidate in (here / "_studies", here.parent.parent / "studies"):
        if candidate.is_dir():
            return candidate
    return None


def bundled_studies() -> list[str]:
    """Names of the bundled studies."""
    d = bundled_dir()
    return sorted(p.stem for p in d.glob("*.toml")) if d else []


def find_study(name_or_path: str) -> Path:
    """A study file: an existing path, or the name of a bundled study."""
    p = Path(name_or_path)
    if p.suffix == ".toml" or p.exists():
        if not p.exists():
            raise ValueError(f"study file {name_or_path!r} does not exist")
        return p
    d = bundled_dir()
    if d is not None and (d / f"{name_or_path}.toml").exists():
        return d / f"{name_or_path}.toml"
    names = bundled_studies()
    close = difflib.get_close_matches(name_or_path, names, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    known = ", ".join(names) or "none"
    raise ValueError(
        f"no study file or bundled study named {name_or_path!r}{hint}; bundled: {known}"
    )
