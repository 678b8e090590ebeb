"""What one render of a template or expression may spend: operations, characters and time.

Templates and expressions come from workflow files and read data from anywhere, and they
render on the run's event loop (or a step's thread). Jinja2 stops nothing by itself: a
``{% for %}`` inside a ``{% for %}`` runs for minutes, ``s ~ s`` doubles until memory runs
out, and while a render holds the loop no timer fires, so no step or run timeout could stop
it. So a render stops itself. The sandbox (:mod:`pardag.sandbox`) charges the current
:class:`Budget`: one operation per loop iteration, call, filter, test and guarded operator (a
call, filter or test given data costs one more per ``CHARGE_UNIT`` items of it), and every
string it builds by its length. :class:`RenderLimit` stops the render once it

* did more than ``MAX_OPERATIONS`` operations, or built more than ``MAX_BUILT`` characters;
* ran past its deadline: the earliest of the step attempt's timeout and the run's timeout
  (the runner gives them, as a :data:`Limit`, to :func:`until` around a step's call and its
  ``when`` check; :func:`deadline` sets one for a block), and ``MAX_SECONDS`` after the
  render began, timeout or not.

Values are weighed by the text they become (:func:`weigh`): a list that refers to another
ten times, four levels deep, is forty items but 10^10 characters written out, and ``str()``
or ``tojson`` would build them all in one C call. The sandbox refuses a value it builds over
``MAX_BUILT`` such characters, and text over its output limit (:func:`weighed`).

The clock is read once every ``CHECK_EVERY`` operations, so a render overshoots its deadline
by at most that many operations (milliseconds, unless one of them is a long C-level one such
as comparing two huge lists).
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Iterable, Mapping
from contextvars import ContextVar
from typing import Any, NamedTuple

from jinja2.utils import Namespace

from pardag.readonly import ReadOnlyList, ReadOnlyMapping

__all__ = [
    "BUILT",
    "CHARGE_UNIT",
    "CHECK_EVERY",
    "MAX_BUILT",
    "MAX_OPERATIONS",
    "MAX_SECONDS",
    "WRITTEN",
    "Budget",
    "Deadline",
    "Limit",
    "RenderLimit",
    "build",
    "deadline",
    "metered",
    "tick",
    "too_large",
    "until",
    "weigh",
    "weighed",
]

MAX_OPERATIONS = 1_000_000
"""Operations one render may do (about 0.2 s of loop iterations, a few seconds of macro calls)."""
MAX_BUILT = 100_000_000
"""Characters (and list items) one render may build in all, kept or not."""
MAX_SECONDS = 5.0
"""Seconds one render may take when no earlier step or run timeout applies."""
CHARGE_UNIT = 1024
"""A call, filter or test costs one operation more per this many items of data it is given."""
CHECK_EVERY = 100
"""Operations between two looks at the clock."""


class RenderLimit(Exception):
    """A render spent its budget; the message says which limit and how to stay within it."""


class Deadline(NamedTuple):
    """When renders must stop (``time.monotonic()``) and why, e.g. "the step's timeout (1s)"."""

    at: float
    why: str


Limit = tuple[float, str]
"""(seconds from now, why): e.g. ``(1.0, "the step's timeout (1s)")``."""

_deadline: ContextVar[Deadline | None] = ContextVar("pardag_render_deadline", default=None)
_budget: ContextVar[Budget | None] = ContextVar("pardag_render_budget", default=None)

_ADVICE = "loop over less data, or compute the value in a step"


class Budget:
    """What the current render has spent, and when it must stop."""

    __slots__ = ("built", "ends", "next_check", "ops", "views", "why")

    def __init__(self, now: float, limit: Deadline | None) -> None:
        self.ops = self.built = 0
        self.views: dict[int, tuple[Any, int]] = {}
        """The weights of the data behind read-only views (params, outputs), by id, each with
        its object (kept, so that the id stays its own): that data is weighed once a render."""
        self.next_check = CHECK_EVERY
        self.ends, self.why = now + MAX_SECONDS, f"its limit of {MAX_SECONDS:g}s per render"
        if limit is not None and limit.at < self.ends:
            self.ends, self.why = limit.at, limit.why

    def tick(self, count: int = 1) -> None:
        """Charge ``count`` operations; raise :class:`RenderLimit` when over a limit."""
        self.ops += count
        if self.ops >= self.next_check:
            self.check()

    def check(self) -> None:
        """Look at the operation count and the clock (every ``CHECK_EVERY`` operations)."""
        self.next_check = self.ops + CHECK_EVERY
        if self.ops > MAX_OPERATIONS:
            raise RenderLimit(
                f"stopped after {MAX_OPERATIONS:,} operations (loop iterations, calls, "
                f"filters); a template or expression must do less work: {_ADVICE}"
            )
        if time.monotonic() > self.ends:
            raise RenderLimit(f"stopped: {self.why} was up while it rendered; {_ADVICE}")

    def build(self, length: int) -> None:
        """Charge ``length`` characters built; raise :class:`RenderLimit` when over."""
        self.built += length
        if self.built > MAX_BUILT:
            raise RenderLimit(
                f"stopped after building {MAX_BUILT:,} characters; a template or expression "
                f"must build less text: {_ADVICE}"
            )


class metered:
    """The current render's budget: a new one, or the one already open (a ``render`` of a
    mapping renders each string on one budget). A class, not a generator: it is entered on
    every render."""

    __slots__ = ("_token",)

    def __enter__(self) -> Budget:
        current = _budget.get()
        if current is not None:
            self._token = None
            return current
        budget = Budget(time.monotonic(), _deadline.get())
        self._token = _budget.set(budget)
        return budget

    def __exit__(self, *exc: object) -> None:
        if self._token is not None:
            _budget.reset(self._token)


def tick(count: int = 1) -> None:
    """Charge the current render ``count`` operations (nothing outside a render)."""
    budget = _budget.get()
    if budget is not None:
        budget.tick(count)


def build(length: int) -> None:
    """Charge the current render ``length`` characters built (nothing outside a render)."""
    budget = _budget.get()
    if budget is not None:
        budget.build(length)


class _Within:
    """Renders in this block stop at ``stop``."""

    __slots__ = ("_stop", "_token")

    def __init__(self, stop: Deadline | None) -> None:
        self._stop = stop

    def __enter__(self) -> None:
        self._token = _deadline.set(self._stop) if self._stop is not None else None

    def __exit__(self, *exc: object) -> None:
        if self._token is not None:
            _deadline.reset(self._token)


def deadline(limit: Limit | None) -> _Within:
    """Renders in this block stop ``limit`` seconds from now (None: no deadline)."""
    stop = None if limit is None else Deadline(time.monotonic() + limit[0], limit[1])
    return _Within(stop)


def until(fn: Callable[..., Any], limit: Limit, is_async: bool) -> Callable[..., Any]:
    """``fn``, its renders stopping ``limit`` seconds from now: the deadline is set where the
    call runs (in the coroutine when ``is_async``, else on the thread that calls it)."""
    stop = Deadline(time.monotonic() + limit[0], limit[1])

    async def run_async(*args: Any, **kwargs: Any) -> Any:
        with _Within(stop):
            result = fn(*args, **kwargs)
            return await result if inspect.isawaitable(result) else result

    def run(*args: Any, **kwargs: Any) -> Any:
        with _Within(stop):
            return fn(*args, **kwargs)

    return run_async if is_async else run


_DICT_VIEWS: tuple[type, ...] = (type({}.keys()), type({}.values()), type({}.items()))
_SEQUENCES = (list, tuple, set, frozenset)
_SCALARS = frozenset({str, int, float, bool, type(None)})
_CONTAINER_TYPES = (*_SEQUENCES, Mapping, *_DICT_VIEWS)


BUILT = "a value a template or expression builds"
WRITTEN = "a value a template or expression turns into text"


def weighed(value: Any, cap: int, what: str = BUILT) -> Any:
    """``value``, unless it weighs more than ``cap`` (:func:`weigh`): then a
    :class:`RenderLimit` saying that ``what`` (:data:`BUILT`, :data:`WRITTEN`) is too large."""
    if type(value) in _SCALARS or weigh(value, cap) <= cap:
        return value
    raise too_large(cap, what)


def too_large(cap: int, what: str = BUILT) -> RenderLimit:
    """The refusal of a value over ``cap`` characters written out."""
    return RenderLimit(
        f"the value is too large: {what} may be at most {cap:,} characters written out "
        f"(an item it refers to n times counts n times); build less, or compute the value "
        f"in a step"
    )


def weigh(value: Any, cap: int) -> int:
    """How many characters ``value`` at least becomes when written out (``str``, JSON), an
    item that appears ``n`` times counted ``n`` times, so ``[[a] * 10] * 10`` weighs 100 ``a``;
    past ``cap`` the count stops early (the result is then only known to be over ``cap``).

    Shared items are weighed once (by id: every object is alive while its container is), so
    a value built of ten-fold references costs its distinct items, not what it expands to.
    The items visited are charged to the render, one operation per ``CHARGE_UNIT``.
    """
    if isinstance(value, str | bytes | bytearray):
        return len(value)
    if type(value) is list or type(value) is tuple:
        flat = _flat(value)
        if flat is not None:
            return flat
    if _owner(value) is None:
        return 1
    current = _budget.get()
    return _Weigher(cap, {} if current is None else current.views).total(value)


def _flat(items: list[Any] | tuple[Any, ...]) -> int | None:
    """The weight of a list or tuple of strings and numbers (most are), or None when it holds
    a container: one quick pass, no bookkeeping."""
    weight = 2 + len(items)
    for item in items:
        kind = type(item)
        if kind is str:
            weight += len(item)
        elif kind in _SCALARS:
            weight += 1
        else:
            return None
    if len(items) >= CHARGE_UNIT:
        tick(len(items) // CHARGE_UNIT)
    return weight


_PLAIN = frozenset({list, tuple, dict, set, frozenset})


def _owner(value: Any) -> Any:
    """The container whose items ``value`` writes out, or None for a single value: a view's
    data, a namespace's dict; always an object that lives as long as ``value`` does."""
    kind = type(value)
    if kind in _PLAIN:
        return value
    if kind in _SCALARS:
        return None
    if kind is ReadOnlyList or kind is ReadOnlyMapping:
        return _owner(value._data)
    if isinstance(value, _CONTAINER_TYPES):
        return value
    if isinstance(value, Namespace):
        return value._Namespace__attrs
    return None


