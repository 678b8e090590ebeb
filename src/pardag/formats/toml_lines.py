"""TOML text to plain data and the line of each key: ``tomllib`` parses, a scan finds lines.

Lines are found by scanning table headers and ``key =`` lines (best effort: keys inside inline
tables and array items fall back to the enclosing key's line). Dates and times become ISO
strings, as they stay strings in YAML.
"""

from __future__ import annotations

import datetime
import json
import re
import tomllib
from collections.abc import Iterator
from typing import Any

from pardag.formats.syntax import MAX_DEPTH, TOO_DEEP, Bad, Key, Parsed

__all__ = ["parse"]

_TOML_PART = r"""(?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|'[^']*')"""
_TOML_DOTTED = rf"{_TOML_PART}(?:\s*\.\s*{_TOML_PART})*"
_TOML_HEADER = re.compile(rf"^\s*(\[\[?)\s*({_TOML_DOTTED})\s*\]\]?")
_TOML_KEY = re.compile(rf"^\s*({_TOML_DOTTED})\s*=")
_TOML_LINE = re.compile(r"at line (\d+)")


def _toml_keys(dotted: str) -> Key:
    parts: list[str | int] = []
    for part in re.findall(_TOML_PART, dotted):
        if part.startswith('"'):
            try:
                part = json.loads(part)
            except ValueError:
                part = part[1:-1]
        elif part.startswith("'"):
            part = part[1:-1]
        parts.append(part)
    return tuple(parts)


def _toml_lines(text: str) -> dict[Key, int]:
    """Lines of table headers and ``key =`` lines (best effort; see the module docstring)."""
    lines: dict[Key, int] = {}
    table: Key = ()
    arrays: dict[Key, int] = {}
    in_string = ""
    for number, row in enumerate(text.splitlines(), start=1):
        if in_string:
            if row.count(in_string) % 2 == 1:
                in_string = ""
            continue
        header = _TOML_HEADER.match(row)
        key = None if header else _TOML_KEY.match(row)
        if header:
            table = _toml_keys(header.group(2))
            if header.group(1) == "[[":
                arrays[table] = arrays.get(table, -1) + 1
                _set_line(lines, table, number)
                table = (*table, arrays[table])
            _set_line(lines, table, number)
        elif key:
            _set_line(lines, (*table, *_toml_keys(key.group(1))), number)
        for quote in ('"""', "'''"):
            if row.count(quote) % 2 == 1:
                in_string = quote
    return lines


def _set_line(lines: dict[Key, int], key: Key, line: int) -> None:
    for n in range(1, len(key)):
        lines.setdefault(key[:n], line)
    lines.setdefault(key, line)


def parse(text: str) -> Parsed:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = _TOML_LINE.search(str(exc))
        line = int(found.group(1)) if found else len(text.splitlines()) or None
        raise Bad(f"malformed TOML: {exc}", line) from None
    except RecursionError:
        raise Bad(TOO_DEEP) from None
    lines = _toml_lines(text)
    return _plain_toml(data, lines), lines, 1


def _plain_toml(data: Any, lines: dict[Key, int]) -> Any:
    """``data`` with dates and times as ISO strings; refuses nesting beyond ``MAX_DEPTH``."""
    todo: list[tuple[Any, Key]] = [(data, ())]
    while todo:
        value, path = todo.pop()
        if len(path) >= MAX_DEPTH:
            line = next(
                (lines[path[:n]] for n in range(len(path), 0, -1) if path[:n] in lines), None
            )
            raise Bad(TOO_DEEP, line)
        for key, item in _items(value):
            if isinstance(item, datetime.date | datetime.time):
                value[key] = item.isoformat()
            elif isinstance(item, dict | list):
                todo.append((item, (*path, key)))
    return data


def _items(value: Any) -> Iterator[tuple[Any, Any]]:
    if isinstance(value, dict):
        return iter(list(value.items()))
    if isinstance(value, list):
        return iter(list(enumerate(value)))
    return iter(())
