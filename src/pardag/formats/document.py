"""A workflow file parsed into plain data, with the line of each key, read safely.

``read_document(path)`` reads a YAML, JSON or TOML file (by its extension; anything else is
read as YAML) into plain data (dicts, lists, str, int, float, bool, None) and records the
1-based line of every mapping key and list item: ``lines[("steps", "fetch")] == 12``.
Everything wrong with the file raises ``ValidationError(path, [Problem(None, msg, "file:line")])``.

How each format is read, and why:

* **YAML** is built from the parser's event stream (``yaml.parse``), not from ``yaml.compose``
  nodes: one pass, no recursion (so no ``RecursionError`` on deep files), and the line of each
  key comes with its event. Only plain data tags are accepted (``!!python/...`` and any other
  tag are refused, naming the line), mapping keys are kept as the text written (``on:`` is the
  key ``"on"``, not ``True``), timestamps stay strings, merge keys (``<<: *defaults``) work, and
  more than one document in a file is refused.
* **JSON** is parsed by the standard ``json`` module (fast, exact error positions); a small
  tokenizer then walks the same text for the lines of keys and items, and for duplicate keys,
  which ``json`` would silently collapse. ``NaN`` and ``Infinity`` are refused (not JSON).
* **TOML** is parsed by ``tomllib``. Lines are found by scanning table headers and ``key =``
  lines (best effort: keys inside inline tables and array items fall back to the enclosing
  key's line). Dates and times become ISO strings, as they stay strings in YAML.

Limits, so that a hostile or broken file fails fast instead of eating the machine: the file
size (``MAX_BYTES``), the nesting depth (``MAX_DEPTH``), and YAML alias use (``MAX_ALIASES``
alias references, ``MAX_ALIAS_NODES`` values created by expanding them: a "billion laughs"
file is refused, not expanded). Duplicate mapping keys are an error naming both lines.
"""

from __future__ import annotations

import copy
import datetime
import json
import os
import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pardag.errors import Problem, ValidationError

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

Key = tuple[str | int, ...]

MAX_BYTES = 10 * 1024 * 1024
"""Largest workflow file read (10 MiB)."""
MAX_DEPTH = 100
"""Deepest nesting of mappings and lists."""
MAX_ALIASES = 1_000
"""Most YAML alias references (``*name``) in one file."""
MAX_ALIAS_NODES = 100_000
"""Most values YAML aliases may expand to in one file, counted over all of them."""

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


