"""Spec strings: ``one_cycle(max_lr=0.4, total=1000)`` or the JSON of ``to_dict()``."""

from __future__ import annotations

import ast
import dataclasses
import json
from typing import Any

from lrlab.schedules._base import Schedule
from lrlab.schedules._registry import schedule_class

_NAMES = {"true": True, "false": False, "none": None, "null": None}


def spec_to_dict(spec: str | dict[str, Any]) -> dict[str, Any]:
    """A spec (call string, JSON text or dict) as ``{"kind": ..., **params}``, not yet built.

    Positional arguments are mapped to the family's fields in order; nested calls become
    nested dicts. Nothing is evaluated: the call form is read with ``ast`` and only
    literal values are accepted.

    >>> spec_to_dict("warmup(cosine(init=0.1), steps=100)")
    {'kind': 'warmup', 'schedule': {'kind': 'cosine', 'init': 0.1}, 'steps': 100}
    """
    if isinstance(spec, dict):
        return {
            k: spec_to_dict(v) if isinstance(v, dict) and "kind" in v else v
            for k, v in spec.items()
        }
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
        if not isinstance(data, dict) or "kind" not in data:
            raise ValueError(f"a schedule dict needs a 'kind' key, got {data!r}")
        return spec_to_dict(data)
    try:
        node = ast.parse(text, mode="eval").body
    except SyntaxError as e:
        raise ValueError(
            f"schedule spec {text!r} is not a call like name(key=value, ...): {e.msg}"
        ) from None
    return _call(node, text)


def parse(spec: str) -> Schedule:
    """Turn a spec string into a schedule.

    Two forms are accepted: a call such as ``one_cycle(max_lr=0.4, total=1000)``, whose
    arguments are literals or nested calls (``warmup(cosine(init=0.1, total=900), steps=100)``),
    or the JSON object written by ``Schedule.to_dict()``.

    Raises:
        ValueError: naming what is wrong (syntax, unknown schedule, bad parameter).

    >>> parse("triangular(base_lr=0.001, max_lr=0.006, step_size=2000)").cycle_length
    4000
    >>> parse('{"kind": "constant", "level": 0.1}')(7)
    0.1
    """
    return Schedule.from_dict(spec_to_dict(spec))


def _call(node: ast.expr, text: str) -> dict[str, Any]:
    if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
        raise ValueError(f"schedule spec {text!r}: expected a call like name(key=value, ...)")
    cls = schedule_class(node.func.id)
    positional = [f.name for f in dataclasses.fields(cls) if f.init and not f.kw_only]
    if len(node.args) > len(positional):
        raise ValueError(
            f"{node.func.id}: takes at most {len(positional)} positional parameters "
            f"({', '.join(positional)}), got {len(node.args)}"
        )
    out: dict[str, Any] = {"kind": node.func.id}
    for name, arg in zip(positional, node.args):
        out[name] = _literal(arg, text)
    for kw in node.keywords:
        if kw.arg is None:
            raise ValueError(f"schedule spec {text!r}: '**' is not allowed")
        if kw.arg in out:
            raise ValueError(f"{node.func.id}: parameter {kw.arg!r} given twice")
        out[kw.arg] = _literal(kw.value, text)
    return out


def _literal(node: ast.expr, text: str) -> Any:
    if isinstance(node, ast.Call):
        return _call(node, text)
    if isinstance(node, (ast.Tuple, ast.List)):
        return [_literal(e, text) for e in node.elts]
    if isinstance(node, ast.Name) and node.id in _NAMES:
        return _NAMES[node.id]
    try:
        value = ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        raise ValueError(
            f"schedule spec {text!r}: {ast.unparse(node)!r} is not a literal value"
        ) from None
    if isinstance(value, (dict, set, bytes, complex)):
        raise ValueError(
            f"schedule spec {text!r}: {ast.unparse(node)!r} is not a number, string or list"
        )
    return value