def _items(owner: Any) -> Iterable[Any]:
    """What ``owner`` writes out: its items, a mapping's keys and values."""
    if isinstance(owner, _DICT_VIEWS):
        owner = owner.mapping  # type: ignore[attr-defined]
    if type(owner) is dict or isinstance(owner, Mapping):
        return [part for pair in owner.items() for part in pair]
    items: Iterable[Any] = owner
    return items


class _Weigher:
    """One :func:`weigh`: the weights of the containers seen so far, by id."""

    __slots__ = ("cap", "seen", "views", "visited")

    def __init__(self, cap: int, views: dict[int, tuple[Any, int]]) -> None:
        self.cap, self.visited, self.views = cap, 0, views
        self.seen: dict[int, int] = {}

    def known(self, item: Any) -> Any:
        """The owner of ``item`` still to weigh, or None: a view's data weighed earlier in this
        render counts its known weight."""
        owner = _owner(item)
        if owner is None or id(owner) in self.seen:
            return None
        if type(item) is ReadOnlyList or type(item) is ReadOnlyMapping:
            known = self.views.get(id(owner), (None, -1))[1]
            if known >= 0:
                self.seen[id(owner)] = known
                return None
            self.views[id(owner)] = (owner, -1)  # to remember once weighed
        return owner

    def total(self, root: Any) -> int:
        """``root``'s weight: depth first, a container after its items (no recursion, so a
        deeply nested value weighs without exhausting the stack)."""
        seen = self.seen
        first = self.known(root)
        stack: list[tuple[Any, Any]] = [] if first is None else [(first, None)]
        while stack:
            owner, items = stack.pop()
            if items is None:
                if id(owner) in seen:
                    continue
                seen[id(owner)] = 0  # in progress: a cycle adds nothing
                items = _items(owner)
                inner = [o for o in map(self.known, items) if o is not None]
                if inner:  # weigh them first
                    stack.append((owner, items))
                    stack.extend((o, None) for o in inner)
                    continue
            weight = seen[id(owner)] = self.sum(items)
            if weight > self.cap:
                return weight
            if id(owner) in self.views:
                self.views[id(owner)] = (owner, weight)
        return seen[id(_owner(root))]

    def sum(self, items: Iterable[Any]) -> int:
        """2 for the brackets, 1 a separator per item, and the items' weights."""
        seen = self.seen
        weight = count = 2
        for item in items:
            kind = type(item)
            if kind is str:
                weight += 1 + len(item)
            elif kind in _SCALARS:
                weight += 2
            else:
                inner = _owner(item)
                size = len(item) if isinstance(item, str | bytes | bytearray) else 1
                weight += 1 + (size if inner is None else seen[id(inner)])
            count += 1
        self.visited += count
        if self.visited > CHARGE_UNIT:
            tick(self.visited // CHARGE_UNIT)
            self.visited %= CHARGE_UNIT
        return weight