class _Bad(Exception):
    """One problem with the file at ``line`` (None: the file as a whole)."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


def _fail(path: str, message: str, line: int | None = None) -> ValidationError:
    where = f"{path}:{line}" if line is not None else path
    return ValidationError(path, [Problem(None, message, where)])


# -- reading ----------------------------------------------------------------------------------


def read_document(path: str | os.PathLike[str]) -> Document:
    """Read and parse ``path``; the format comes from its extension (YAML when unknown)."""
    p = Path(path)
    name = str(p)
    try:
        with p.open("rb") as f:
            raw = f.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise _fail(name, "file not found; check the path") from None
    except IsADirectoryError:
        raise _fail(name, "is a directory; give the path of a workflow file") from None
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
    parsers = {"yaml": _parse_yaml, "json": _parse_json, "toml": _parse_toml, "lua": _keep_lua}
    parser = parsers.get(fmt)
    if parser is None:
        raise _fail(path, f"format {fmt!r} is unknown; use one of yaml, json, toml")
    if len(text) > MAX_BYTES:
        raise _fail(path, f"is larger than {MAX_BYTES // (1024 * 1024)} MiB; split it up")
    if not text.strip():
        raise _fail(path, "is empty; write a workflow in it (see docs/formats.md)")
    try:
        data, lines, root_line = parser(text)
    except _Bad as bad:
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


def _keep_lua(text: str) -> tuple[Any, dict[Key, int], int | None]:
    """A Lua file is a program: kept as text here, run by its reader (``formats/lua.py``)."""
    return {}, {}, 1


# -- YAML -------------------------------------------------------------------------------------

_Loader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_STD = "tag:yaml.org,2002:"
_SCALAR_TAGS = {f"{_STD}{t}" for t in ("null", "bool", "int", "float", "str", "timestamp")}
_NULLS = frozenset({"", "~", "null", "Null", "NULL"})
_BOOLS = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_INT = re.compile(r"[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+")
_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?")
_SPECIAL_FLOATS = {
    **{
        f"{sign}.{inf}": float(f"{sign}inf")
        for sign in ("", "+", "-")
        for inf in ("inf", "Inf", "INF")
    },
    **{f".{nan}": float("nan") for nan in ("nan", "NaN", "NAN")},
}
_MERGE_KEY = "\x00<<"  # YAML text cannot hold NUL, so no written key collides with it


@dataclass
class _Frame:
    """A mapping or list being built from YAML events."""

    value: dict[str, Any] | list[Any]
    path: Key
    anchor: str | None
    key: str | None = None  # a mapping's key waiting for its value (_MERGE_KEY for "<<")
    key_lines: dict[str, int] = field(default_factory=dict)
    merges: list[dict[str, Any]] = field(default_factory=list)
    height: int = 1  # levels of nesting inside, itself included
    size: int = 1  # values inside, itself included, aliases expanded


@dataclass
class _Anchored:
    value: Any
    height: int
    size: int


class _YamlBuilder:
    """Turns YAML parser events into plain data and key lines, enforcing the limits."""

    def __init__(self) -> None:
        self.stack: list[_Frame] = []
        self.anchors: dict[str, _Anchored] = {}
        self.lines: dict[Key, int] = {}
        self.root: Any = None
        self.root_line: int | None = None
        self.documents = 0
        self.aliases = 0
        self.expanded = 0

    def feed(self, event: yaml.Event) -> None:
        line = event.start_mark.line + 1 if event.start_mark is not None else 0
        if isinstance(event, yaml.DocumentStartEvent):
            if self.documents:
                raise _Bad("holds more than one YAML document; keep one workflow per file", line)
        elif isinstance(event, yaml.DocumentEndEvent):
            self.documents += 1
        elif isinstance(event, yaml.ScalarEvent):
            self._scalar(event, line)
        elif isinstance(event, yaml.SequenceStartEvent | yaml.MappingStartEvent):
            self._start(event, line)
        elif isinstance(event, yaml.SequenceEndEvent | yaml.MappingEndEvent):
            self._end()
        elif isinstance(event, yaml.AliasEvent):
            self._alias(event, line)

    def _expects_key(self) -> bool:
        top = self.stack[-1] if self.stack else None
        return top is not None and isinstance(top.value, dict) and top.key is None

    def _scalar(self, event: yaml.ScalarEvent, line: int) -> None:
        tag, text = event.tag, event.value
        plain = tag is None and event.implicit[0]
        if self._expects_key():
            if tag not in (None, "!") and tag not in _SCALAR_TAGS:
                raise _Bad(_tag_message(tag), line)
            if event.anchor is not None:
                self.anchors[event.anchor] = _Anchored(text, 0, 1)
            self._key(_MERGE_KEY if plain and text == "<<" else text, line)
            return
        if tag is None or tag == "!":  # "!": the non-specific tag, a string
            value = _plain_scalar(text) if plain else text
        else:
            value = _tagged_scalar(tag, text, line)
        self._place(line)
        self._add(value, line, 0, 1, event.anchor)

    def _key(self, key: str, line: int) -> None:
        top = self.stack[-1]
        first = top.key_lines.get(key)
        if first is not None:
            raise _Bad(
                f"duplicate key {key.replace(_MERGE_KEY, '<<')!r} (lines {first} and {line}); "
                "a key may appear only once in a mapping: remove or rename one",
                line,
            )
        top.key_lines[key] = line
        top.key = key
        if key != _MERGE_KEY:
            self.lines[(*top.path, key)] = line

    def _place(self, line: int) -> None:
        """Record the line of a list item starting here."""
        top = self.stack[-1] if self.stack else None
        if top is not None and isinstance(top.value, list):
            self.lines[(*top.path, len(top.value))] = line

    def _child_path(self) -> Key:
        if not self.stack:
            return ()
        top = self.stack[-1]
        if isinstance(top.value, list):
            return (*top.path, len(top.value))
        assert top.key is not None
        return (*top.path, top.key)

    def _start(self, event: yaml.SequenceStartEvent | yaml.MappingStartEvent, line: int) -> None:
        is_map = isinstance(event, yaml.MappingStartEvent)
        expected = f"{_STD}map" if is_map else f"{_STD}seq"
        if event.tag not in (None, "!", expected):
            raise _Bad(_tag_message(event.tag), line)
        if self._expects_key():
            raise _Bad("a mapping key must be a plain value, not a list or mapping", line)
        if len(self.stack) >= MAX_DEPTH:
            raise _Bad(f"is nested more than {MAX_DEPTH} levels deep; flatten it", line)
        self._place(line)
        if not self.stack:
            self.root_line = line
        value: dict[str, Any] | list[Any] = {} if is_map else []
        self.stack.append(_Frame(value, self._child_path(), event.anchor))

    def _end(self) -> None:
        frame = self.stack.pop()
        value = frame.value
        if frame.merges:
            merged: dict[str, Any] = {}
            for source in frame.merges:
                for k, v in source.items():
                    merged.setdefault(k, v)
            assert isinstance(value, dict)
            merged.update(value)
            value = merged
        self._add(value, None, frame.height, frame.size, frame.anchor)

    def _alias(self, event: yaml.AliasEvent, line: int) -> None:
        name = event.anchor or ""
        if self._expects_key():
            raise _Bad(f"alias *{name} is used as a mapping key; write the key out", line)
        anchored = self.anchors.get(name)
        if anchored is None:
            open_ = any(f.anchor == name for f in self.stack)
            why = "refers to a mapping or list that contains it" if open_ else "is not defined"
            raise _Bad(f"alias *{name} {why}; define the anchor &{name} before using it", line)
        self.aliases += 1
        self.expanded += anchored.size
        if self.aliases > MAX_ALIASES or self.expanded > MAX_ALIAS_NODES:
            raise _Bad(
                f"uses aliases too much (more than {MAX_ALIASES:,} references or "
                f"{MAX_ALIAS_NODES:,} values expanded); is this an alias bomb? "
                "write the data out instead",
                line,
            )
        if len(self.stack) + anchored.height > MAX_DEPTH:
            raise _Bad(f"alias *{name} nests data more than {MAX_DEPTH} levels deep", line)
        self._place(line)
        self._add(copy.deepcopy(anchored.value), line, anchored.height, anchored.size, None)

    def _add(
        self, value: Any, line: int | None, height: int, size: int, anchor: str | None
    ) -> None:
        if anchor is not None:
            self.anchors[anchor] = _Anchored(value, height, size)
        if not self.stack:
            self.root = value
            if self.root_line is None:
                self.root_line = line
            return
        top = self.stack[-1]
        top.height = max(top.height, height + 1)
        top.size += size
        if isinstance(top.value, list):
            top.value.append(value)
        elif top.key == _MERGE_KEY:
            top.merges.extend(_merge_sources(value, line or top.key_lines[_MERGE_KEY]))
            top.key = None
        else:
            assert top.key is not None
            top.value[top.key] = value
            top.key = None


def _plain_scalar(text: str) -> Any:
    """An untagged plain scalar by the YAML 1.2 core schema: ``yes``/``on`` stay strings."""
    if text in _NULLS:
        return None
    if text in _BOOLS:
        return _BOOLS[text]
    if _INT.fullmatch(text):
        return _number(int, text)
    if _FLOAT.fullmatch(text):
        return _number(float, text)
    return _SPECIAL_FLOATS.get(text, text)


def _number(kind: type[int] | type[float], text: str) -> Any:
    try:
        return kind(text, 0) if kind is int and text[:2] in ("0o", "0x") else kind(text)
    except ValueError:  # more digits than Python converts
        return text


def _tagged_scalar(tag: str, text: str, line: int) -> Any:
    """A scalar with an explicit tag such as ``!!int``; only plain data tags are allowed."""
    if tag not in _SCALAR_TAGS:
        raise _Bad(_tag_message(tag), line)
    if tag in (f"{_STD}str", f"{_STD}timestamp"):
        return text  # timestamps stay strings, as in JSON and TOML
    value = _plain_scalar(text)
    wanted = {"null": type(None), "bool": bool, "int": int, "float": float}[tag[len(_STD) :]]
    if wanted is float and type(value) is int:
        return float(value)
    if type(value) is not wanted:
        raise _Bad(f"{text[:40]!r} is not a valid {tag.replace(_STD, '!!')}", line)
    return value


def _merge_sources(value: Any, line: int) -> list[dict[str, Any]]:
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list) and all(isinstance(v, dict) for v in value):
        return list(value)
    raise _Bad("a merge key '<<' needs a mapping or a list of mappings (e.g. <<: *defaults)", line)


def _tag_message(tag: str) -> str:
    shown = tag.replace(_STD, "!!")
    return (
        f"the tag {shown!r} is not allowed: workflow files hold plain data only "
        "(mappings, lists, strings, numbers, booleans, null); remove the tag"
    )


def _parse_yaml(text: str) -> tuple[Any, dict[Key, int], int | None]:
    builder = _YamlBuilder()
    try:
        for event in yaml.parse(text, Loader=_Loader):
            builder.feed(event)
    except yaml.MarkedYAMLError as exc:
        deep = _flow_too_deep(text)
        if deep is not None:  # a YAML library may refuse deep nesting first, in its own words
            raise _Bad(f"is nested more than {MAX_DEPTH} levels deep; flatten it", deep) from None
        raise _Bad(*_yaml_error(exc)) from None
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        raise _Bad(
            f"holds a character YAML does not allow ({exc.reason}, code {exc.character!r}); "
            "is it a binary file?",
            line,
        ) from None
    except yaml.YAMLError as exc:
        raise _Bad(f"malformed YAML: {exc}") from None
    return builder.root, builder.lines, builder.root_line


_FLOW_TOKEN = re.compile(r"""[\[{]|[\]}]|\n|"(?:[^"\\]|\\.)*"?|'(?:[^']|'')*'?|(?<!\S)#[^\n]*""")


