"""The store conformance suite: every test runs on SQLite and on PostgreSQL (see conftest)."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest

from pardag.errors import PardagError
from pardag.store import (
    SCHEMA_VERSION,
    Answer,
    CacheEntry,
    EventRecord,
    RunRecord,
    RunUpdate,
    StepRecord,
    Store,
    StoreError,
    open_store,
    schema,
)
from tests.store.conftest import Raw

ROOT = Path(__file__).resolve().parents[2]
T0 = 1_700_000_000.123456
UNICODE = "Grüße → 日本語 🚀 \u200b 'quotes' \"double\" \\ back; DROP TABLE runs; --"
BIG_JSON = '{"rows": [' + ",".join(f'{{"n": {i}, "s": "{"x" * 40}"}}' for i in range(40_000)) + "]}"


def new_run(run_id: str = "run000001", **fields: object) -> RunRecord:
    values: dict[str, Any] = {"workflow": "wf", "status": "running", "created_at": T0}
    values.update(fields)
    return RunRecord(run_id, **values)


def full_run(run_id: str) -> RunRecord:
    """A run with every field set to something a careless backend would mangle."""
    return RunRecord(
        run_id=run_id,
        workflow=UNICODE,
        status="failed",
        created_at=T0,
        definition="steps:\n  a: {kind: shell, command: echo 'é'}\n" * 50,
        definition_format="native",
        definition_hash="sha256:" + "ab" * 32,
        source="/tmp/flow ü.yaml",
        settings_json='{"max_concurrency": 8, "pools": {"db": 2}}',
        params_json=BIG_JSON,
        finished_at=T0 + 0.000001,
        error=UNICODE + "\nsecond line",
        owner="host.example:12345",
        heartbeat_at=T0 + 1e-6,
    )


def full_step(run_id: str, step_id: str = "step ü", attempt: int = 3) -> StepRecord:
    return StepRecord(
        run_id=run_id,
        step_id=step_id,
        attempt=attempt,
        state="failed",
        executor="processes",
        started_at=T0 + 1.5,
        finished_at=T0 + 2.25,
        output_json=BIG_JSON,
        output_stored=False,
        error="ValueError: " + UNICODE,
        traceback='Traceback (most recent call last):\n  File "x.py", line 1\nValueError\n' * 20,
        reason="timed out after 5s",
        cached=True,
    )


# -- runs -----------------------------------------------------------------------------------


def test_a_run_round_trips_every_field(store: Store) -> None:
    run = full_run("a1b2c3d4e5f6")
    store.create_run(run)
    assert store.get_run(run.run_id) == run


def test_a_run_keeps_its_defaults_and_nones(store: Store) -> None:
    run = new_run()
    store.create_run(run)
    found = store.get_run(run.run_id)
    assert found == run
    assert found is not None and found.finished_at is None and found.source is None


def test_creating_a_run_twice_is_an_error_naming_it(store: Store) -> None:
    store.create_run(new_run("dup-run"))
    with pytest.raises(StoreError, match="'dup-run' already exists"):
        store.create_run(new_run("dup-run", workflow="other"))
    assert store.get_run("dup-run") == new_run("dup-run")


def test_store_errors_are_pardag_errors(store: Store) -> None:
    store.create_run(new_run())
    with pytest.raises(PardagError):
        store.create_run(new_run())


def test_a_missing_run_is_none(store: Store) -> None:
    assert store.get_run("no-such-run") is None
    assert store.get_steps("no-such-run") == []
    assert store.get_events("no-such-run") == []
    assert store.get_answers("no-such-run") == {}


def test_run_updates_change_only_the_fields_given(store: Store) -> None:
    run = full_run("r-update")
    store.create_run(run)
    store.write(runs=[RunUpdate(run.run_id, status="succeeded", heartbeat_at=T0 + 9)])
    found = store.get_run(run.run_id)
    assert found is not None
    assert (found.status, found.heartbeat_at) == ("succeeded", T0 + 9)
    assert (found.error, found.owner, found.finished_at) == (run.error, run.owner, run.finished_at)
    store.write(runs=[RunUpdate(run.run_id)])  # nothing to change: a no-op
    assert store.get_run(run.run_id) == found


def test_updating_a_run_that_does_not_exist_is_an_error(store: Store) -> None:
    with pytest.raises(StoreError, match="cannot update run 'ghost': no such run"):
        store.write(runs=[RunUpdate("ghost", status="failed")])


# -- run ids and prefixes -------------------------------------------------------------------


def test_a_unique_prefix_of_six_characters_finds_the_run(store: Store) -> None:
    store.create_run(new_run("abcdef123456"))
    store.create_run(new_run("abcxyz999999"))
    found = store.get_run("abcdef")
    assert found is not None and found.run_id == "abcdef123456"
    assert store.get_run("abcdef1234") is not None
    assert store.get_run("abcde") is None  # five characters never match a prefix
    assert store.get_run("abcdeg") is None
    assert store.get_run("ABCDEF") is None  # ids are case-sensitive


def test_an_ambiguous_prefix_names_the_matches(store: Store) -> None:
    for n in range(7):
        store.create_run(new_run(f"feed00{n:04d}", created_at=T0 + n))
    with pytest.raises(StoreError, match="ambiguous") as caught:
        store.get_run("feed00")
    message = str(caught.value)
    assert "feed000006" in message and "feed000002" in message and "and more" in message
    assert "feed000001" not in message  # up to five, newest first
    store.create_run(new_run("beef01aa", created_at=T0))
    store.create_run(new_run("beef01bb", created_at=T0 + 1))
    with pytest.raises(StoreError, match=r"matches beef01bb, beef01aa; give more"):
        store.get_run("beef01")


def test_an_exact_id_wins_over_longer_ids_it_prefixes(store: Store) -> None:
    store.create_run(new_run("cafe0123"))
    store.create_run(new_run("cafe01234567"))
    found = store.get_run("cafe0123")
    assert found is not None and found.run_id == "cafe0123"


def test_a_prefix_is_matched_literally(store: Store) -> None:
    store.create_run(new_run("ab%_cd-rest"))
    store.create_run(new_run("abXYcd-rest"))
    found = store.get_run("ab%_cd")
    assert found is not None and found.run_id == "ab%_cd-rest"


# -- listing runs ---------------------------------------------------------------------------


def seed_runs(store: Store) -> None:
    rows = [
        ("r1", "etl", "succeeded", T0 + 1),
        ("r2", "etl", "failed", T0 + 2),
        ("r3", "report", "succeeded", T0 + 3),
        ("r4", "etl", "succeeded", T0 + 4),
        ("r5", "report", "paused", T0 + 5),
    ]
    for run_id, workflow, status, created in rows:
        store.create_run(new_run(run_id, workflow=workflow, status=status, created_at=created))


def ids(runs: list[RunRecord]) -> list[str]:
    return [r.run_id for r in runs]


def test_runs_are_listed_newest_first(store: Store) -> None:
    seed_runs(store)
    assert ids(store.list_runs()) == ["r5", "r4", "r3", "r2", "r1"]


def test_each_filter_narrows_the_list(store: Store) -> None:
    seed_runs(store)
    assert ids(store.list_runs(workflow="etl")) == ["r4", "r2", "r1"]
    assert ids(store.list_runs(status="succeeded")) == ["r4", "r3", "r1"]
    assert ids(store.list_runs(since=T0 + 3)) == ["r5", "r4", "r3"]  # since is inclusive
    assert ids(store.list_runs(until=T0 + 3)) == ["r2", "r1"]  # until is exclusive
    assert ids(store.list_runs(workflow="nope")) == []


def test_filters_combine(store: Store) -> None:
    seed_runs(store)
    found = store.list_runs(workflow="etl", status="succeeded", since=T0 + 2, until=T0 + 5)
    assert ids(found) == ["r4"]
    assert ids(store.list_runs(workflow="report", status="succeeded")) == ["r3"]


def test_limit_keeps_the_newest(store: Store) -> None:
    seed_runs(store)
    assert ids(store.list_runs(limit=2)) == ["r5", "r4"]
    assert ids(store.list_runs(workflow="etl", limit=1)) == ["r4"]
    assert len(store.list_runs(limit=0)) == 5  # 0: no limit


def test_listing_reflects_updates(store: Store) -> None:
    seed_runs(store)
    store.write(runs=[RunUpdate("r5", status="succeeded", finished_at=T0 + 6)])
    assert ids(store.list_runs(status="paused")) == []
    assert ids(store.list_runs(status="succeeded", limit=1)) == ["r5"]


# -- steps ----------------------------------------------------------------------------------


def test_a_step_attempt_round_trips_every_field(store: Store) -> None:
    store.create_run(new_run())
    step = full_step("run000001")
    store.write(steps=[step])
    assert store.get_steps("run000001") == [step]


def test_a_step_keeps_its_defaults_and_nones(store: Store) -> None:
    store.create_run(new_run())
    step = StepRecord("run000001", "a", 1, "running")
    store.write(steps=[step])
    assert store.get_steps("run000001") == [step]
    got = store.get_steps("run000001")[0]
    assert got.output_stored is True and got.cached is False and got.output_json is None


def test_write_upserts_a_step_attempt_by_its_key(store: Store) -> None:
    store.create_run(new_run())
    running = StepRecord("run000001", "a", 1, "running", "threads", started_at=T0)
    store.write(steps=[running])
    done = StepRecord("run000001", "a", 1, "succeeded", "threads", T0, T0 + 1, "[1, 2]")
    store.write(steps=[done])
    assert store.get_steps("run000001") == [done]
    retry = StepRecord("run000001", "a", 2, "running", "threads", started_at=T0 + 2)
    store.write(steps=[retry])
    assert store.get_steps("run000001") == [done, retry]


def test_the_last_record_of_a_key_in_one_write_wins(store: Store) -> None:
    store.create_run(new_run())
    first = StepRecord("run000001", "a", 1, "running")
    last = StepRecord("run000001", "a", 1, "succeeded", output_json='"ok"')
    store.write(steps=[first, StepRecord("run000001", "b", 1, "running"), last])
    states = {(s.step_id, s.state) for s in store.get_steps("run000001")}
    assert states == {("a", "succeeded"), ("b", "running")}


def test_steps_come_by_step_id_then_attempt(store: Store) -> None:
    store.create_run(new_run())
    keys = [("b", 2), ("a10", 1), ("B", 1), ("a2", 1), ("b", 1), ("a", 3), ("a", 1)]
    store.write(steps=[StepRecord("run000001", s, n, "succeeded") for s, n in keys])
    got = [(s.step_id, s.attempt) for s in store.get_steps("run000001")]
    assert got == sorted(keys)


def test_steps_of_other_runs_stay_apart(store: Store) -> None:
    store.create_run(new_run("run-a"))
    store.create_run(new_run("run-b"))
    store.write(steps=[StepRecord("run-a", "s", 1, "ok"), StepRecord("run-b", "s", 1, "no")])
    assert [s.state for s in store.get_steps("run-a")] == ["ok"]
    assert [s.state for s in store.get_steps("run-b")] == ["no"]


def test_a_step_of_a_run_never_created_is_an_error(store: Store) -> None:
    with pytest.raises(StoreError, match="run ghost: the run does not exist"):
        store.write(steps=[StepRecord("ghost", "a", 1, "running")])


# -- events ---------------------------------------------------------------------------------


def test_events_round_trip_in_seq_order(store: Store) -> None:
    store.create_run(new_run())
    events = [
        EventRecord("run000001", 3, T0 + 3, "step_succeeded", "a", 1, '{"out": "é"}'),
        EventRecord("run000001", 1, T0 + 1, "run_started"),
        EventRecord("run000001", 2, T0 + 2, "step_started", "a", 1, BIG_JSON),
    ]
    store.write(events=events[:2])
    store.write(events=events[2:])
    assert store.get_events("run000001") == sorted(events, key=lambda e: e.seq)


def test_events_by_step(store: Store) -> None:
    store.create_run(new_run())
    kinds = [(1, None), (2, "a"), (3, "b"), (4, "a"), (5, None), (6, "b")]
    store.write(events=[EventRecord("run000001", n, T0 + n, "k", step) for n, step in kinds])
    assert [e.seq for e in store.get_events("run000001", step="a")] == [2, 4]
    assert [e.seq for e in store.get_events("run000001", step="b")] == [3, 6]
    assert store.get_events("run000001", step="zzz") == []


def test_events_after_a_seq_are_only_the_newer_ones(store: Store) -> None:
    store.create_run(new_run())
    kinds = [(1, None), (2, "a"), (3, "b"), (4, "a"), (5, None)]
    store.write(events=[EventRecord("run000001", n, T0 + n, "k", step) for n, step in kinds])
    assert [e.seq for e in store.get_events("run000001", after=2)] == [3, 4, 5]
    assert [e.seq for e in store.get_events("run000001", step="a", after=2)] == [4]
    assert store.get_events("run000001", after=5) == []


def test_a_duplicate_event_is_an_error(store: Store) -> None:
    store.create_run(new_run())
    store.write(events=[EventRecord("run000001", 1, T0, "run_started")])
    with pytest.raises(StoreError, match="already recorded"):
        store.write(events=[EventRecord("run000001", 1, T0, "again")])
    assert [e.kind for e in store.get_events("run000001")] == ["run_started"]


def test_a_write_is_all_or_nothing(store: Store) -> None:
    store.create_run(new_run())
    store.write(events=[EventRecord("run000001", 1, T0, "run_started")])
    with pytest.raises(StoreError):
        store.write(
            runs=[RunUpdate("run000001", status="succeeded")],
            steps=[StepRecord("run000001", "a", 1, "succeeded")],
            events=[EventRecord("run000001", 2, T0, "ok"), EventRecord("run000001", 1, T0, "x")],
        )
    assert store.get_steps("run000001") == []
    assert [e.seq for e in store.get_events("run000001")] == [1]
    found = store.get_run("run000001")
    assert found is not None and found.status == "running"
    with pytest.raises(StoreError):  # a bad run update undoes the steps and events with it
        store.write(
            runs=[RunUpdate("ghost", status="failed")],
            steps=[StepRecord("run000001", "a", 1, "succeeded")],
        )
    assert store.get_steps("run000001") == []


def test_an_empty_write_does_nothing(store: Store) -> None:
    store.write()
    store.write(runs=[], steps=[], events=[])
    assert store.list_runs() == []


# -- answers --------------------------------------------------------------------------------


def test_answers_round_trip_and_replace(store: Store) -> None:
    store.create_run(new_run())
    first = Answer("run000001", "approve", "rejected", "null", "not today " + UNICODE, T0)
    other = Answer("run000001", "sign-off", "approved", '{"by": "ana"}', None, T0 + 1)
    store.put_answer(first)
    store.put_answer(other)
    assert store.get_answers("run000001") == {"approve": first, "sign-off": other}
    again = Answer("run000001", "approve", "approved", '{"amount": 12.5}', None, T0 + 2)
    store.put_answer(again)
    assert store.get_answers("run000001") == {"approve": again, "sign-off": other}


def test_answers_of_an_unknown_run_or_decision_are_refused(store: Store) -> None:
    with pytest.raises(StoreError, match="answer to step 'a' of run 'ghost'"):
        store.put_answer(Answer("ghost", "a", "approved"))
    store.create_run(new_run())
    with pytest.raises(StoreError, match="'maybe' is not 'approved' or 'rejected'"):
        store.put_answer(Answer("run000001", "a", "maybe"))
    assert store.get_answers("run000001") == {}


# -- cache ----------------------------------------------------------------------------------


def test_cache_round_trips_and_replaces(store: Store) -> None:
    entry = CacheEntry("key:é", BIG_JSON, T0, None, "run000001", "a")
    store.put_cache(entry)
    assert store.get_cache("key:é", T0 + 10**9) == entry  # no expiry: forever
    newer = CacheEntry("key:é", "2", T0 + 5, T0 + 65)
    store.put_cache(newer)
    assert store.get_cache("key:é", T0 + 6) == newer
    assert store.get_cache("other", T0) is None


def test_a_cache_entry_expires_at_its_time(store: Store) -> None:
    store.put_cache(CacheEntry("k", "1", T0, expires_at=T0 + 60))
    assert store.get_cache("k", T0 + 59.999) is not None
    assert store.get_cache("k", T0 + 60) is None
    assert store.get_cache("k", T0 + 61) is None
    store.put_cache(CacheEntry("k", "2", T0 + 61, expires_at=T0 + 121))  # stored again: fresh
    fresh = store.get_cache("k", T0 + 62)
    assert fresh is not None and fresh.output_json == "2"


# -- lifetime -------------------------------------------------------------------------------


def test_everything_is_there_after_reopening(store_url: str) -> None:
    with open_store(store_url) as first:
        first.create_run(full_run("persist01"))
        first.write(
            steps=[full_step("persist01")], events=[EventRecord("persist01", 1, T0, "k", "a")]
        )
        first.put_answer(Answer("persist01", "a", "approved"))
        first.put_cache(CacheEntry("k", "1", T0))
    with open_store(store_url, create=False) as second:
        assert second.get_run("persist01") == full_run("persist01")
        assert second.get_steps("persist01") == [full_step("persist01")]
        assert len(second.get_events("persist01")) == 1
        assert set(second.get_answers("persist01")) == {"a"}
        assert second.get_cache("k", T0) is not None


def test_a_closed_store_says_so(store_url: str) -> None:
    opened = open_store(store_url)
    opened.close()
    opened.close()  # idempotent
    with pytest.raises(StoreError, match="is closed"):
        opened.get_run("x")
    with pytest.raises(StoreError, match="is closed"):
        opened.write(steps=[StepRecord("x", "a", 1, "running")])


# -- schema versions ------------------------------------------------------------------------


def test_a_new_store_records_the_latest_schema_version(store: Store, raw: Raw) -> None:
    versions = raw("SELECT version FROM pardag_schema ORDER BY version")
    assert [v for (v,) in versions] == list(range(1, SCHEMA_VERSION + 1))


def test_an_older_database_is_migrated_and_keeps_its_rows(
    store_url: str, raw: Raw, monkeypatch: pytest.MonkeyPatch
) -> None:
    with open_store(store_url) as old:
        old.create_run(new_run("kept-run"))
    later = schema.Migration(
        SCHEMA_VERSION + 1,
        "a later release adds a column",
        ("ALTER TABLE runs ADD COLUMN note TEXT", "UPDATE runs SET note = 'migrated'"),
    )
    monkeypatch.setattr(schema, "MIGRATIONS", [*schema.MIGRATIONS, later])
    with open_store(store_url, create=False) as new:
        assert new.get_run("kept-run") == new_run("kept-run")
    assert raw("SELECT note FROM runs") == [("migrated",)]
    versions = [v for (v,) in raw("SELECT version FROM pardag_schema ORDER BY version")]
    assert versions == list(range(1, SCHEMA_VERSION + 2))
    with open_store(store_url):  # already migrated: not applied twice
        pass
    assert raw("SELECT count(*) FROM pardag_schema") == [(SCHEMA_VERSION + 1,)]


def test_a_failing_migration_leaves_the_database_as_it_was(
    store_url: str, raw: Raw, monkeypatch: pytest.MonkeyPatch
) -> None:
    with open_store(store_url) as old:
        old.create_run(new_run("kept-run"))
    broken = schema.Migration(
        SCHEMA_VERSION + 1,
        "half works",
        ("ALTER TABLE runs ADD COLUMN note TEXT", "THIS IS NOT SQL"),
    )
    monkeypatch.setattr(schema, "MIGRATIONS", [*schema.MIGRATIONS, broken])
    with pytest.raises(StoreError, match="opening it failed"):
        open_store(store_url)
    monkeypatch.undo()
    assert raw("SELECT max(version) FROM pardag_schema") == [(SCHEMA_VERSION,)]
    with pytest.raises(Exception, match="note"):  # the first statement was rolled back too
        raw("SELECT note FROM runs")
    with open_store(store_url) as again:
        assert again.get_run("kept-run") == new_run("kept-run")


def test_a_newer_database_is_refused_untouched(store_url: str, raw: Raw) -> None:
    with open_store(store_url) as current:
        current.create_run(new_run("kept-run"))
    raw("INSERT INTO pardag_schema VALUES (?, ?, ?)", SCHEMA_VERSION + 41, T0, "pardag 9.0")
    before = raw("SELECT * FROM runs")
    with pytest.raises(StoreError) as caught:
        open_store(store_url)
    message = str(caught.value)
    assert f"newer pardag (pardag 9.0: schema {SCHEMA_VERSION + 41}, " in message
    assert f"this one knows {SCHEMA_VERSION}); upgrade pardag" in message
    assert raw("SELECT * FROM runs") == before
    assert raw("SELECT max(version) FROM pardag_schema") == [(SCHEMA_VERSION + 41,)]


def test_tables_pardag_did_not_create_are_left_alone(store_url: str, raw: Raw) -> None:
    raw("CREATE TABLE runs (id INTEGER, mine TEXT)")
    raw("INSERT INTO runs VALUES (1, 'theirs')")
    with pytest.raises(StoreError, match=r"is not a pardag run store: it holds tables \(runs\)"):
        open_store(store_url)
    assert raw("SELECT * FROM runs") == [(1, "theirs")]
    with pytest.raises(Exception, match="pardag_schema"):
        raw("SELECT * FROM pardag_schema")


def test_create_false_refuses_to_create_a_store(store_url: str, raw: Raw) -> None:
    raw("SELECT 1")  # the database (or an empty file) exists, but holds no store
    with pytest.raises(StoreError, match="no pardag run store"):
        open_store(store_url, create=False)
    with pytest.raises(Exception, match="pardag_schema"):
        raw("SELECT * FROM pardag_schema")


# -- concurrency ----------------------------------------------------------------------------


def test_two_threads_write_while_a_third_reads(store: Store) -> None:
    writes = 150
    for run_id in ("run-a", "run-b"):
        store.create_run(new_run(run_id))
    errors: list[BaseException] = []
    done = threading.Event()

    def writer(run_id: str) -> None:
        try:
            for n in range(1, writes + 1):
                step = StepRecord(run_id, f"s{n:04d}", 1, "succeeded", output_json=str(n))
                event = EventRecord(run_id, n, T0 + n, "step_succeeded", step.step_id)
                store.write(steps=[step], events=[event], runs=[RunUpdate(run_id, heartbeat_at=n)])
        except BaseException as exc:
            errors.append(exc)

    def reader() -> None:
        seen = {"run-a": 0, "run-b": 0}
        try:
            while not done.is_set():
                for run_id in seen:
                    steps = len(store.get_steps(run_id))
                    events = len(store.get_events(run_id))
                    assert steps >= seen[run_id], "a committed step disappeared"
                    assert events >= steps, "a step committed without its event"
                    seen[run_id] = steps
                store.list_runs()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(r,)) for r in ("run-a", "run-b")]
    watcher = threading.Thread(target=reader)
    watcher.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    done.set()
    watcher.join()
    assert errors == []
    for run_id in ("run-a", "run-b"):
        assert len(store.get_steps(run_id)) == writes
        assert [e.seq for e in store.get_events(run_id)] == list(range(1, writes + 1))
        found = store.get_run(run_id)
        assert found is not None and found.heartbeat_at == writes


def write_from_a_process(url: str, run_id: str, writes: int, start: Any) -> None:
    """A separate process: open the store (maybe creating it), then write as fast as it can."""
    start.wait()
    with open_store(url) as store:
        store.create_run(new_run(run_id))
        for n in range(1, writes + 1):
            step = StepRecord(run_id, f"s{n}", 1, "succeeded")
            store.write(steps=[step], events=[EventRecord(run_id, n, T0, "k", step.step_id)])
        store.write(runs=[RunUpdate(run_id, status="succeeded")])


@pytest.mark.slow
def test_several_processes_write_to_one_store_at_once(store_url: str) -> None:
    processes, writes = 4, 60
    context = multiprocessing.get_context("spawn")  # separate interpreters, like separate CLIs
    start = context.Barrier(processes)
    children = [
        context.Process(target=write_from_a_process, args=(store_url, f"proc-{n}", writes, start))
        for n in range(processes)
    ]
    for child in children:
        child.start()
    for child in children:
        child.join(timeout=90)
    assert [c.exitcode for c in children] == [0] * processes  # a child's traceback is above
    with open_store(store_url, create=False) as store:
        for n in range(processes):
            found = store.get_run(f"proc-{n}")
            assert found is not None and found.status == "succeeded"
            assert len(store.get_steps(f"proc-{n}")) == writes
            assert len(store.get_events(f"proc-{n}")) == writes


def test_a_forked_child_can_use_its_parents_store(store: Store) -> None:
    store.create_run(new_run())
    assert store.get_run("run000001") is not None  # the parent holds an idle connection now
    pid = os.fork()
    if pid == 0:  # the child: its own connections; the parent's are left alone
        code = 1
        try:
            store.write(steps=[StepRecord("run000001", "child", 1, "succeeded")])
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    store.write(steps=[StepRecord("run000001", "parent", 1, "succeeded")])
    assert [s.step_id for s in store.get_steps("run000001")] == ["child", "parent"]


def test_a_write_that_returned_survives_the_writer_being_killed(store_url: str) -> None:
    script = textwrap.dedent(
        f"""
        import os, signal
        from pardag.store import EventRecord, RunRecord, StepRecord, open_store
        store = open_store({store_url!r})
        store.create_run(RunRecord("killed", "wf", "running", 1.0))
        store.write(steps=[StepRecord("killed", "a", 1, "succeeded", output_json="42")],
                    events=[EventRecord("killed", 1, 1.0, "step_succeeded", "a")])
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, timeout=60, check=False)
    assert done.returncode == -9
    with open_store(store_url, create=False) as store:
        assert [s.output_json for s in store.get_steps("killed")] == ["42"]
        assert len(store.get_events("killed")) == 1


