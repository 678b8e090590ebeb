"""A step's log: what a step attempt writes while it runs, captured for the run store.

A shell step's stdout and stderr, a Python step's ``print()`` and ``logging`` records: each
goes into the ``StepLog`` of the attempt that wrote it, which hands it on in pieces (to the
run's journal) as it grows and when the attempt ends. ``pardag logs RUN STEP`` reads it back.

How a write finds its step: a ``ContextVar`` holds the current attempt's log. It is set where
the step's call starts, on the thread or task that runs it (``captured``), so steps running at
once on threads or tasks each get only their own lines, and work they start on new tasks
follows them. ``sys.stdout``, ``sys.stderr`` and a handler on the root logger are installed
once (``install``) and route each write by that variable; with no step current they pass
through untouched. Nothing is swapped per call.

Each attempt keeps at most ``LOG_LIMIT`` bytes; what comes after is dropped and the log ends
with a line saying how much. A step on the processes executor is captured in its worker
process (``InWorker``) and its log comes back with its result (``unwrap``).
"""

from __future__ import annotations

import asyncio
import codecs
import inspect
import logging
import sys
import threading
import time
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from typing import Any, NamedTuple, TextIO

from pardag.secrets import Masker

__all__ = [
    "FLUSH_EVERY",
    "LOG_LIMIT",
    "BytesInto",
    "InWorker",
    "Later",
    "Logged",
    "StepLog",
    "captured",
    "current",
    "cut_note",
    "install",
    "unwrap",
]

LOG_LIMIT = 1024 * 1024
"""Bytes (UTF-8) of one step attempt's log that are kept; the rest is dropped, and said."""
FLUSH_BYTES = 64 * 1024
"""A log hands its pieces on once this much waits, so a long step's log is read as it grows."""
FLUSH_EVERY = 0.5
"""... or once this many seconds passed since it last did, or since a write left something
waiting (``later``): ``pardag logs --follow`` sees a line within about this long."""

Piece = tuple[str, str]
"""(stream, text): ``stdout``, ``stderr`` or ``log`` (logging records, pardag's notes)."""
Sink = Callable[[int, str, str], None]
"""Receives each piece of a log, numbered from 1: (seq, stream, text)."""
Later = Callable[[Callable[[], None]], None]
"""Calls its argument about ``FLUSH_EVERY`` seconds from now, from any thread."""

_current: ContextVar[StepLog | None] = ContextVar("pardag_step_log", default=None)


def current() -> StepLog | None:
    """The log of the step attempt running here (this thread or task), or None."""
    return _current.get()


def cut_note(limit: int, dropped: int) -> str:
    """The line that ends a log cut at ``limit`` bytes."""
    size = f"{limit >> 20} MiB" if limit % (1 << 20) == 0 else f"{limit:,} bytes"
    return f"[pardag: ... log cut at {size}; {dropped:,} bytes dropped]\n"


