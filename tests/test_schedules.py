"""Cron triggers: which slot is due at a given time, and one run per slot among workers.

The slot logic is tested with explicit ``now`` values; the race with workers on threads, each
with its own connection to one store (SQLite and PostgreSQL), as worker processes would.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pardag.schedules import Start, due_slot, fire_due, latest_slot
from pardag.store import Store, open_store
from pardag.store.triggers import TriggerRecord
from pardag.worker import Worker, submit_stored
from tests.store.conftest import postgres, postgres_url  # noqa: F401  (fixtures used below)
from tests.test_worker import Workers, wait_for

FLOW = "name: tick\nsteps:\n  a:\n    kind: shell\n    command: echo tick\n"


def at(text: str) -> float:
    """A UTC time as seconds since the epoch."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def schedule(expr: str, zone: str = "UTC", created: str = "2026-01-01T00:00:00") -> TriggerRecord:
    return TriggerRecord("t1", "acme", "wf-1", "cron", None, expr, zone, None, at(created))


@pytest.mark.parametrize(
    ("expr", "zone", "now", "slot"),
    [
        ("*/5 * * * *", "UTC", "2026-06-01T10:07:30", "2026-06-01T10:05:00"),
        ("*/5 * * * *", "UTC", "2026-06-01T10:05:00", "2026-06-01T10:05:00"),  # now is a slot
        ("*/5 * * * *", "UTC", "2026-06-01T10:04:59.999", "2026-06-01T10:00:00"),
        ("0 6 * * *", "Europe/Paris", "2026-01-15T05:30:00", "2026-01-15T05:00:00"),  # UTC+1
        ("0 6 * * *", "Europe/Paris", "2026-07-15T05:30:00", "2026-07-15T04:00:00"),  # UTC+2
        ("0 6 * * *", "Europe/Paris", "2026-07-15T03:59:00", "2026-07-14T04:00:00"),
        ("0 9 * * 1-5", "UTC", "2026-06-07T12:00:00", "2026-06-05T09:00:00"),  # Sunday: Friday's
    ],
)
def test_the_latest_slot_at_or_before_now(expr: str, zone: str, now: str, slot: str) -> None:
    assert latest_slot(expr, zone, at(now)) == at(slot)


def test_a_slot_before_the_schedule_existed_is_not_due() -> None:
    made_at_ten = schedule("0 * * * *", created="2026-06-01T10:20:00")
    assert due_slot(made_at_ten, at("2026-06-01T10:59:00")) is None  # 10:00 was before it
    assert due_slot(made_at_ten, at("2026-06-01T11:00:00")) == at("2026-06-01T11:00:00")


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "runs.db")
    return str(request.getfixturevalue("postgres_url"))


def stored_schedule(store: Store, expr: str, created: float) -> TriggerRecord:
    wf = store.put_workflow("acme", "tick", "yaml", FLOW, created)
    record = TriggerRecord("t1", "acme", wf.workflow_id, "cron", None, expr, "UTC", None, created)
    store.set_triggers("acme", wf.workflow_id, [record])
    return record


def start(store: Store) -> Start:
    def queue(trigger: TriggerRecord, data: dict[str, object]) -> str:
        latest = store.workflow_versions(trigger.org, trigger.workflow_id)[-1]
        return submit_stored(store, latest, data, "schedule")

    return queue


def test_after_downtime_only_the_latest_missed_slot_fires(store_url: str) -> None:
    said: list[str] = []
    with open_store(store_url) as store:
        stored_schedule(store, "*/5 * * * *", at("2026-06-01T10:00:00"))
        back = at("2026-06-01T11:02:00")  # twelve slots were missed
        [run_id] = fire_due(store, back, start(store), said.append)
        assert fire_due(store, back, start(store), said.append) == []  # fired already
        assert fire_due(store, at("2026-06-01T11:04:59"), start(store), said.append) == []
        [then] = fire_due(store, at("2026-06-01T11:05:00"), start(store), said.append)
        runs = {r.run_id: r for r in store.list_runs(org="acme")}
        assert set(runs) == {run_id, then}
        first = json.loads(runs[run_id].trigger_json)
        assert first == {
            "schedule": "*/5 * * * *",
            "timezone": "UTC",
            "slot": "2026-06-01T11:00:00+00:00",
        }
        assert runs[run_id].status == "queued" and runs[run_id].workflow == "tick"
    assert said == []


def test_a_schedule_whose_workflow_cannot_start_says_so_and_others_fire(store_url: str) -> None:
    said: list[str] = []
    with open_store(store_url) as store:
        stored_schedule(store, "0 * * * *", at("2026-06-01T10:00:00"))
        broken = store.put_workflow(
            "acme", "broken", "yaml", "steps: 3\n", at("2026-06-01T10:00:00")
        )
        bad = TriggerRecord(
            "t2", "acme", broken.workflow_id, "cron", None, "0 * * * *", "UTC", None, 0
        )
        store.set_triggers("acme", broken.workflow_id, [bad])
        started = fire_due(store, at("2026-06-01T12:30:00"), start(store), said.append)
        assert len(started) == 1
        [line] = said
        assert "could not start its run of 2026-06-01T12:00:00+00:00" in line and "broken" in line


def test_workers_racing_for_one_slot_start_one_run(store_url: str) -> None:
    """Four workers, each with its own connection, started at once: the slot is fired by one
    of them, and its run is run once."""
    with open_store(store_url) as setup:
        stored_schedule(setup, "0 0 1 1 *", 0.0)  # its latest slot: this year's 1 January
    stores = [open_store(store_url) for _ in range(4)]
    said: list[str] = []
    workers = [Worker(s, poll=0.05, name=f"w{n}", say=said.append) for n, s in enumerate(stores)]
    gate = threading.Barrier(len(workers))

    def serve(worker: Worker) -> None:
        gate.wait()
        worker.serve(until_idle=True)

    threads = [threading.Thread(target=serve, args=(w,)) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    try:
        runs = stores[0].list_runs(org="acme")
        assert len(runs) == 1, said
        assert (runs[0].status, runs[0].claims) == ("succeeded", 1)
        year = datetime.now(UTC).year
        slot = json.loads(runs[0].trigger_json)["slot"]
        assert slot == f"{year}-01-01T00:00:00+00:00"
        assert sum("schedule '0 0 1 1 *' started run" in line for line in said) == 1
    finally:
        for store in stores:
            store.close()


def test_worker_processes_racing_for_one_slot_start_one_run(store_url: str, tmp_path: Path) -> None:
    """Three ``pardag worker`` processes polling every 50 ms; a schedule due at once is
    registered while they run: they race for its slot, and one run is started."""
    started = Workers(tmp_path, store_url)
    try:
        procs = [started.start() for _ in range(3)]
        with open_store(store_url) as store:
            stored_schedule(store, "0 0 1 1 *", 0.0)
            wait_for("the scheduled run", lambda: _finished(store))
        for proc in procs:
            assert started.stop(proc) == 0
        logs = [started.log(n) for n in range(3)]
        assert sum("schedule '0 0 1 1 *' started run" in log for log in logs) == 1, logs
        with open_store(store_url) as store:
            [run] = store.list_runs(org="acme")
        assert (run.status, run.claims) == ("succeeded", 1)
    finally:
        started.close()


def _finished(store: Store) -> bool:
    runs = store.list_runs(org="acme")
    return bool(runs) and all(r.status == "succeeded" for r in runs)
