"""``RunHandle``: cancel a run from another thread than the one whose event loop drives it.

A worker runs each claimed run on a thread of its own, each on its own event loop
(``pardag.worker``); its lease thread learns that someone asked to cancel one
(``Store.cancel_requests``). The handle is how it reaches that run's ``Runner``: the runner's
entry attaches it once built (``run_sync``'s ``handle``), and ``cancel`` hands
``Runner.cancel`` to the run's loop, as a first Ctrl-C does. A cancel asked before the
runner exists is kept and applied as it attaches.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pardag.runner.core import Runner

__all__ = ["RunHandle"]


class RunHandle:
    """A way in to one run's runner from any thread: ``cancel(by)``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runner: Runner | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._asked: str | None = None

    def attach(self, runner: Runner, loop: asyncio.AbstractEventLoop) -> None:
        """The run's runner is built, on ``loop``; apply a cancel asked before."""
        with self._lock:
            self._runner, self._loop, asked = runner, loop, self._asked
        if asked is not None:  # once the run has started (the caller awaits it next)
            loop.call_soon(runner.cancel, asked)

    def detach(self) -> None:
        """The run is over: nothing more reaches its loop."""
        with self._lock:
            self._runner = self._loop = None

    def cancel(self, by: str) -> bool:
        """Cancel the run (``cancelled by {by}``) on its loop; False if it was asked before."""
        with self._lock:
            if self._asked is not None:
                return False
            self._asked = by
            runner, loop = self._runner, self._loop
        if runner is not None and loop is not None:
            with contextlib.suppress(RuntimeError):  # its loop closed meanwhile: it is over
                loop.call_soon_threadsafe(runner.cancel, by)
        return True
