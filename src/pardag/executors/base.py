"""The one small interface every executor implements.

An executor runs a call somewhere (the event loop, a thread, a worker process, a Dask
cluster) and reports the result through an ``asyncio.Future``; a ``synchronous`` one, which
runs it right in the caller's thread, can also just return it (``call``). It never touches
run state: the runner alone decides what a result means. Executors are created per run and
closed at its end, so nothing outlives ``Workflow.run``.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import traceback
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, NamedTuple

__all__ = [
    "Executor",
    "Follow",
    "Label",
    "Next",
    "OnFollow",
    "deliverable",
    "describe_exit",
    "format_traceback",
    "set_remote_traceback",
]

_TRACEBACK_ATTR = "_pardag_traceback"


def describe_exit(code: int | None) -> str:
    """How a process ended, in words: ``exited with code 3``, ``was killed by SIGSEGV (exit
    code -11)``; a signal's name says more than its number."""
    if code is not None and code < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-code).name} (exit code {code})"
    return f"exited with code {code}"


def set_remote_traceback(exc: BaseException, text: str) -> BaseException:
    """Attach the traceback text of an exception that crossed a process boundary."""
    setattr(exc, _TRACEBACK_ATTR, text)
    return exc


def format_traceback(exc: BaseException) -> str:
    """The traceback of ``exc`` as text, including the remote part when it crossed processes."""
    remote = getattr(exc, _TRACEBACK_ATTR, None)
    if isinstance(remote, str):
        return remote
    return "".join(traceback.format_exception(exc))


Next = tuple[int, Callable[..., Any], tuple[Any, ...], dict[str, Any]]
"""A call to run next on the same worker: (tag, fn, args, kwargs)."""
Follow = Callable[[int, Any], Next | None]
"""On the worker: (tag, result) -> the next call to run there, or None."""
OnFollow = Callable[[asyncio.Future[Any], Any, int, asyncio.Future[Any], float], None]
"""On the loop: (finished call's future, its result, next tag, next call's future, start time)."""


class Label(NamedTuple):
    """A call as a cluster sees it (``labels``): its task key, the call in words for
    messages, its priority there (higher first), and the worker resources it needs.

    ``dependents``: how many dependents on the cluster take its output (its future is held
    for them); ``keep``: its output stays on the cluster (``keep_outputs_on_cluster``: the
    runner gets a ``KeptOnCluster``); ``announce``: a worker tells when it starts the call;
    ``isolate``: the worker runs it in a subprocess, killed when the call is cancelled."""

    key: str
    what: str
    priority: int
    resources: dict[str, int] | None = None
    dependents: int = 0
    keep: bool = False
    announce: bool = False
    isolate: bool = False


class Executor(ABC):
    """Runs calls and reports each through a future; see the module docstring.

    ``capacity`` is how many calls it can run at once (None: no limit of its own). The runner
    never submits more than that, so executors need no queue of their own.
    """

    name: ClassVar[str]
    notify: Callable[[Sequence[asyncio.Future[Any]]], None] | None = None
    """When an executor sets this hook's support (``reports_done``), the runner installs a
    callable here and the executor calls it on the loop with the futures it settled (one call
    per batch), sparing a done-callback (one more event-loop turn) per call."""
    reports_done: ClassVar[bool] = False
    chains: ClassVar[bool] = False
    """True when a worker that finished a call may run the next one itself (``threads``): the
    runner then sets ``follow`` (asked on the worker, with the call's tag and result) and
    ``on_follow`` (told on the loop afterwards), so a chain of short steps runs without a trip
    through the event loop per link."""
    follow: Follow | None = None
    on_follow: OnFollow | None = None
    labels: ClassVar[bool] = False
    """True when the executor shows each call to others by name and rank (``dask``: a task
    key and a priority): the runner then sets its ``label`` (tag -> what it needs)."""
    label: Callable[[int], Label] | None = None
    on_start: Callable[[int, float, str], None] | None = None
    """With ``labels``: told (tag, the worker's time, the worker) when a call whose label
    asks to ``announce`` it starts on a worker."""
    synchronous: ClassVar[bool] = False
    """True when the executor runs each call to its end in the caller's thread, at once
    (``inline``). Then ``call`` runs it without a future, and a caller on a hot path (the
    runner) uses ``call`` instead of ``submit``: a step of microseconds should not pay for a
    future and its callback. ``submit`` still works, returning a future already settled."""

    @property
    @abstractmethod
    def capacity(self) -> int | None:
        """Most calls this executor runs at once; None when it has no limit of its own."""

    @abstractmethod
    def submit(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        tag: int = -1,
    ) -> asyncio.Future[Any]:
        """Start ``fn(*args, **kwargs)``; must be called from inside the running event loop.

        ``tag`` identifies the call to hooks an executor offers (the runner passes the step).
        """

    def call(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Run ``fn(*args, **kwargs)`` here and now; return its result or raise its exception.

        The exception is the step's own, unwrapped, as from a direct call (so KeyboardInterrupt
        and SystemExit keep their meaning). Only a ``synchronous`` executor implements it: the
        others run calls elsewhere and can only report them through ``submit``'s future.
        """
        raise NotImplementedError(f"the {self.name} executor is not synchronous: use submit")

    @abstractmethod
    def stop(self, future: asyncio.Future[Any]) -> bool:
        """Stop the work behind ``future`` for real.

        Returns True when the work is stopped (the future then completes promptly, cancelled),
        False when it cannot be (a thread): the future still completes when the work ends.
        ``dask`` returns True for a call it releases: one queued never runs, one already
        running on a worker's thread runs on there, out of the run's sight.
        """

    @abstractmethod
    async def aclose(self) -> None:
        """Stop everything still running and release workers; idempotent."""


def deliverable(exc: BaseException) -> BaseException:
    """``StopIteration`` and interpreter-exit exceptions cannot travel in an asyncio future."""
    if isinstance(exc, Exception) and not isinstance(exc, StopIteration):
        return exc
    wrapped = RuntimeError(f"the step raised {type(exc).__name__}: {exc!r}")
    wrapped.__cause__ = exc
    return wrapped
