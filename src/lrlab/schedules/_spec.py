"""Spec strings: ``one_cycle(max_lr=0.4, total=1000)`` or the JSON of ``to_dict()``."""

from __future__ import annotations

import ast
import json
from typing import Any

from lrlab.schedules._base import Schedule, build


def parse(spec: str) -> Schedule:
    """Turn a spec string into a schedule.

    Two forms are accepted: a call such as ``one_cycle(max_lr=0.4, total=1000)``, whose
    arguments are literals or nested calls (``warmup(cosine(init=0.1, total=900), steps=100)``),
    or the JSON object written by ``Schedule.to_dict()``. Nothing is evaluated: the call form
    is read with ``ast`` and only literal values are accepted.

    Raises:
        ValueError: naming what is wrong (syntax, unknown schedule, bad parameter).

    >>> parse("triangular(base_lr=0.001, max_lr=0.006, step_size=2000)").cycle_length
    4000
    >>> parse('{"kind": "constant", "level": 0.1}')(7)
    0.1
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(
            f"empty schedule spec {spec!r}; expected e.g. 'cosine(init=0.1, total=1000)'"
        )
    text = spec.strip()
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(
                f"schedule spec is not valid JSON: {e.msg} at column {e.colno}"
            ) from None
        return Schedule.from_dict(data)
    try:
        node = ast.parse(text, mode="eval").body
    except SyntaxError as e:
        raise ValueError(
            f"schedule spec {text!r} is not a call like name(key=value, ...): {e.msg}"
        ) from None
    return _call(node, text)


def _call(node: ast.expr, text: str) -> Schedule:
    if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
        raise ValueError(f"schedule spec {text!r}: expected a call like name(key=value, ...)")
    args = tuple(_literal(a, text) for a in node.args)
    kwargs: dict[str, Any] = {}
    for kw in node.keywords:
        if kw.arg is None:
            raise ValueError(f"schedule spec {text!r}: '**' is not allowed")
        kwargs[kw.arg] = _literal(kw.value, text)
    return build(node.func.id, args, kwargs)


def _literal(node: ast.expr, text: str) -> Any:
    if isinstance(node, ast.Call):
        return _call(node, text)
    if isinstance(node, (ast.Tuple, ast.List)):
        return tuple(_literal(e, text) for e in node.elts)
    if isinstance(node, ast.Name) and node.id in ("true", "false", "none", "null"):
        return {"true": True, "false": False}.get(node.id)
    try:
        return ast.literal_eval(node)
    except ValueError:
        raise ValueError(
            f"schedule spec {text!r}: {ast.unparse(node)!r} is not a literal value"
        ) from None
