"""Which processes a step attempt started, as the run store records them, and stopping them.

A shell step's process and a worker process each lead a process group (their pid is its
id). When one starts, ``started(pid)`` tells whoever watches the attempt (``watching``: the
run's records, which journal it with the attempt as ``pid:boot.start``, the same identity
``pardag.owner`` gives a run's owner). ``resume`` then calls ``stop`` on the processes the
run's latest attempts recorded: a process still alive (the same pid *and* start: a pid
reused by an unrelated process is left alone) has its group killed and is waited for, so
that a resumed step never runs beside its earlier attempt. Where a start cannot be read (not
Linux, or the process ended already) nothing is recorded: a pid alone is too weak a name to
kill a process group by.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import time
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from typing import Any

from pardag.owner import started_at

__all__ = ["NOTE_ATTR", "Note", "identity", "started", "stop", "watching"]

Note = Callable[[str], None]
"""Told the identity (``pid:boot.start``) of each process a step attempt starts."""

NOTE_ATTR = "pardag_process_note"
"""An attribute a call sent to a worker process may carry: the ``Note`` its worker is told to
(the call's context does not travel to where the executor picks its worker)."""

_note: ContextVar[Note | None] = ContextVar("pardag_process_note", default=None)

_STOP_WAIT = 5.0
"""Seconds ``stop`` waits for a killed group's leader to be gone."""


def identity(pid: int) -> str | None:
    """``pid:boot.start`` of process ``pid``; None when its start cannot be read: it ended
    already, or this is not Linux (a pid alone is too weak to kill a group by, later)."""
    start = started_at(pid)
    return f"{pid}:{start}" if start else None


def started(pid: int, call: Any = None) -> None:
    """Process ``pid`` (a group leader) started for the current step attempt, or for ``call``."""
    note = getattr(call, NOTE_ATTR, None) or _note.get()
    ident = identity(pid) if note is not None else None
    if note is not None and ident is not None:
        note(ident)


def watching(fn: Callable[..., Any], note: Note, is_async: bool) -> Callable[..., Any]:
    """``fn``, with ``note`` told of every process it starts (set where its call starts, so
    steps running at once are each told their own)."""
    if is_async:

        @functools.wraps(fn)
        async def watched_async(*args: Any, **kwargs: Any) -> Any:
            token = _note.set(note)
            try:
                return await fn(*args, **kwargs)
            finally:
                _note.reset(token)

        return watched_async

    @functools.wraps(fn)
    def watched(*args: Any, **kwargs: Any) -> Any:
        token = _note.set(note)
        try:
            return fn(*args, **kwargs)
        finally:
            _note.reset(token)

    return watched


def _alive(ident: str) -> int | None:
    """The pid of a recorded process that still runs on this machine, else None."""
    pid_text, _, start = ident.partition(":")
    if not (pid_text.isdigit() and start):
        return None
    pid = int(pid_text)  # the same pid and the same start: the very process recorded
    return pid if started_at(pid) == start else None


def stop(identities: Iterable[str], wait: float = _STOP_WAIT) -> list[int]:
    """Kill the process group of each recorded process still alive and wait for them to end;
    returns the pids still alive after ``wait`` seconds (none, unless they cannot be killed)."""
    pids = [pid for ident in identities if (pid := _alive(ident)) is not None]
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + wait
    left = [pid for pid in pids if _running(pid)]
    while left and time.monotonic() < deadline:
        time.sleep(0.02)
        left = [pid for pid in left if _running(pid)]
    return left


def _running(pid: int) -> bool:
    """Whether ``pid`` still runs: a zombie (dead, not yet reaped by its parent) does not."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except FileNotFoundError:
        return False
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return stat[stat.rfind(")") + 2 : stat.rfind(")") + 3] not in ("Z", "X")
