"""Where a run reads the time and arms its timers: the event loop's clock, or a virtual one.

The runner never calls ``time.time()``, ``time.monotonic()`` or ``loop.call_later`` itself; it
asks its ``Clock``. ``SystemClock`` is the real one. ``VirtualClock`` is for tests: time stands
still while the run has work to do and jumps to the next timer once it has nothing to do but
wait, so a test of a 30-second backoff or a 10-second timeout takes milliseconds, and what it
checks does not depend on how busy the machine is (as trio's ``MockClock(autojump_threshold)``).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable
from typing import Any, Protocol

__all__ = ["Clock", "SystemClock", "Timer", "VirtualClock"]


class Timer(Protocol):
    """A timer a clock armed; ``cancel`` keeps it from firing."""

    def cancel(self) -> None:
        """Do not fire (a no-op once fired)."""


class Clock(Protocol):
    """The time of a run: wall-clock stamps for records, monotonic time for intervals."""

    def time(self) -> float:
        """Seconds since the epoch, as ``time.time()``: when things happened."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back, as ``time.monotonic()``: intervals."""

    def call_later(self, delay: float, callback: Callable[..., None], *args: Any) -> Timer:
        """Call ``callback(*args)`` on the run's event loop in ``delay`` seconds."""

    def call_at(self, when: float, callback: Callable[..., None], *args: Any) -> Timer:
        """Call ``callback(*args)`` on the run's event loop at ``monotonic() == when``."""

    def watch(self, waiting: Callable[[], bool]) -> None:
        """The run says how to tell that it only waits for time: ``waiting()`` is True when
        no step works on a thread or a process and the store owes it nothing. A real clock
        has no use for it."""


class SystemClock:
    """The real clock: the system's time, and timers on the running event loop."""

    def __init__(self) -> None:
        self.time = time.time  # the bound builtins: the runner reads them per step
        self.monotonic = time.monotonic

    def call_later(self, delay: float, callback: Callable[..., None], *args: Any) -> Timer:
        return asyncio.get_running_loop().call_later(delay, callback, *args)

    def call_at(self, when: float, callback: Callable[..., None], *args: Any) -> Timer:
        # the loop's own clock is monotonic too, but need not share time.monotonic()'s zero
        loop = asyncio.get_running_loop()
        return loop.call_at(loop.time() + (when - time.monotonic()), callback, *args)

    def watch(self, waiting: Callable[[], bool]) -> None:
        pass


class _VirtualTimer:
    """One armed timer of a ``VirtualClock``."""

    __slots__ = ("args", "callback", "cancelled")

    def __init__(self, callback: Callable[..., None], args: tuple[Any, ...]) -> None:
        self.callback = callback
        self.args = args
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class VirtualClock:
    """A clock for tests: virtual time that jumps to the next timer when the run only waits.

    Time starts at ``start`` (``monotonic``) and ``wall + start`` (``time``). It stands still
    while the run works: while a step runs on a thread or a process, the run store has writes
    on the way, or the loop has had something to do in the last ``idle`` real seconds. Once
    the run only waits (for backoffs, timeouts, rate windows, or ``async`` steps awaiting
    something), it jumps to the earliest timer and fires it. So a step that works on a thread
    is never timed out under it: use ``async`` steps that never finish to test timeouts.
    ``jumped`` is the virtual time skipped so far.
    """

    def __init__(self, start: float = 0.0, *, wall: float = 1_800_000_000.0, idle: float = 0.002):
        self._now = start
        self._wall = wall
        self._idle = idle
        self._timers: list[tuple[float, int, _VirtualTimer]] = []
        self._order = itertools.count()
        self._armed: asyncio.TimerHandle | None = None
        self._waiting: Callable[[], bool] = lambda: True
        self.jumped = 0.0

    def time(self) -> float:
        return self._wall + self._now

    def monotonic(self) -> float:
        return self._now

    def watch(self, waiting: Callable[[], bool]) -> None:
        self._waiting = waiting

    def call_later(self, delay: float, callback: Callable[..., None], *args: Any) -> Timer:
        return self.call_at(self._now + max(delay, 0.0), callback, *args)

    def call_at(self, when: float, callback: Callable[..., None], *args: Any) -> Timer:
        timer = _VirtualTimer(callback, args)
        heapq.heappush(self._timers, (when, next(self._order), timer))
        self._arm()
        return timer

    def _arm(self) -> None:
        """Look again after ``idle`` real seconds, while any timer is armed."""
        if self._armed is None and self._timers:
            self._armed = asyncio.get_running_loop().call_later(self._idle, self._jump)

    def _jump(self) -> None:
        """When the run only waits, fire the earliest live timer (and any due with it),
        moving time forward to it; else look again later."""
        self._armed = None
        while self._timers and self._timers[0][2].cancelled:
            heapq.heappop(self._timers)
        if self._timers and self._waiting():
            when = self._timers[0][0]
            if when > self._now:
                self.jumped += when - self._now
                self._now = when
            while self._timers and self._timers[0][0] <= self._now:
                timer = heapq.heappop(self._timers)[2]
                if not timer.cancelled:
                    timer.callback(*timer.args)
        self._arm()
