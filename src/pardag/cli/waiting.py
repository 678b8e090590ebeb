"""What a paused run waits for, said where the command stops: each waiting step's question and
the commands that answer it, ready to copy (``pardag approve ID review --input '{...}'``).

A run that pauses exits 3; without these lines a user would have to find the step, its
question and the shape of the answer it expects (its ``schema`` or ``choices``) by hand.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping
from typing import Any

from pardag.model import Step
from pardag.results import RunResult
from pardag.states import StepState
from pardag.store import mask_url

__all__ = ["answer_lines", "example_answer"]

_SHORT_ID = 12
"""The characters of a run id the commands show (any unique prefix of 6 or more will do)."""
_PLACEHOLDER: dict[str, Any] = {
    "string": "...",
    "integer": 0,
    "number": 0,
    "boolean": True,
    "null": None,
    "array": [],
}


def answer_lines(
    result: RunResult, steps: Mapping[str, Step] | None, store: str | None = None
) -> list[str]:
    """For each paused step of ``result``: its question, then the ``approve`` and ``reject``
    commands for it. ``steps`` (the workflow's) give the answer's shape; ``store`` is the
    ``--store`` the command was given, repeated in the commands (its password masked)."""
    lines = []
    where = f" --store {shlex.quote(mask_url(store))}" if store else ""
    run = result.run_id[:_SHORT_ID]
    for sid, step in result.steps.items():
        if step.state is not StepState.PAUSED:
            continue
        defined = steps.get(sid) if steps is not None else None
        example = example_answer(defined.params) if defined is not None else None
        given = "" if example is None else f" --input {shlex.quote(json.dumps(example))}"
        lines += [
            f"step {sid!r} waits for an answer: {step.reason or '(no question given)'}",
            f"  answer:  pardag approve {run} {shlex.quote(sid)}{given}{where}",
            f"  refuse:  pardag reject {run} {shlex.quote(sid)} --reason TEXT{where}",
        ]
    return lines


def example_answer(params: Mapping[str, Any]) -> Any:
    """An answer of the shape an approval step expects: from its ``schema`` (an enum's first
    value, required keys), else its first choice; None when any answer will do (``pardag
    approve`` then answers ``true``)."""
    schema = params.get("schema")
    if isinstance(schema, Mapping):
        return _from_schema(schema)
    choices = params.get("choices")
    if isinstance(choices, list) and choices:
        return choices[0]
    return None


def _from_schema(schema: Mapping[str, Any]) -> Any:
    for key in ("const", "default"):
        if key in schema:
            return schema[key]
    for key in ("enum", "examples"):
        if isinstance(schema.get(key), list) and schema[key]:
            return schema[key][0]
    kind = schema.get("type")
    kind = kind[0] if isinstance(kind, list) and kind else kind
    if kind == "object" or "properties" in schema:
        props = schema.get("properties")
        props = props if isinstance(props, Mapping) else {}
        keys = schema.get("required") or list(props)
        return {k: _from_schema(props.get(k) or {}) for k in keys if isinstance(k, str)}
    return _PLACEHOLDER.get(kind, True) if isinstance(kind, str) else True
