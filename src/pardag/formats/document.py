"""A workflow file parsed into plain data, with the line of each key, read safely.

``read_document(path)`` reads a YAML, JSON or TOML file (by its extension; anything else is
read as YAML) into plain data (dicts, lists, str, int, float, bool, None) and records the
1-based line of every mapping key and list item: ``lines[("steps", "fetch")] == 12``.
Everything wrong with the file raises ``ValidationError(path, [Problem(None, msg, "file:line")])``.

Each syntax has its own parser module, which says how it reads and why: ``yaml_lines`` (built
from the event stream: one pass, plain data tags only, merge keys, alias limits),
``json_lines`` (``json`` plus a tokenizer for lines and duplicate keys) and ``toml_lines``
(``tomllib`` plus a scan for lines). A Lua file is a program: kept as text here, run by its
reader (``formats/lua.py``).

Limits, so that a hostile or broken file fails fast instead of eating the machine: the file
size (``MAX_BYTES``), the nesting depth (``MAX_DEPTH``), and YAML alias use (``MAX_ALIASES``
alias references, ``MAX_ALIAS_NODES`` values created by expanding them: a "billion laughs"
file is refused, not expanded). Duplicate mapping keys are an error naming both lines.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pardag.errors import Problem, ValidationError
from pardag.formats import json_lines, toml_lines, yaml_lines
from pardag.formats.syntax import (
    MAX_ALIAS_NODES,
    MAX_ALIASES,
    MAX_BYTES,
    MAX_DEPTH,
    Bad,
    Key,
    Parsed,
    Parser,
)
from pardag.regularfile import NotRegularFile, read_regular

__all__ = [
    "MAX_ALIASES",
    "MAX_ALIAS_NODES",
    "MAX_BYTES",
    "MAX_DEPTH",
    "Document",
    "Key",
    "parse_document",
    "read_document",
]

_EXTENSIONS = {".yml": "yaml", ".yaml": "yaml", ".json": "json", ".toml": "toml", ".lua": "lua"}


@dataclass
class Document:
    """A parsed file: ``data`` and, for each key path, the 1-based line it starts on."""

    path: str
    data: Any
    lines: dict[Key, int] = field(default_factory=dict)
    format: str = "yaml"
    """``yaml``, ``json`` or ``toml``: how the file was parsed."""
    text: str = ""
    """The file's text, kept as the snapshot a run store records (and resumes from)."""

    def where(self, *key: str | int) -> str:
        """``"path:line"`` of ``key`` (or of its nearest ancestor that has a line)."""
        for n in range(len(key), -1, -1):
            line = self.lines.get(tuple(key[:n]))
            if line is not None:
                return f"{self.path}:{line}"
        return self.path

    def problem(self, message: str, *key: str | int, step: str | None = None) -> Problem:
        """A ``Problem`` placed at ``key``."""
        return Problem(step, message, self.where(*key))


def _fail(path: str, message: str, line: int | None = None) -> ValidationError:
    where = f"{path}:{line}" if line is not None else path
    return ValidationError(path, [Problem(None, message, where)])


# -- reading ----------------------------------------------------------------------------------


def read_document(path: str | os.PathLike[str]) -> Document:
    """Read and parse ``path``; the format comes from its extension (YAML when unknown)."""
    p = Path(path)
    name = str(p)
    try:
        raw = read_regular(p, MAX_BYTES)  # no device or FIFO: /dev/zero or a pipe never ends
    except FileNotFoundError:
        raise _fail(name, "file not found; check the path") from None
    except (IsADirectoryError, NotRegularFile) as exc:
        what = "is a directory" if isinstance(exc, IsADirectoryError) else exc.strerror
        raise _fail(name, f"{what}; give the path of a workflow file") from None
    except PermissionError:
        raise _fail(name, "cannot be read: permission denied") from None
    except OSError as exc:
        raise _fail(name, f"cannot be read: {exc.strerror or exc}") from None
    return parse_document(_decode(raw, name), name, format_of(p))


def format_of(path: str | os.PathLike[str]) -> str:
    """``yaml``, ``json`` or ``toml``, from the file's extension (YAML when unknown)."""
    return _EXTENSIONS.get(Path(path).suffix.lower(), "yaml")


def _decode(raw: bytes, path: str) -> str:
    if len(raw) > MAX_BYTES:
        raise _fail(path, f"is larger than {MAX_BYTES // (1024 * 1024)} MiB; split it up")
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise _fail(path, "is UTF-16 text; save it as UTF-8", 1)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        byte = raw[exc.start : exc.start + 1].hex()
        raise _fail(
            path, f"is not UTF-8 text (byte 0x{byte} on this line); save it as UTF-8", line
        ) from None
    return text.removeprefix("\ufeff")


def parse_document(text: str, path: str, fmt: str) -> Document:
    """Parse ``text`` as ``fmt`` (``yaml``, ``json`` or ``toml``)."""
    parser = _PARSERS.get(fmt)
    if parser is None:
        raise _fail(path, f"format {fmt!r} is unknown; use one of yaml, json, toml")
    if len(text) > MAX_BYTES:
        raise _fail(path, f"is larger than {MAX_BYTES // (1024 * 1024)} MiB; split it up")
    if not text.strip():
        raise _fail(path, "is empty; write a workflow in it (see docs/formats.md)")
    try:
        data, lines, root_line = parser(text)
    except Bad as bad:
        raise _fail(path, bad.message, bad.line) from None
    if data is None:
        raise _fail(path, "holds no data (only comments?); write a workflow in it")
    if not isinstance(data, dict):
        raise _fail(
            path,
            f"the top level must be a mapping of keys to values, not {_kind_of(data)}",
            root_line,
        )
    return Document(path, data, lines, fmt, text)


def _kind_of(value: Any) -> str:
    names = {list: "a list", str: "a string", bool: "a boolean", int: "a number", float: "a number"}
    name = names.get(type(value), f"a {type(value).__name__}")
    return name if isinstance(value, list | str) else f"{name} ({value!r})"[:80]


def _keep_lua(text: str) -> Parsed:
    """A Lua file is a program: kept as text here, run by its reader (``formats/lua.py``)."""
    return {}, {}, 1


_PARSERS: dict[str, Parser] = {
    "yaml": yaml_lines.parse,
    "json": json_lines.parse,
    "toml": toml_lines.parse,
    "lua": _keep_lua,
}