def _flow_too_deep(text: str) -> int | None:
    """The line where ``[``/``{`` brackets first nest deeper than ``MAX_DEPTH``, if they do.

    Asked only once the YAML library has refused the file: libyaml (PyYAML 6.0.4 and later)
    stops at its own nesting limit while scanning ahead, before the builder sees the depth.
    Quoted strings and comments are skipped; brackets inside plain scalars count, which at
    worst names nesting for a file YAML refuses anyway.
    """
    depth, line = 0, 1
    for match in _FLOW_TOKEN.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return line
        elif token in "]}":
            depth = max(depth - 1, 0)
        else:
            line += token.count("\n")
    return None


def _yaml_error(exc: yaml.MarkedYAMLError) -> tuple[str, int | None]:
    mark = exc.problem_mark or exc.context_mark
    message = f"malformed YAML: {exc.problem or exc.context}"
    if exc.context and exc.problem and exc.context_mark is not None:
        message += f" ({exc.context} at line {exc.context_mark.line + 1})"
    if mark is not None:
        message += f", column {mark.column + 1}"
    if "\t" in str(exc.problem) or "tab" in str(exc.problem):
        message += "; YAML does not allow tabs for indentation: indent with spaces"
    return message, (mark.line + 1 if mark is not None else None)


# -- JSON -------------------------------------------------------------------------------------

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
                raise _Bad(f"is nested more than {MAX_DEPTH} levels deep; flatten it", line)
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


