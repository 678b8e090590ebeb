"""What happens during a run, as events, and the one protocol that listens to them.

The CLI's progress display, the run store, the JSON-lines log and the server's live stream are
all listeners. The runner builds an event only when a listener is registered, so a run that
nobody watches pays nothing for events.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

__all__ = ["Event", "EventKind", "Listener", "Recorder"]


class EventKind(StrEnum):
    """Every state change a run reports."""

    RUN_STARTED = "run_started"
    STEP_READY = "step_ready"
    STEP_WAITING = "step_waiting"  # ready, but waiting for a slot or a pool: see ``data``
    STEP_STARTED = "step_started"
    STEP_RETRYING = "step_retrying"
    STEP_SUCCEEDED = "step_succeeded"
    STEP_FAILED = "step_failed"
    STEP_SKIPPED = "step_skipped"
    STEP_CANCELLED = "step_cancelled"
    STEP_PAUSED = "step_paused"
    STEP_RESUMED = "step_resumed"
    RUN_FINISHED = "run_finished"


@dataclass(frozen=True, slots=True)
class Event:
    """One state change. ``time`` is ``time.monotonic()``; ``step`` is None for run events.

    ``data`` carries what the kind needs: ``reason`` for skips and failures, ``delay`` for
    retries, ``waiting_on`` for waits, ``status`` for the run's end.
    """

    kind: EventKind
    run: str
    time: float
    step: str | None = None
    attempt: int = 0
    data: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Listener(Protocol):
    """Receives every event of a run, in order, on the run's event loop thread.

    It must return quickly: a slow listener slows the run. Errors it raises are logged and
    ignored, so watching a run can never break it.
    """

    def on_event(self, event: Event) -> None:
        """Handle one event."""


class Recorder:
    """A listener that keeps every event in a list; handy in tests and notebooks."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def on_event(self, event: Event) -> None:
        self.events.append(event)

    def of(self, kind: EventKind) -> list[Event]:
        """The recorded events of one kind, in order."""
        return [e for e in self.events if e.kind is kind]
