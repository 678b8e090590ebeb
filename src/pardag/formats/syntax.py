"""What the parsers of each syntax (``yaml_lines``, ``json_lines``, ``toml_lines``) share.

A parser turns a file's text into ``(data, lines, root_line)``: plain data, the 1-based line
of each key path, and the line the top-level value starts on. It stops at the first problem by
raising ``Bad``, which ``pardag.formats.document`` turns into a ``ValidationError`` naming the
file. The limits live here so that every parser refuses the same hostile or broken files.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = [
    "MAX_ALIASES",
    "MAX_ALIAS_CHARS",
    "MAX_ALIAS_NODES",
    "MAX_BYTES",
    "MAX_DEPTH",
    "TOO_DEEP",
    "Bad",
    "Key",
    "Parsed",
    "Parser",
]

Key = tuple[str | int, ...]
"""Where a value is in a file: the keys and indexes leading to it."""
Parsed = tuple[Any, dict[Key, int], int | None]
"""What a parser returns: the data, the line of each key path, the line of the top level."""
Parser = Callable[[str], Parsed]

MAX_BYTES = 10 * 1024 * 1024
"""Largest workflow file read (10 MiB)."""
MAX_DEPTH = 100
"""Deepest nesting of mappings and lists."""
MAX_ALIASES = 1_000
"""Most YAML alias references (``*name``) in one file."""
MAX_ALIAS_NODES = 100_000
"""Most values YAML aliases may expand to in one file, counted over all of them."""
MAX_ALIAS_CHARS = MAX_BYTES
"""Most characters (of strings and keys) YAML aliases may repeat in one file, counted at each
use: the data read is at most about twice the largest file, whatever its aliases."""
TOO_DEEP = f"is nested more than {MAX_DEPTH} levels deep; flatten it"
"""The one message for nesting beyond ``MAX_DEPTH``, whichever syntax finds it."""


class Bad(Exception):
    """One problem with the file at ``line`` (None: the file as a whole)."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
