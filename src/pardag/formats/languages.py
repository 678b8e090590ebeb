"""A step's ``language:`` (``lua``, ``bash``, ``js``, ...) as the kind that runs it.

Steps files and Lua workflow files may say ``language: bash`` and ``code: ...`` instead of
``kind: shell`` and ``command: ...``; this turns the one into the other before the step is
read like any other.
"""

from __future__ import annotations

import difflib
from typing import Any

from pardag.errors import Problem

__all__ = ["LANGUAGES", "as_kind"]

LANGUAGES = {
    "lua": "lua",
    "shell": "shell",
    "bash": "shell",
    "sh": "shell",
    "python": "python",
    "javascript": "javascript",
    "js": "javascript",
    "node": "javascript",
    "nodejs": "javascript",
    "wasm": "wasm",
}
"""A step's ``language`` -> the kind that runs it."""

_CODE_FIELD = {"shell": "command"}
"""The kind parameter a step's ``code`` becomes (``code`` unless named here)."""


def as_kind(sid: str, spec: dict[str, Any], where: str, problems: list[Problem]) -> dict[str, Any]:
    """``spec`` with ``language`` replaced by ``kind`` (and ``code`` by the kind's parameter)."""
    if "language" not in spec:
        return spec
    spec = dict(spec)
    language = spec.pop("language")
    if "kind" in spec:
        problems.append(Problem(sid, "gives both 'language' and 'kind'; keep one", where))
        return spec
    if not isinstance(language, str):
        spec["kind"] = language  # the reader says it must be a string
        return spec
    kind = LANGUAGES.get(language.lower())
    if kind is None:
        close = difflib.get_close_matches(language.lower(), LANGUAGES, n=1)
        hint = f"did you mean {close[0]!r}?" if close else "use one of " + ", ".join(LANGUAGES)
        problems.append(Problem(sid, f"language {language!r} is unknown; {hint}", where))
        return spec
    spec["kind"] = kind
    if language.lower() == "bash" and "shell" not in spec and "shell" not in _params(spec):
        spec["shell"] = "bash"  # bash code gets bash, not the system's sh
    field = _CODE_FIELD.get(kind, "code")
    if "code" in spec and field != "code":
        if field in spec:
            problems.append(Problem(sid, f"gives both 'code' and {field!r}; keep one", where))
        else:
            spec[field] = spec.pop("code")
    return spec


def _params(spec: dict[str, Any]) -> Any:
    params = spec.get("params")
    return params if isinstance(params, dict) else {}
