"""YAML text to plain data and the line of each key, built from the parser's event stream.

The data is built from ``yaml.parse`` events, not from ``yaml.compose`` nodes: one pass, no
recursion (so no ``RecursionError`` on deep files), and the line of each key comes with its
event. Only plain data tags are accepted (``!!python/...`` and any other tag are refused,
naming the line), mapping keys are kept as the text written (``on:`` is the key ``"on"``, not
``True``), timestamps stay strings, merge keys (``<<: *defaults``) work, and more than one
document in a file is refused. Alias use is limited (``MAX_ALIASES`` references,
``MAX_ALIAS_NODES`` values and ``MAX_ALIAS_CHARS`` characters of strings and keys created by
expanding them): a "billion laughs" file, or a few megabytes of text repeated by a thousand
aliases, is refused, not expanded into gigabytes later (a run stores and shows what it reads).
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from pardag.formats.syntax import (
    MAX_ALIAS_CHARS,
    MAX_ALIAS_NODES,
    MAX_ALIASES,
    MAX_DEPTH,
    TOO_DEEP,
    Bad,
    Key,
    Parsed,
)

__all__ = ["parse"]

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
    chars: int = 0  # characters of its strings and keys, aliases expanded


@dataclass
class _Anchored:
    value: Any
    height: int
    size: int
    chars: int


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
        self.expanded_chars = 0

    def feed(self, event: yaml.Event) -> None:
        line = event.start_mark.line + 1 if event.start_mark is not None else 0
        if isinstance(event, yaml.DocumentStartEvent):
            if self.documents:
                raise Bad("holds more than one YAML document; keep one workflow per file", line)
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
                raise Bad(_tag_message(tag), line)
            if event.anchor is not None:
                self.anchors[event.anchor] = _Anchored(text, 0, 1, len(text))
            self.stack[-1].chars += len(text)
            self._key(_MERGE_KEY if plain and text == "<<" else text, line)
            return
        if tag is None or tag == "!":  # "!": the non-specific tag, a string
            value = _plain_scalar(text) if plain else text
        else:
            value = _tagged_scalar(tag, text, line)
        self._place(line)
        self._add(value, line, 0, 1, event.anchor, len(text))

    def _key(self, key: str, line: int) -> None:
        top = self.stack[-1]
        first = top.key_lines.get(key)
        if first is not None:
            raise Bad(
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
            raise Bad(_tag_message(event.tag), line)
        if self._expects_key():
            raise Bad("a mapping key must be a plain value, not a list or mapping", line)
        if len(self.stack) >= MAX_DEPTH:
            raise Bad(TOO_DEEP, line)
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
        self._add(value, None, frame.height, frame.size, frame.anchor, frame.chars)

    def _alias(self, event: yaml.AliasEvent, line: int) -> None:
        name = event.anchor or ""
        if self._expects_key():
            raise Bad(f"alias *{name} is used as a mapping key; write the key out", line)
        anchored = self.anchors.get(name)
        if anchored is None:
            open_ = any(f.anchor == name for f in self.stack)
            why = "refers to a mapping or list that contains it" if open_ else "is not defined"
            raise Bad(f"alias *{name} {why}; define the anchor &{name} before using it", line)
        self.aliases += 1
        self.expanded += anchored.size
        self.expanded_chars += anchored.chars
        if self.aliases > MAX_ALIASES or self.expanded > MAX_ALIAS_NODES:
            raise Bad(
                f"uses aliases too much (more than {MAX_ALIASES:,} references or "
                f"{MAX_ALIAS_NODES:,} values expanded); is this an alias bomb? "
                "write the data out instead",
                line,
            )
        if self.expanded_chars > MAX_ALIAS_CHARS:
            raise Bad(
                f"aliases repeat more than {MAX_ALIAS_CHARS // (1024 * 1024)} MiB of text "
                f"(strings and keys, counted at each use; *{name} here passes it); is this an "
                "alias bomb? write the data out, or anchor less text",
                line,
            )
        if len(self.stack) + anchored.height > MAX_DEPTH:
            raise Bad(f"alias *{name} nests data more than {MAX_DEPTH} levels deep", line)
        self._place(line)
        value = copy.deepcopy(anchored.value)
        self._add(value, line, anchored.height, anchored.size, None, anchored.chars)

    def _add(
        self,
        value: Any,
        line: int | None,
        height: int,
        size: int,
        anchor: str | None,
        chars: int = 0,
    ) -> None:
        if anchor is not None:
            self.anchors[anchor] = _Anchored(value, height, size, chars)
        if not self.stack:
            self.root = value
            if self.root_line is None:
                self.root_line = line
            return
        top = self.stack[-1]
        top.height = max(top.height, height + 1)
        top.size += size
        top.chars += chars
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
        raise Bad(_tag_message(tag), line)
    if tag in (f"{_STD}str", f"{_STD}timestamp"):
        return text  # timestamps stay strings, as in JSON and TOML
    value = _plain_scalar(text)
    wanted = {"null": type(None), "bool": bool, "int": int, "float": float}[tag[len(_STD) :]]
    if wanted is float and type(value) is int:
        return float(value)
    if type(value) is not wanted:
        raise Bad(f"{text[:40]!r} is not a valid {tag.replace(_STD, '!!')}", line)
    return value


def _merge_sources(value: Any, line: int) -> list[dict[str, Any]]:
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list) and all(isinstance(v, dict) for v in value):
        return list(value)
    raise Bad("a merge key '<<' needs a mapping or a list of mappings (e.g. <<: *defaults)", line)


def _tag_message(tag: str) -> str:
    shown = tag.replace(_STD, "!!")
    return (
        f"the tag {shown!r} is not allowed: workflow files hold plain data only "
        "(mappings, lists, strings, numbers, booleans, null); remove the tag"
    )


def parse(text: str) -> Parsed:
    builder = _YamlBuilder()
    try:
        for event in yaml.parse(text, Loader=_Loader):
            builder.feed(event)
    except yaml.MarkedYAMLError as exc:
        deep = _flow_too_deep(text)
        if deep is not None:  # a YAML library may refuse deep nesting first, in its own words
            raise Bad(TOO_DEEP, deep) from None
        raise Bad(*_yaml_error(exc)) from None
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        raise Bad(
            f"holds a character YAML does not allow ({exc.reason}, code {exc.character!r}); "
            "is it a binary file?",
            line,
        ) from None
    except yaml.YAMLError as exc:
        raise Bad(f"malformed YAML: {exc}") from None
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
