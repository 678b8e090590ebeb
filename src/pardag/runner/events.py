"""How a run tells its listeners what happens: one ``Event`` per state change, in order.

Events are built only when someone listens (``Announcer.listening``): a run nobody watches
pays nothing for them. A listener that raises is reported to the event loop's exception
handler and otherwise ignored, so watching a run can never break it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from pardag.clock import Clock
from pardag.events import Event, EventKind, Listener
from pardag.scheduler import Scheduler
from pardag.secrets import Masker
from pardag.states import StepState

__all__ = ["STATE_EVENTS", "Announcer"]

STATE_EVENTS = {
    StepState.READY: EventKind.STEP_READY,
    StepState.SUCCEEDED: EventKind.STEP_SUCCEEDED,
    StepState.FAILED: EventKind.STEP_FAILED,
    StepState.SKIPPED: EventKind.STEP_SKIPPED,
    StepState.CANCELLED: EventKind.STEP_CANCELLED,
}
"""The event announcing that a step reached a state the scheduler logs."""


class Announcer:
    """Builds the events of one run and hands each to every listener; an instance's events
    name its mapped step as ``data["parent"]``."""

    def __init__(
        self,
        listeners: Sequence[Listener],
        run_id: str,
        ids: Sequence[str],
        attempts: Sequence[int],
        clock: Clock,
        masker: Masker | None = None,
    ) -> None:
        self.listeners = list(listeners)
        self._masker = masker if masker else None  # a run's secrets never reach a listener
        self.listening = bool(self.listeners)
        self._run_id, self._ids, self._attempts, self._clock = run_id, ids, attempts, clock
        self._declared = len(ids)  # steps numbered from here on are mapped steps' instances

    def emit(self, kind: EventKind, i: int | None, **data: Any) -> None:
        """Announce ``kind`` for step ``i`` (None: the run itself), at its current attempt."""
        if not self.listening:
            return
        step = None if i is None else self._ids[i]
        attempt = 0 if i is None else self._attempts[i]
        if self._masker is not None and data:
            data = self._masker.value(data)
        if i is not None and i >= self._declared and step is not None:  # ``process[3]``
            data = {**data, "parent": step[: step.rindex("[")]}
        event = Event(kind, self._run_id, self._clock.monotonic(), step, attempt, data)
        for listener in self.listeners:
            try:
                listener.on_event(event)
            except Exception as exc:  # a listener must never break a run
                asyncio.get_running_loop().call_exception_handler(
                    {"message": "pardag listener failed", "exception": exc}
                )

    def state(self, i: int, state: StepState, reason: str | None) -> None:
        """Announce that step ``i`` became ``state`` (ready or final), with its reason."""
        self.emit(STATE_EVENTS[state], i, **({"reason": reason} if reason else {}))

    def waits(self, sched: Scheduler) -> None:
        """Announce the steps the scheduler parked on a full pool since last time (and
        forget them), each with what it waits for."""
        for i in sched.waits:
            self.emit(EventKind.STEP_WAITING, i, waiting_on=sched.waiting_on.get(i))
        sched.waits.clear()
