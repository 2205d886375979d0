"""Entry points: the function a study names to build its task.

``"package.module:function"`` imports ``package.module`` from ``sys.path`` (with the
current directory tried last, as ``python -m`` would have it) and
``"path/to/file.py:function"`` loads that file; ``function`` may be a dotted path inside
the module (``"tasks:Factory.build"``). The function is called with the study's
``[task.options]`` as keyword arguments and must return an `lrlab.Task`. It runs with
torch's global generator seeded to 0 (and restored afterwards), so data it draws from
torch are the same in every process that builds the task.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import os
import re
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lrlab.tasks.task import Task

_ATTR = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_FORMS = "'package.module:function' or 'path/to/file.py:function'"


def split_entry(entry: str) -> tuple[str, str]:
    """``(module or file, function)`` of an entry point, or a ValueError saying the forms.

    >>> split_entry("my_tasks.regression:make"), split_entry("tasks/seq.py:build")
    (('my_tasks.regression', 'make'), ('tasks/seq.py', 'build'))
    """
    if not isinstance(entry, str) or ":" not in entry:
        raise ValueError(f"task.entry={entry!r} is invalid; expected {_FORMS}")
    where, _, attr = entry.rpartition(":")
    if not where or not _ATTR.match(attr):
        raise ValueError(f"task.entry={entry!r} is invalid; expected {_FORMS}")
    if not is_file(where) and not _ATTR.match(where):
        raise ValueError(
            f"task.entry={entry!r}: {where!r} is neither a module name nor a .py file; "
            f"expected {_FORMS}"
        )
    return where, attr


def is_file(where: str) -> bool:
    return where.endswith(".py")


def absolute(entry: str, base: str | Path) -> str:
    """A file entry with its path made absolute against ``base`` (module entries as they are)."""
    where, attr = split_entry(entry)
    if not is_file(where) or Path(where).is_absolute():
        return entry
    return f"{(Path(base) / where).resolve()}:{attr}"


_FILES: dict[str, ModuleType] = {}


def _load_file(where: str, entry: str) -> ModuleType:
    path = Path(where).expanduser().resolve()
    key = str(path)
    if key in _FILES:
        return _FILES[key]
    if not path.is_file():
        raise ValueError(
            f"task.entry={entry!r}: no file {str(path)!r} (a relative path is taken from the "
            "study file's directory, or from the current directory from Python)"
        )
    digest = hashlib.blake2b(key.encode(), digest_size=4).hexdigest()
    name = f"_lrlab_entry_{re.sub(r'[^A-Za-z0-9_]', '_', path.stem)}_{digest}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # registered before running it, so pickling by reference and dataclasses inside it work
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    _FILES[key] = module
    return module


def _import(where: str, entry: str) -> ModuleType:
    try:
        return importlib.import_module(where)
    except ModuleNotFoundError as e:
        missing = (e.name or "").split(".")[0]
        cwd = os.getcwd()
        if missing == where.split(".")[0] and cwd not in sys.path:
            sys.path.append(cwd)  # kept: worker processes inherit sys.path and find it too
            try:
                return importlib.import_module(where)
            except ModuleNotFoundError:
                pass
        if missing != where.split(".")[0]:
            raise  # the module exists but an import inside it failed: show that
        raise ValueError(
            f"task.entry={entry!r}: no module named {where!r} on sys.path (add its directory "
            "to PYTHONPATH, or write the entry as 'path/to/file.py:function')"
        ) from None


def load_entry(entry: str) -> Callable[..., Any]:
    """The function an entry point names.

    >>> load_entry("lrlab.tasks.bundled:classification").__name__
    'classification'
    """
    where, attr = split_entry(entry)
    module = _load_file(where, entry) if is_file(where) else _import(where, entry)
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ValueError(f"task.entry={entry!r}: {where!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise ValueError(f"task.entry={entry!r}: {attr!r} is not callable")
    return obj


def describe(factory: Callable[..., Any]) -> str:
    """``module:qualname`` of a factory, for messages and as its entry in a stored study."""
    module = getattr(factory, "__module__", None) or "?"
    name = getattr(factory, "__qualname__", None) or type(factory).__name__
    return f"{module}:{name}"


def call_factory(factory: Callable[..., Any], options: Mapping[str, Any], where: str) -> Task:
    """``factory(**options)``, checked: options it does not take, and a result that is no Task."""
    try:
        inspect.signature(factory).bind(**options)
    except TypeError as e:
        try:
            params = [
                p.name
                for p in inspect.signature(factory).parameters.values()
                if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
            ]
        except (TypeError, ValueError):
            params = []
        takes = ", ".join(params) or "no options"
        raise ValueError(f"task.options for {where}: {e}; it takes: {takes}") from None
    except ValueError:
        pass  # a builtin without a signature: let the call say what is wrong
    import torch

    from lrlab.tasks.task import Task

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        task = factory(**options)
    if not isinstance(task, Task):
        raise TypeError(f"{where} returned {type(task).__name__}; expected an lrlab.Task")
    return task
