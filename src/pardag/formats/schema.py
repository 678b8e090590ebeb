"""The JSON Schema (draft 2020-12) of the native steps file, made from the reader's own fields.

``python -m pardag.formats.schema > docs/schema.json`` writes it. Editors use it to complete
and check files as they are typed; pardag itself does not need it (its reader gives better
messages). The fields and their descriptions come from ``pardag.formats.native`` and the
registered kinds (``pardag.kinds.KINDS``), so the schema cannot drift from what is read.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from pardag.formats.native import DASK, EXECUTION, POOL, RETRY, STEP, TOP, Field
from pardag.kinds import KINDS

__all__ = ["render", "schema"]

DRAFT = "https://json-schema.org/draft/2020-12/schema"


def _properties(fields: Sequence[Field]) -> dict[str, Any]:
    return {f.name: {**f.schema, "description": f.description} for f in fields}


def _object(fields: Sequence[Field], description: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "object",
        "description": description,
        "properties": _properties(fields),
        "additionalProperties": False,
        **extra,
    }


def _step() -> dict[str, Any]:
    """A step: the common fields, plus its kind's parameters (chosen by ``kind``)."""
    properties = _properties(STEP)
    properties["kind"] = {**properties["kind"], "enum": sorted(KINDS)}
    per_kind = [
        {
            "if": {"properties": {"kind": {"const": name}}},
            "then": {
                "properties": {
                    field: {"description": f"A parameter of the {name!r} kind."}
                    for field in KINDS[name].fields
                    if field not in properties
                }
            },
        }
        for name in sorted(KINDS)
    ]
    return {
        "type": "object",
        "description": (
            "One step. Besides these fields, the parameters of its kind may be written here "
            "or under params; 'kind' defaults to python."
        ),
        "properties": properties,
        "allOf": per_kind,
        "unevaluatedProperties": False,
    }


def schema() -> dict[str, Any]:
    """The schema as a JSON-ready mapping."""
    return {
        "$schema": DRAFT,
        "title": "pardag steps file",
        "description": (
            "A pardag workflow: a 'steps' mapping of step ids to their fields "
            "(YAML, TOML or JSON). See docs/formats.md."
        ),
        "type": "object",
        "required": ["steps"],
        "properties": _properties(TOP),
        "additionalProperties": False,
        "$defs": {
            "execution": _object(EXECUTION, "Settings of the workflow's runs."),
            "pool": _object(POOL, "A pool with a rate.", required=["size"]),
            "dask": _object(DASK, "The Dask cluster of steps on executor dask."),
            "retry": _object(RETRY, "Retries with exponential backoff."),
            "step": _step(),
        },
    }


def render() -> str:
    """The schema as the text of ``docs/schema.json``."""
    return json.dumps(schema(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    print(render(), end="")
