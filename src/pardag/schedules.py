"""Cron triggers fired by the workers: which slot is due, and firing it once among all workers.

A schedule's *slots* are the times its cron expression matches, read in its time zone. At each
tick every worker asks, for each registered schedule, for the latest slot at or before now
(``due_slot``); a slot before the schedule was registered never fires. The worker that records
the slot first (``Store.claim_slot``: one row per trigger and slot, so of several workers
claiming it at once exactly one succeeds) starts the run; the others skip it.

Catch-up rule: after a time when no worker ran, only the latest missed slot fires, once; the
slots before it are skipped (as ``catchup=False`` in most schedulers). A slot is also never
fired once a later one was (a worker with a lagging clock does not fire an old slot again).
The claim is recorded before the run is queued: a worker that dies between the two loses that
slot's run (at most once per slot, never twice).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from pardag.errors import ArgumentError, PardagError
from pardag.store.base import Store
from pardag.store.triggers import TriggerRecord

__all__ = ["Start", "due_slot", "fire_due", "latest_slot", "trigger_data"]

Start = Callable[[TriggerRecord, dict[str, object]], str]
"""Queues a run of a schedule's workflow with the given trigger data; the run's id."""


def latest_slot(cron: str, timezone: str, now: float) -> float:
    """The latest time (seconds since the epoch) at or before ``now`` that ``cron`` matches,
    read in ``timezone``."""
    try:
        from croniter import croniter  # type: ignore[import-untyped, unused-ignore]
    except ImportError:
        raise ArgumentError(
            "schedules are fired with croniter, which is not installed here: "
            "pip install 'pardag[server]'"
        ) from None
    start = datetime.fromtimestamp(now, ZoneInfo(timezone)) + timedelta(seconds=1)
    slots = croniter(cron, start)
    slot = float(slots.get_prev(float))
    return slot if slot <= now else float(slots.get_prev(float))


def due_slot(trigger: TriggerRecord, now: float) -> float | None:
    """The slot of cron ``trigger`` to fire at ``now``: the latest one at or before ``now``,
    if the trigger existed then; None otherwise. Whether it fired already is the store's."""
    assert trigger.cron is not None
    slot = latest_slot(trigger.cron, trigger.timezone or "UTC", now)
    return slot if slot >= trigger.created_at else None


def trigger_data(trigger: TriggerRecord, slot: float) -> dict[str, object]:
    """What a scheduled run records as its trigger data: which schedule, which slot."""
    zone = ZoneInfo(trigger.timezone or "UTC")
    return {
        "schedule": trigger.cron,
        "timezone": trigger.timezone,
        "slot": datetime.fromtimestamp(slot, zone).isoformat(),
    }


def fire_due(store: Store, now: float, start: Start, say: Callable[[str], None]) -> list[str]:
    """Fire every schedule's due slot that no worker has fired yet; the ids of the runs this
    call started. A schedule that cannot start its run is said and skipped (the next slot
    tries again): one broken workflow does not stop the others."""
    started = []
    for trigger in store.schedules():
        what = f"schedule {trigger.cron!r} of workflow {trigger.workflow_id} ({trigger.org})"
        try:
            slot = due_slot(trigger, now)
        except ArgumentError as exc:
            say(f"{what} cannot fire: {exc}")
            continue
        if slot is None or not store.claim_slot(trigger.trigger_id, slot, now):
            continue
        data = trigger_data(trigger, slot)
        try:
            started.append(start(trigger, data))
        except PardagError as exc:
            say(f"{what} could not start its run of {data['slot']}: {exc}")
    return started