def _parse_json(text: str) -> tuple[Any, dict[Key, int], int | None]:
    scanner = _JsonLines()
    scanner.scan(text)
    try:
        data = json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise _Bad(f"malformed JSON: {exc.msg}, column {exc.colno}", exc.lineno) from None
    except RecursionError:
        raise _Bad(f"is nested more than {MAX_DEPTH} levels deep; flatten it") from None
    except _Constant as exc:
        message = f"{exc} is not valid JSON; write a number or a string"
        raise _Bad(message, scanner.odd_line) from None
    except ValueError as exc:  # an integer with more digits than Python converts
        message = f"malformed JSON: {str(exc).partition(';')[0]}"
        raise _Bad(message, scanner.odd_line) from None
    if scanner.duplicate is not None:
        key, first, second = scanner.duplicate
        raise _Bad(
            f"duplicate key {key!r} (lines {first} and {second}); "
            "a key may appear only once in an object: remove or rename one",
            second,
        )
    return data, scanner.lines, scanner.root_line


# -- TOML -------------------------------------------------------------------------------------

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


def _parse_toml(text: str) -> tuple[Any, dict[Key, int], int | None]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = _TOML_LINE.search(str(exc))
        line = int(found.group(1)) if found else len(text.splitlines()) or None
        raise _Bad(f"malformed TOML: {exc}", line) from None
    except RecursionError:
        raise _Bad(f"is nested more than {MAX_DEPTH} levels deep; flatten it") from None
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
            raise _Bad(f"is nested more than {MAX_DEPTH} levels deep; flatten it", line)
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