class StepLog:
    """One step attempt's log: pieces by stream, at most ``limit`` bytes, handed to ``sink``
    (None: kept until taken with ``pieces``, as in a worker process).

    Thread-safe: a step's own threads may write at once. After ``close`` writes are ignored
    (a thread that outlived its step's timeout must not add to a finished attempt).
    """

    def __init__(
        self,
        sink: Sink | None,
        limit: int = LOG_LIMIT,
        later: Later | None = None,
        mask: Masker | None = None,
    ) -> None:
        self._sink, self.limit, self._later = sink, limit, later
        self._mask = mask if mask else None
        self._held: dict[str, str] = {}  # a stream's tail that may be a secret's beginning
        self._due = False  # a flush is arranged with ``later``
        self._lock = threading.Lock()
        self._pending: list[list[str]] = []  # [stream, text] pieces not yet handed on
        self._waiting = 0
        self._last = time.monotonic()
        self.size = 0
        """Bytes kept so far."""
        self.dropped = 0
        """Bytes dropped past ``limit``."""
        self._seq = 0
        self._closed = False

    def write(self, stream: str, text: str) -> None:
        """Add ``text`` to ``stream``, as much of it as the limit leaves room for."""
        if not text:
            return
        data = text.encode("utf-8", "replace")
        with self._lock:
            if self._closed:
                return
            room = self.limit - self.size
            if len(data) > room:
                self.dropped += len(data) - max(room, 0)
                data = data[: max(room, 0)]
                text = data.decode("utf-8", "ignore")
                if not text:
                    return
            self.size += len(data)
            self._add(stream, text, len(data))

    def absorb(self, pieces: Sequence[Piece], dropped: int) -> None:
        """Add the pieces of a log captured elsewhere (a worker process), limit applied there."""
        with self._lock:
            if self._closed:
                return
            for stream, text in pieces:
                size = len(text.encode("utf-8", "replace"))
                self.size += size
                self._add(stream, text, size)
            self.dropped += dropped

    def close(self) -> None:
        """Hand on what waits, ending with the cut line if anything was dropped; idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self.dropped:
                self._pending.append(["log", cut_note(self.limit, self.dropped)])
            self._flush(final=True)

    def pieces(self) -> list[Piece]:
        """What waits to be handed on, taken (for a worker process's log, which has no sink)."""
        with self._lock:
            taken = [(stream, text) for stream, text in self._pending]
            self._pending, self._waiting = [], 0
            return taken

    def _add(self, stream: str, text: str, size: int) -> None:
        if self._pending and self._pending[-1][0] == stream:
            self._pending[-1][1] += text
        else:
            self._pending.append([stream, text])
        self._waiting += size
        if self._sink is None:
            return
        if self._waiting >= FLUSH_BYTES or time.monotonic() - self._last >= FLUSH_EVERY:
            self._flush()
        elif self._later is not None and not self._due:  # the last line before a quiet spell
            self._due = True
            self._later(self._flush_due)

    def _flush_due(self) -> None:
        """What waits since the write that arranged this, handed on (``--follow`` sees it)."""
        with self._lock:
            self._due = False
            if not self._closed:
                self._flush()

    def _flush(self, final: bool = False) -> None:
        if self._sink is None:
            return
        pending = self._pending if self._mask is None else self._masked(final)
        for stream, text in pending:
            self._seq += 1
            self._sink(self._seq, stream, text)
        self._pending, self._waiting, self._last = [], 0, time.monotonic()

    def _masked(self, final: bool) -> list[list[str]]:
        """The pending pieces with every secret as ``***``. Unless ``final``, the end of each
        stream that may be the start of a secret waits for the next piece, so that a secret
        written in two pieces is masked whole."""
        assert self._mask is not None
        last = {stream: n for n, (stream, _) in enumerate(self._pending)}
        out: list[list[str]] = []
        for n, (stream, text) in enumerate(self._pending):
            text = self._held.pop(stream, "") + text
            if not final and last[stream] == n:
                cut = self._mask.safe_end(text)
                text, self._held[stream] = text[:cut], text[cut:]
            if text:
                out.append([stream, self._mask.text(text)])
        if final:
            out += [[stream, self._mask.text(text)] for stream, text in self._held.items() if text]
            self._held.clear()
        return out


class BytesInto:
    """A process's output stream into the current step's log (if any), decoded as UTF-8
    across chunk boundaries (a character split between two reads is not mangled)."""

    def __init__(self, stream: str) -> None:
        self._log, self._stream = _current.get(), stream
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def add(self, chunk: bytes) -> None:
        if self._log is not None:
            self._log.write(self._stream, self._decoder.decode(chunk))

    def end(self) -> None:
        if self._log is not None:
            self._log.write(self._stream, self._decoder.decode(b"", final=True))


# -- routing writes ---------------------------------------------------------------------------


class _Stream:
    """``sys.stdout`` or ``sys.stderr``: a write goes to the current step's log, or through."""

    def __init__(self, name: str, original: TextIO) -> None:
        self._name, self._original = name, original

    def write(self, text: str) -> int:
        log = _current.get()
        if log is None:
            return self._original.write(text)
        log.write(self._name, text)
        return len(text)

    def flush(self) -> None:
        if _current.get() is None:
            self._original.flush()

    def __getattr__(self, attr: str) -> Any:  # encoding, isatty, fileno, ... of the original
        return getattr(self._original, attr)


class _Handler(logging.Handler):
    """On the root logger: a record emitted while a step runs goes into its log."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        log = _current.get()
        if log is not None:
            log.write("log", self.format(record) + "\n")
        elif (
            (last := logging.lastResort) is not None
            and record.levelno >= last.level
            and self._alone(record)
        ):
            last.handle(record)  # as Python would, were this handler not there

    def _alone(self, record: logging.LogRecord) -> bool:
        """True when no other handler sees ``record``: Python would then print it itself."""
        logger: logging.Logger | None = logging.getLogger(record.name)
        while logger is not None:
            if any(h is not self for h in logger.handlers):
                return False
            logger = logger.parent if logger.propagate else None
        return True


_HANDLER = _Handler()


def install() -> None:
    """Route ``sys.stdout``, ``sys.stderr`` and logging by the current step; idempotent (a
    stream someone replaced since, such as a test's capture, is wrapped again)."""
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is not None and not isinstance(stream, _Stream):
            setattr(sys, name, _Stream(name, stream))
    root = logging.getLogger()
    if _HANDLER not in root.handlers:
        root.addHandler(_HANDLER)


def captured(fn: Callable[..., Any], log: StepLog, is_async: bool) -> Callable[..., Any]:
    """``fn`` writing into ``log``: the variable is set where the call runs (a coroutine
    function when ``is_async``, for the async executor), and reset after it."""
    if is_async:

        async def run_async(*args: Any, **kwargs: Any) -> Any:
            token = _current.set(log)
            try:
                result = fn(*args, **kwargs)
                return await result if inspect.isawaitable(result) else result
            finally:
                _current.reset(token)

        return run_async

    def run(*args: Any, **kwargs: Any) -> Any:
        token = _current.set(log)
        try:
            return fn(*args, **kwargs)
        finally:
            _current.reset(token)

    return run


# -- worker processes -------------------------------------------------------------------------

_LOG_ATTR = "_pardag_log"


class Logged(NamedTuple):
    """A worker's result with the log its call wrote."""

    value: Any
    pieces: list[Piece]
    dropped: int


class InWorker:
    """``fn`` to run in a worker process, captured there; pickles as (fn, limit), while
    ``log`` (the attempt's log in the runner's process) stays behind."""

    def __init__(self, fn: Callable[..., Any], log: StepLog) -> None:
        self.fn, self.log, self.limit = fn, log, log.limit

    def __reduce__(self) -> tuple[Any, ...]:
        return (_in_worker, (self.fn, self.limit))

    def __call__(self, *args: Any, **kwargs: Any) -> Logged:
        install()
        log = StepLog(None, self.limit)
        token = _current.set(log)
        try:
            value = self.fn(*args, **kwargs)
        except BaseException as exc:
            setattr(exc, _LOG_ATTR, (log.pieces(), log.dropped))
            raise
        finally:
            _current.reset(token)
        return Logged(value, log.pieces(), log.dropped)


def _in_worker(fn: Callable[..., Any], limit: int) -> InWorker:
    return InWorker(fn, StepLog(None, limit))


def unwrap(inner: asyncio.Future[Any], log: StepLog) -> asyncio.Future[Any]:
    """A future settling like ``inner`` (an ``InWorker`` call's) once its log is in ``log``;
    cancelling it cancels ``inner``, which stops the worker."""
    outer: asyncio.Future[Any] = inner.get_loop().create_future()

    def settle(done: asyncio.Future[Any]) -> None:
        if outer.done():
            return
        if done.cancelled():
            outer.cancel()
            return
        exc = done.exception()
        if exc is not None:
            log.absorb(*getattr(exc, _LOG_ATTR, ((), 0)))
            outer.set_exception(exc)
            return
        result = done.result()
        log.absorb(result.pieces, result.dropped)
        outer.set_result(result.value)

    inner.add_done_callback(settle)
    outer.add_done_callback(lambda o: inner.cancel() if o.cancelled() else None)
    return outer
