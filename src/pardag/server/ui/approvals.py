"""An approval step's form, built from its ``schema`` and ``choices``, and the answer it sends.

A schema of an object with plain properties becomes one input per property (a select for an
``enum``, a checkbox for a boolean, a number field for a number); ``choices`` become a select;
anything else is one JSON field. The answer is then checked against the schema by the engine,
as ``pardag approve`` checks it, so a form that builds a wrong value is refused in its words.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

__all__ = ["Field", "answer_from", "fields_of"]

_PLAIN = ("string", "number", "integer", "boolean")


@dataclass(frozen=True)
class Field:
    """One input of the form: ``kind`` is ``text``, ``number``, ``integer``, ``boolean``,
    ``select`` or ``json``."""

    name: str
    kind: str
    label: str
    options: tuple[tuple[str, str], ...] = ()
    """(value as JSON, label) of each option of a select."""
    required: bool = False
    default: Any = None


def fields_of(schema: Any, choices: Any) -> list[Field]:
    """The inputs of an approval step's form."""
    if isinstance(choices, list) and choices:
        return [Field("answer", "select", "Answer", _options(choices), True)]
    if not isinstance(schema, dict):
        return []  # approve or reject, with no input: the answer is true
    props = schema.get("properties")
    if schema.get("type") == "object" and isinstance(props, dict) and props:
        required = set(schema.get("required") or ())
        fields = [_field(name, spec, name in required) for name, spec in props.items()]
        if all(f is not None for f in fields):
            return [f for f in fields if f is not None]
    return [Field("answer", "json", "Answer (JSON)", required=True)]


def _field(name: str, spec: Any, required: bool) -> Field | None:
    if not isinstance(spec, dict):
        return None
    label = str(spec.get("title") or name)
    default = spec.get("default")
    if isinstance(spec.get("enum"), list):
        return Field(name, "select", label, _options(spec["enum"]), required, default)
    kind = spec.get("type")
    if kind not in _PLAIN:
        return None
    return Field(name, "text" if kind == "string" else str(kind), label, (), required, default)


def answer_from(fields: list[Field], form: dict[str, str]) -> Any:
    """The answer the submitted ``form`` gives (a ValueError saying which field is wrong)."""
    if not fields:
        return True
    if len(fields) == 1 and fields[0].name == "answer" and fields[0].kind in ("select", "json"):
        return _value(fields[0], form.get("f.answer", ""))
    out: dict[str, Any] = {}
    for field in fields:
        raw = form.get(f"f.{field.name}")
        if field.kind == "boolean":
            out[field.name] = raw is not None
        elif raw not in (None, ""):
            out[field.name] = _value(field, raw)
    return out


def _options(values: list[Any]) -> tuple[tuple[str, str], ...]:
    return tuple((json.dumps(v), v if isinstance(v, str) else json.dumps(v)) for v in values)


def _value(field: Field, raw: str) -> Any:
    if field.kind in ("json", "select"):  # a select's options are JSON too: "prod", 3, true
        try:
            return json.loads(raw)
        except ValueError:
            raise ValueError(f"{field.label}: {raw[:60]!r} is not JSON") from None
    if field.kind in ("number", "integer"):
        try:
            return int(raw) if field.kind == "integer" else float(raw)
        except ValueError:
            noun = "an integer" if field.kind == "integer" else "a number"
            raise ValueError(f"{field.label}: {raw!r} is not {noun}") from None
    return raw
