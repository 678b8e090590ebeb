"""JSON text to plain data and the line of each key: ``json`` parses, a tokenizer finds lines.

The standard ``json`` module parses (fast, exact error positions); a small tokenizer walks
the same text for the lines of keys and items, and for duplicate keys, which ``json`` would
silently collapse. ``NaN`` and ``Infinity`` are refused (not JSON).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from pardag.formats.syntax import MAX_DEPTH, TOO_DEEP, Bad, Key, Parsed

__all__ = ["parse"]

_JSON_TOKEN = re.compile(r'"(?:[^"\\\n]|\\.)*"|[{}\[\],:\n]|[^\s{}\[\],:"]+')


@dataclass
class _JsonFrame:
    path: Key
    is_object: bool
    expect_key: bool = True
    key: str | None = None
    keys: dict[str, int] = field(default_factory=dict)
    count: int = 0  # items of a list started so far


class _JsonLines:
    """Lines of keys and items in JSON text, found by a tokenizer that tolerates bad JSON.

    It runs before ``json.loads`` so that deep nesting is refused with its line, and records
    duplicate keys (which ``json`` would collapse silently) for after the syntax check.
    """

    def __init__(self) -> None:
        self.lines: dict[Key, int] = {}
        self.duplicate: tuple[str, int, int] | None = None
        self.root_line: int | None = None
        self.stack: list[_JsonFrame] = []
        self.odd_line: int | None = None  # the first NaN/Infinity or overlong number

    def scan(self, text: str) -> None:
        line = 1
        for match in _JSON_TOKEN.finditer(text):
            token = match.group()
            if token == "\n":
                line += 1
            elif token in "]}":
                if self.stack:
                    self.stack.pop()
            elif token == ",":
                self._comma()
            elif token == ":":
                if self.stack:
                    self.stack[-1].expect_key = False
            else:
                self._value(token, line)

    def _comma(self) -> None:
        if not self.stack:
            return
        top = self.stack[-1]
        if top.is_object:
            top.expect_key = True
        else:
            top.count += 1

    def _value(self, token: str, line: int) -> None:
        top = self.stack[-1] if self.stack else None
        if top is not None and top.is_object and top.expect_key:
            self._key(top, token, line)
            return
        path: Key = ()
        if top is None:
            self.root_line = self.root_line or line
        elif top.is_object:
            path = (*top.path, top.key or "")
        else:
            path = (*top.path, top.count)
            self.lines.setdefault(path, line)
        odd = token.lstrip("-") in ("NaN", "Infinity") or (len(token) > 4000 and token[0] != '"')
        if odd and self.odd_line is None:
            self.odd_line = line
        if token in "{[":
            if len(self.stack) >= MAX_DEPTH:
                raise Bad(TOO_DEEP, line)
            self.stack.append(_JsonFrame(path, token == "{"))

    def _key(self, top: _JsonFrame, token: str, line: int) -> None:
        try:
            key = json.loads(token)
        except ValueError:
            return  # json.loads on the whole text reports it
        if not isinstance(key, str):
            return
        first = top.keys.get(key)
        if first is not None and self.duplicate is None:
            self.duplicate = (key, first, line)
        top.keys[key] = line
        top.key = key
        top.expect_key = False
        self.lines[(*top.path, key)] = line


class _Constant(Exception):
    """``NaN`` or ``Infinity`` in JSON text."""


def _refuse_constant(name: str) -> Any:
    raise _Constant(name)


def parse(text: str) -> Parsed:
    scanner = _JsonLines()
    scanner.scan(text)
    try:
        data = json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise Bad(f"malformed JSON: {exc.msg}, column {exc.colno}", exc.lineno) from None
    except RecursionError:
        raise Bad(TOO_DEEP) from None
    except _Constant as exc:
        message = f"{exc} is not valid JSON; write a number or a string"
        raise Bad(message, scanner.odd_line) from None
    except ValueError as exc:  # an integer with more digits than Python converts
        message = f"malformed JSON: {str(exc).partition(';')[0]}"
        raise Bad(message, scanner.odd_line) from None
    if scanner.duplicate is not None:
        key, first, second = scanner.duplicate
        raise Bad(
            f"duplicate key {key!r} (lines {first} and {second}); "
            "a key may appear only once in an object: remove or rename one",
            second,
        )
    return data, scanner.lines, scanner.root_line
