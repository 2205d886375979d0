"""One rule for the whole CLI: a user error is one line on stderr and exit code 2.

Two kinds of user error reach the user. lrlab's own checks raise ValueError (and a path
that cannot be read or written raises OSError) inside a command; `user_errors` prints
them. The argument parser's errors (a missing argument, an unknown option, ``--workers
0``) are raised before any command runs; `OneLineGroup`, the root command's class, prints
them as one line naming the command, the flag, the value and what is allowed, instead of
the parser's usage block.
"""

from __future__ import annotations

import functools
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import typer
from typer.core import TyperGroup

F = TypeVar("F", bound=Callable[..., Any])


class UsageError(ValueError):
    """An invalid argument or input, reported to the user without a traceback."""


def one_line(text: str) -> str:
    """``text`` with its lines joined by ``"; "``: what the CLI prints is a single line.

    >>> one_line("bad value\\n  expected one of a, b\\n")
    'bad value; expected one of a, b'
    """
    return "; ".join(part.strip() for part in str(text).splitlines() if part.strip())


def fail(message: str) -> None:
    """Print ``error: message`` as one line on stderr (never read as markup)."""
    print(f"error: {one_line(message)}", file=sys.stderr)


def user_errors(func: F) -> F:
    """Turn ValueError (lrlab's validation) and OSError (an unwritable or missing path)
    raised by a command into one line and exit 2."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ValueError as e:
            fail(str(e))
            raise typer.Exit(2) from None
        except OSError as e:  # e.g. [Errno 13] Permission denied: 'out/report.html'
            fail(str(e))
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


def _parser_error(name: str) -> type[BaseException]:
    """The parser's exception class called ``name`` (click's, or the copy Typer ships)."""
    for cls in typer.BadParameter.__mro__:
        if cls.__name__ == name:
            return cls
    raise LookupError(name)  # pragma: no cover - every click has both


_CLICK_ERROR = _parser_error("ClickException")
_USAGE_ERROR = _parser_error("UsageError")


def _flag(param: Any) -> str:
    """How the user writes a parameter: ``--workers`` for an option, ``STUDY`` for an argument."""
    if getattr(param, "param_type_name", "") == "argument":
        return str(param.name).upper()
    opts = [o for o in getattr(param, "opts", []) if o.startswith("--")]
    return opts[0] if opts else str((getattr(param, "opts", None) or [param.name])[0])


def _given(param: Any, exc: BaseException, argv: Sequence[str]) -> str | None:
    """The value the user gave ``param``: from the validation error, else from the argv."""
    cause = exc.__cause__
    errors = getattr(cause, "errors", None)
    if callable(errors):
        try:
            first = errors()[0]
        except (IndexError, TypeError):
            first = None
        if isinstance(first, dict) and "input" in first:
            return str(first["input"])
    names = getattr(param, "opts", []) if getattr(param, "param_type_name", "") == "option" else []
    for i, token in enumerate(argv):
        for name in names:
            if token == name and i + 1 < len(argv):
                return argv[i + 1]
            if token.startswith(name + "="):
                return token[len(name) + 1 :]
    return None


def _expected(param: Any) -> str | None:
    """``expected an integer >= 1`` for a numeric parameter (Typer's and click's ways)."""
    annotation = getattr(getattr(param, "type_descriptor", None), "annotation", None)
    ptype = getattr(param, "type", None)
    type_name = str(getattr(ptype, "name", ""))
    if annotation is int or "integer" in type_name:
        kind = "an integer"
    elif annotation is float or type_name.startswith("float"):
        kind = "a number"
    else:
        return None
    low, high = getattr(param, "min", None), getattr(param, "max", None)
    if low is None and high is None:
        low, high = getattr(ptype, "min", None), getattr(ptype, "max", None)
    bounds = [f">= {low}"] if low is not None else []
    bounds += [f"<= {high}"] if high is not None else []
    return f"expected {kind}" + (" " + " and ".join(bounds) if bounds else "")


def _shown(value: str) -> str:
    return value if value and value.isprintable() and " " not in value else repr(value)


def _lower_first(text: str) -> str:
    """``Missing value.`` -> ``missing value``; an acronym (``TOML file``) keeps its case."""
    text = text.strip().rstrip(".")
    first = text.split(" ", 1)[0]
    return text if len(first) > 1 and first.isupper() else text[:1].lower() + text[1:]


def _options_of(ctx: Any) -> list[str]:
    if ctx is None:
        return []
    return [
        _flag(p) for p in ctx.command.params if getattr(p, "param_type_name", "") == "option"
    ] + ["--help"]


def _command_path(root: Any, argv: Sequence[str], prog: str) -> str:
    """``lrlab study run``: the (sub)commands named at the start of ``argv``."""
    words, command = [prog], root
    for token in argv:
        commands = getattr(command, "commands", None)
        if not isinstance(commands, dict) or token not in commands:
            break
        words.append(token)
        command = commands[token]
    return " ".join(words)


def _help_of(param: Any) -> str:
    text = one_line(getattr(param, "help", None) or "")
    return f" ({_lower_first(text)})" if text else ""


def parser_error_line(
    exc: BaseException, argv: Sequence[str], root: Any = None, prog: str = "lrlab"
) -> str:
    """One line for a parser error: the command, the flag, the value and what is allowed."""
    ctx = getattr(exc, "ctx", None)
    where = ctx.command_path if ctx is not None else _command_path(root, argv, prog)
    kind = type(exc).__name__
    param = getattr(exc, "param", None)
    message = str(getattr(exc, "message", "") or exc)
    if kind == "MissingParameter" and param is not None:
        what = "argument" if param.param_type_name == "argument" else "option"
        return f"{where}: missing {what} {_flag(param)}{_help_of(param)}"
    if kind == "NoSuchOption":
        option = str(getattr(exc, "option_name", "") or message)
        close = sorted(getattr(exc, "possibilities", None) or [])
        hint = f" (did you mean {' or '.join(close)}?)" if close else ""
        return f"{where}: no such option {option!s}{hint}; options: {', '.join(_options_of(ctx))}"
    if param is not None:  # a value the parser could not convert or that is out of range
        value = _given(param, exc, argv)
        got = f"={_shown(value)}" if value is not None else ""
        expected = _expected(param)
        why = f"; {expected}" if expected else f": {_lower_first(one_line(message))}"
        return f"{where}: {_flag(param)}{got} is invalid{why}"
    option = str(getattr(exc, "option_name", "") or "")
    if option and "requires an argument" in message:  # an option given without its value
        return f"{where}: {option} needs a value; see '{where} --help'"
    if message.startswith("No such command") and ctx is not None:
        names = ctx.command.list_commands(ctx)
        text = re.sub(r"\.\s*Did you mean (.*)\?", r" (did you mean \1?)", one_line(message))
        return f"{where}: {_lower_first(text)}; commands: {', '.join(names)}"
    text = _lower_first(one_line(message))
    return f"{where}: {text}; see '{where} --help'"


class OneLineGroup(TyperGroup):
    """The root command: parser errors become one line on stderr with exit code 2."""

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        try:
            rv = super().main(
                args=argv,
                prog_name=prog_name,
                complete_var=complete_var,
                standalone_mode=False,
                **extra,
            )
            code = rv if isinstance(rv, int) and not isinstance(rv, bool) else 0
        except _USAGE_ERROR as e:
            if type(e).__name__ == "NoArgsIsHelpError":  # a bare group: its help, as asked
                print(str(getattr(e, "message", e)))
                code = 2
            else:
                fail(parser_error_line(e, argv, self, prog_name or "lrlab"))
                code = 2
        except _CLICK_ERROR as e:  # e.g. a file the parser could not open
            fail(one_line(str(getattr(e, "message", e))))
            code = int(getattr(e, "exit_code", 1))
        except typer.Abort:
            fail("aborted")
            code = 1
        if standalone_mode:
            sys.exit(code)
        return code


def run_app(app: typer.Typer, argv: list[str]) -> int:
    """Run a Typer app and return its exit code (user errors are 2)."""
    try:
        app(args=argv, prog_name="lrlab")
    except SystemExit as e:
        code = e.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    return 0
