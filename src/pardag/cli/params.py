"""The params of a run from ``pardag run --set key=value``, over the workflow's defaults."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pardag.errors import ArgumentError

__all__ = ["run_params"]

_KEY = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*")


def run_params(
    defaults: Mapping[str, Any],
    assignments: Sequence[str],
    takes: Callable[[str], str | None] | None = None,
) -> dict[str, Any]:
    """The run's params: ``key=value`` assignments (``--set``) over the workflow's defaults.

    ``a.b=1`` sets key ``b`` inside mapping ``a`` (made when missing, kept otherwise). A value
    that parses as JSON is that JSON value (``3``, ``true``, ``null``, ``[1, 2]``, ``"3"``);
    anything else is the plain string. ``takes`` says why the workflow does not take a
    top-level key (``pardag.model.param_problem``): such an assignment is an error.
    """
    params: dict[str, Any] = _copy(defaults)
    for assignment in assignments:
        key, sep, text = assignment.partition("=")
        if not sep or not _KEY.fullmatch(key.strip()):
            raise ArgumentError(
                f"Invalid --set value {assignment!r}: expected key=value, "
                "e.g. --set region=eu or --set limits.rows=100"
            )
        path = key.strip().split(".")
        problem = takes(path[0]) if takes is not None else None
        if problem is not None:
            raise ArgumentError(f"--set {assignment}: {problem}")
        _assign(params, path, _value(text), assignment)
    return params


def _copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _copy(v) for k, v in value.items()}
    return value


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _assign(params: dict[str, Any], path: list[str], value: Any, assignment: str) -> None:
    node = params
    for depth, part in enumerate(path[:-1]):
        inner = node.setdefault(part, {})
        if not isinstance(inner, dict):
            where = ".".join(path[: depth + 1])
            raise ArgumentError(
                f"Invalid --set value {assignment!r}: param {where!r} is {inner!r}, "
                f"not a mapping; set {where!r} itself or choose another key"
            )
        node = inner
    node[path[-1]] = value