def test_step_durations_average_the_latest_runs_of_a_workflow(store: Store) -> None:
    def attempt(run: str, step: str, seconds: float, **fields: Any) -> StepRecord:
        values: dict[str, Any] = {"state": "succeeded", "started_at": T0, "finished_at": T0}
        values["finished_at"] = T0 + seconds
        values.update(fields)
        return StepRecord(run, step, 1, **values)

    for n, (workflow, created) in enumerate([("wf", 1), ("wf", 2), ("wf", 3), ("other", 4)]):
        store.create_run(new_run(f"run{n:06d}", workflow=workflow, created_at=T0 + created))
    store.write(
        steps=[
            attempt("run000000", "a", 9.0),  # the oldest run: left out with runs=2
            attempt("run000001", "a", 1.0),
            attempt("run000002", "a", 3.0),
            attempt("run000001", "b", 5.0, state="failed"),  # did not succeed
            attempt("run000002", "b", 7.0, cached=True),  # did not run
            attempt("run000002", "c", 2.0),
            attempt("run000003", "a", 100.0),  # another workflow
        ]
    )
    assert store.step_durations("wf", runs=2) == {"a": 2.0, "c": 2.0}
    assert store.step_durations("wf", runs=3) == {"a": pytest.approx(13 / 3), "c": 2.0}
    assert store.step_durations("nothing") == {}
