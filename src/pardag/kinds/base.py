"""The shapes shared by all kinds: an ``Action``, how inputs bind to a call, a run's context."""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import inspect
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pardag.clock import Clock, SystemClock
from pardag.egress import EgressPolicy
from pardag.errors import MissingRuntime
from pardag.searchpath import from_project_folder
from pardag.store.base import Answer

__all__ = [
    "IDEMPOTENCY_ENV",
    "Action",
    "Binder",
    "RunContext",
    "idempotency_key",
    "import_runtime",
    "lazy_module",
    "no_inputs",
]

IDEMPOTENCY_ENV = "PARDAG_IDEMPOTENCY_KEY"
"""The environment variable holding a shell step's idempotency key."""


RUNTIMES = {
    "lupa": ("Lua steps and .lua workflow files need", "lua"),
    "quickjs": ("JavaScript steps need", "javascript"),
    "wasmtime": ("WebAssembly steps need", "wasm"),
}
"""The optional language runtimes: what needs each, and the extra of pardag that installs it."""


def import_runtime(name: str) -> Any:
    """Import module ``name``; a missing optional runtime is a ``MissingRuntime`` that says
    which extra to install (``pip install 'pardag[lua]'``), not a bare ImportError."""
    try:
        spec = None if name in sys.modules else importlib.util.find_spec(name)  # runs nothing
        if spec is not None and spec.origin is not None and from_project_folder(spec.origin):
            raise ModuleNotFoundError(name=name)  # a project's file, not the package
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name != name or name not in RUNTIMES:
            raise
        needs, extra = RUNTIMES[name]
        raise MissingRuntime(
            f"{needs} the {name!r} package, which is not installed here: "
            f"pip install 'pardag[{extra}]' (or 'pardag[languages]' for every language)"
        ) from None


class _LazyModule:
    """A module imported on first attribute access."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._module: Any = None

    def __getattr__(self, attr: str) -> Any:
        if self._module is None:
            self._module = import_runtime(self._name)
        return getattr(self._module, attr)


def lazy_module(name: str) -> Any:
    """``name``, imported when first used rather than when pardag is imported.

    The language runtimes (lupa, QuickJS, wasmtime) and httpx cost import time, and wasmtime
    installs signal handlers in every process that imports it; a run that uses none of them
    should pay for none of them.
    """
    return _LazyModule(name)


def idempotency_key(run_id: str, step_id: str) -> str:
    """The stable key of a step in a run, the same in every attempt and after a resume.

    Pass it to APIs that take an idempotency key, or use it as the key of rows you upsert, so
    that a step run twice (at-least-once, see docs/runs.md) does its work once.
    """
    return f"{run_id}:{step_id}"


T = TypeVar("T")

Binder = Callable[[Mapping[str, Any], Mapping[str, Any]], tuple[tuple[Any, ...], dict[str, Any]]]
"""Turns (inputs by dependency id, run params) into (args, kwargs) for the step's function."""

_EMPTY: tuple[Any, ...] = ()


def no_inputs(
    inputs: Mapping[str, Any], params: Mapping[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The binder of a function that takes nothing."""
    return _EMPTY, {}


@dataclass(slots=True)
class Action:
    """One attempt of a step: ``fn(*args, **kwargs)`` on ``executor``.

    ``handle`` maps the output of a condition step to the branch handle it chose; None for
    other kinds.
    """

    fn: Callable[..., Any]
    executor: str
    bind: Binder
    handle: Callable[[Any], str] | None = None


@dataclass
class RunContext:
    """What the steps of one run share: its params and run-wide state, built per run.

    Kinds that keep state across steps (variables, counters, a pooled HTTP client) keep it
    here, never in module globals, so that two runs never see each other's. ``state`` is
    guarded by ``lock``: steps on threads update it concurrently. ``params`` carries the run's
    trigger data when it has some (``pardag.triggerdata.TriggeredParams``), else doubles as it
    (what node-graph ``trigger`` nodes and ``trigger.x`` templates and expressions read).
    """

    run_id: str
    workflow: str
    params: Mapping[str, Any]
    state: dict[str, Any] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    clock: Clock = field(default_factory=SystemClock)
    """The run's clock: kinds that keep time (an approval's wait) read it, never ``time``."""
    answers: Mapping[str, Answer] = field(default_factory=dict)
    """Answers given to the run's approval steps, by step id (read from the run store)."""
    paused_at: dict[str, float] = field(default_factory=dict)
    """When each approval step first paused, by step id: its timeout counts from then."""
    egress: EgressPolicy = field(default_factory=EgressPolicy)
    """Where the run's HTTP steps may connect (``http.allow``/``http.deny``; open by default)."""
    _closers: list[Callable[[], Any]] = field(default_factory=list)

    def shared(self, key: str, factory: Callable[[], T]) -> T:
        """The run-wide value ``key``, made by ``factory`` on first use (thread-safe)."""
        with self.lock:
            if key not in self.state:
                self.state[key] = factory()
            value: T = self.state[key]
            return value

    def on_close(self, closer: Callable[[], Any]) -> None:
        """Call ``closer`` (plain or async) when the run ends, e.g. to close a client."""
        self._closers.append(closer)

    async def aclose(self) -> None:
        """Run the closers, newest first; one failing does not stop the others."""
        while self._closers:
            closer = self._closers.pop()
            with contextlib.suppress(Exception):
                result = closer()
                if inspect.isawaitable(result):
                    await result
