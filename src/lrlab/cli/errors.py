"""One rule for the whole CLI: a user error is one line on stderr and exit code 2."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer

F = TypeVar("F", bound=Callable[..., Any])


class UsageError(ValueError):
    """An invalid argument or input, reported to the user without a traceback."""


def user_errors(func: F) -> F:
    """Turn ValueError (lrlab's validation) and OSError (an unwritable or missing path)
    raised by a command into one line and exit 2."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ValueError as e:
            print(f"error: {e}", file=sys.stderr)
            raise typer.Exit(2) from None
        except OSError as e:  # e.g. [Errno 13] Permission denied: 'out/report.html'
            print(f"error: {e}", file=sys.stderr)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


def run_app(app: typer.Typer, argv: list[str]) -> int:
    """Run a Typer app and return its exit code (usage errors are 2, as click makes them)."""
    try:
        app(args=argv, prog_name="lrlab")
    except SystemExit as e:
        code = e.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    return 0
