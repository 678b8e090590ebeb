"""Every time a run must be woken by the clock: step timeouts, backoffs, approval waits, rate
windows and the run's own limit. Each alarm arms a timer on the run's ``Clock`` that delivers
a message (or calls back) on the loop; nothing here decides what the alarm means.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from pardag.budget import Limit, until
from pardag.clock import Clock, Timer
from pardag.runner.state import Message, RateWake, Requeue, Stop, Unpause
from pardag.states import ExecutorName

__all__ = ["Alarms"]


class Alarms:
    """The timers of one run; ``rate_armed`` is when the next rate window wakes it, if set."""

    def __init__(
        self,
        clock: Clock,
        post: Callable[[Message], None],
        timeouts: list[float | None] | None = None,
    ) -> None:
        """``timeouts``: each step's ``timeout``, by index (None: no step has one)."""
        self._clock, self._post, self._timeouts = clock, post, timeouts
        self.rate_armed: float | None = None
        self._run_ends: tuple[float, float] | None = None  # (monotonic end, limit)

    def timeout(
        self,
        seconds: float,
        on_timeout: Callable[[int, asyncio.Future[Any]], None],
        i: int,
        fut: asyncio.Future[Any],
    ) -> Timer:
        """Call ``on_timeout(i, fut)`` when step ``i``'s attempt has run ``seconds``."""
        return self._clock.call_later(seconds, on_timeout, i, fut)

    @staticmethod
    def cancel(timer: Timer | None) -> None:
        """Disarm ``timer`` (a step's timeout whose attempt ended), if there is one."""
        if timer is not None:
            timer.cancel()

    def backoff(self, i: int, delay: float) -> None:
        """Requeue retrying step ``i`` once its backoff of ``delay`` seconds is over."""
        self._clock.call_later(delay, self._post, Requeue(i))

    def answer_wait(self, i: int, wait: float) -> None:
        """Look at paused step ``i`` again when its wait for an answer is over."""
        self._clock.call_later(max(wait, 0.0), self._post, Unpause(i))

    def rate_window(self, at: float) -> None:
        """Wake the run when a rate-limited pool earns its next token (the earliest asked)."""
        if self.rate_armed is None or at < self.rate_armed:
            self.rate_armed = at
            self._clock.call_at(at, self._post, RateWake())

    def rate_woke(self) -> None:
        """The rate window's alarm went off."""
        self.rate_armed = None

    def run_limit(self, limit: float | None, stop: Callable[[Stop], None]) -> Timer | None:
        """Stop the run, timed out, once it has run ``limit`` seconds (None: no limit)."""
        if limit is None:
            return None
        self._run_ends = (self._clock.monotonic() + limit, limit)
        return self._clock.call_later(limit, stop, Stop.timed_out(limit))

    def bounded(
        self, fn: Callable[..., Any], i: int, executor: str = ExecutorName.INLINE
    ) -> Callable[..., Any]:
        """``fn`` (step ``i``'s call or ``when`` check), its templates stopping themselves at
        the attempt's deadline: they render on the run's loop, where no alarm fires until
        they return (``pardag.budget``). ``fn`` itself without a step or run timeout, or on
        the processes or dask executor (a timeout kills the worker or cancels the task)."""
        limit = self.render_limit(None if self._timeouts is None else self._timeouts[i])
        if limit is None or executor in (ExecutorName.PROCESSES, ExecutorName.DASK):
            return fn
        return until(fn, limit, executor == ExecutorName.ASYNC)

    def render_limit(self, timeout: float | None) -> Limit | None:
        """How long a step attempt starting now may render (``pardag.budget``): until its
        ``timeout`` or the run's, whichever comes first (None: neither is set)."""
        ends = self._run_ends
        if ends is None:
            return None if timeout is None else (timeout, f"the step's timeout ({timeout:g}s)")
        left = ends[0] - self._clock.monotonic()
        if timeout is not None and timeout <= left:
            return (timeout, f"the step's timeout ({timeout:g}s)")
        return (left, f"the run's timeout ({ends[1]:g}s)")
