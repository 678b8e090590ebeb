"""A workflow file parsed into plain data, with the line of each key where the format tells.

(Placeholder implementation: parses YAML, JSON and TOML without line numbers or limits; the
full version records lines and enforces size, nesting and alias limits.)
"""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pardag.errors import Problem, ValidationError

__all__ = ["Document", "Key", "parse_document", "read_document"]

Key = tuple[str | int, ...]


@dataclass
class Document:
    """A parsed file: ``data`` and, for each key path, the 1-based line it starts on."""

    path: str
    data: Any
    lines: dict[Key, int] = field(default_factory=dict)

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


def read_document(path: str | os.PathLike[str]) -> Document:
    """Read and parse ``path``; the format comes from its extension."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidationError(
            str(p), [Problem(None, f"cannot read the file: {exc}", str(p))]
        ) from None
    return parse_document(text, str(p), _format_of(p))


def _format_of(p: Path) -> str:
    ext = p.suffix.lower()
    return {".yml": "yaml", ".yaml": "yaml", ".json": "json", ".toml": "toml"}.get(ext, "yaml")


def parse_document(text: str, path: str, fmt: str) -> Document:
    """Parse ``text`` as ``fmt`` (``yaml``, ``json`` or ``toml``)."""
    try:
        if fmt == "json":
            data = json.loads(text)
        elif fmt == "toml":
            data = tomllib.loads(text)
        else:
            data = yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise ValidationError(path, [Problem(None, f"malformed {fmt}: {exc}", path)]) from None
    return Document(path, data)
