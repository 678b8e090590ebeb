"""Read-only views of the values templates and expressions read: params, outputs, env.

A template or expression reads the run's params, its dependencies' outputs and the
environment: objects the runner, other steps and later runs share. Jinja2's immutable sandbox
refuses the known mutating methods (``dict.update``, ``list.append``...); these views are the
second wall, so that even a method or filter the sandbox lets through finds nothing to change.

:func:`freeze` wraps a mapping or list in a view that reads through to it, wrapping what it
returns in turn: creating one costs the same for ten keys as for a million, so a step's
templates get fresh views per render at no real cost. :func:`thaw` takes a rendered value
back to plain data (the view's own object, or a new list or dict holding such objects), so
what a template yields to a step is what the upstream step returned, never a view.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, overload

__all__ = [
    "Environment",
    "ReadOnlyList",
    "ReadOnlyMapping",
    "environment_snapshot",
    "freeze",
    "json_default",
    "thaw",
    "unwrap",
]


class ReadOnlyMapping(Mapping[Any, Any]):
    """A mapping that reads through to ``data`` and has no way to change it."""

    __slots__ = ("_data",)
    __hash__ = None  # type: ignore[assignment]  # like the dict it shows

    def __init__(self, data: Mapping[Any, Any]) -> None:
        self._data = data

    def __getitem__(self, key: Any) -> Any:
        return freeze(self._data[key])

    def __iter__(self) -> Iterator[Any]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __eq__(self, other: object) -> bool:
        return bool(self._data == unwrap(other))

    def __repr__(self) -> str:
        return repr(self._data)


class ReadOnlyList(Sequence[Any]):
    """A list (or tuple) that reads through to ``data`` and has no way to change it."""

    __slots__ = ("_data",)
    __hash__ = None  # type: ignore[assignment]

    def __init__(self, data: Sequence[Any]) -> None:
        self._data = data

    @overload
    def __getitem__(self, index: int) -> Any: ...
    @overload
    def __getitem__(self, index: slice) -> ReadOnlyList: ...
    def __getitem__(self, index: int | slice) -> Any:
        return freeze(self._data[index])

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, value: object) -> bool:
        return unwrap(value) in self._data

    def __eq__(self, other: object) -> bool:
        return bool(self._data == unwrap(other))

    def __lt__(self, other: object) -> bool:
        return bool(self._data < unwrap(other))

    def __le__(self, other: object) -> bool:
        return bool(self._data <= unwrap(other))

    def __gt__(self, other: object) -> bool:
        return bool(self._data > unwrap(other))

    def __ge__(self, other: object) -> bool:
        return bool(self._data >= unwrap(other))

    def __repr__(self) -> str:
        return repr(self._data)


def freeze(value: Any) -> Any:
    """``value`` as a read-only view when it is a mapping, list or tuple; else ``value``."""
    make = _PLAIN.get(type(value))
    if make is not None:  # the common types first, without the slower ABC checks
        return make(value)
    if isinstance(value, ReadOnlyMapping | ReadOnlyList | str):
        return value
    if isinstance(value, Mapping):
        return ReadOnlyMapping(value)
    if isinstance(value, list | tuple):
        return ReadOnlyList(value)
    return value


def _same(value: Any) -> Any:
    return value


_PLAIN: dict[type, Any] = {
    dict: ReadOnlyMapping,
    list: ReadOnlyList,
    tuple: ReadOnlyList,
    str: _same,
    int: _same,
    float: _same,
    bool: _same,
    type(None): _same,
    ReadOnlyMapping: _same,
    ReadOnlyList: _same,
}


def thaw(value: Any, _done: dict[int, Any] | None = None) -> Any:
    """``value`` without views: each view becomes the object it shows, and lists, tuples and
    dicts a template built are rebuilt around their thawed items, each once: an item the
    value refers to many times stays one object (``[[a] * 10] * 10`` is not copied 100 times)."""
    if isinstance(value, ReadOnlyMapping | ReadOnlyList):
        return value._data
    kind = type(value)
    if kind is not dict and kind is not list and kind is not tuple:
        return value
    done = {} if _done is None else _done
    copy = done.get(id(value))  # by id: every item lives as long as ``value``
    if copy is None:
        if kind is dict:
            copy = {key: thaw(item, done) for key, item in value.items()}
        else:
            copy = kind(thaw(item, done) for item in value)
        done[id(value)] = copy
    return copy


def unwrap(value: Any) -> Any:
    """The object a view shows (items inside are compared through their own ``==``)."""
    return value._data if isinstance(value, ReadOnlyMapping | ReadOnlyList) else value


class Environment(ReadOnlyMapping):
    """``env`` in templates: a missing name's error does not list the others (the names of
    a machine's variables say much about it, and errors reach logs and API clients)."""

    __slots__ = ()


def environment_snapshot() -> ReadOnlyMapping:
    """A read-only copy of ``os.environ`` as it is now: what templates read as ``env``.

    A copy, not ``os.environ``, so that nothing a template does reaches the runner's
    environment (nor the processes it starts).
    """
    return Environment(dict(os.environ))


def json_default(value: Any) -> Any:
    """What ``json.dumps`` writes for a value it has no rule for: a view's data, else
    ``str(value)`` (templates render values as JSON; views must read as their data)."""
    plain = unwrap(value)
    return str(value) if plain is value else plain
