"""The store conformance suite: the contract of ``pardag.store.Store``, for any backend.

Subclass ``StoreSuite`` in a test module as ``Test<Something>`` and give it an ``opener``
fixture; pytest collects every ``test_*`` method for the subclass (see ``pardag.testing`` for
an example). A store on pardag's own SQL schema has more tests: ``pardag.testing.sqlstores``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from pardag.errors import PardagError
from pardag.store import (
    Answer,
    CacheEntry,
    EventRecord,
    LogRecord,
    RunUpdate,
    StepRecord,
    Store,
    StoreError,
)
from pardag.testing.cancels import CancelSuite
from pardag.testing.feeds import FeedSuite
from pardag.testing.queues import QueueSuite
from pardag.testing.records import (
    BIG_JSON,
    T0,
    UNICODE,
    full_run,
    full_step,
    ids,
    new_run,
    seed_runs,
)
from pardag.testing.sealed import SealedSuite
from pardag.testing.stats import StatsSuite
from pardag.testing.storelife import LifetimeSuite, Opener
from pardag.testing.tenancy import TenancySuite
from pardag.testing.triggers import TriggerSuite

__all__ = ["Opener", "StoreSuite"]


class StoreSuite(
    LifetimeSuite,
    QueueSuite,
    CancelSuite,
    TenancySuite,
    TriggerSuite,
    SealedSuite,
    StatsSuite,
    FeedSuite,
):
    """The tests every store must pass. Not collected itself (its name lacks ``Test``).

    A subclass provides the fixture ``opener``: a callable that opens a store of its own for
    this test, empty at first call, and the same store again at every later call. It must
    pickle (``functools.partial`` of a function does) when ``multiprocess`` is True. The
    fixture ``store`` is ``opener()``, closed after the test; a subclass may override it.
    """

    @pytest.fixture
    def opener(self) -> Opener:
        pytest.fail(f"{type(self).__name__} must define the fixture 'opener'", pytrace=False)

    @pytest.fixture
    def store(self, opener: Opener) -> Iterator[Store]:
        """A fresh, empty store."""
        opened = opener()
        try:
            yield opened
        finally:
            opened.close()

    # -- runs -----------------------------------------------------------------------------------

    def test_a_run_round_trips_every_field(self, store: Store) -> None:
        run = full_run("a1b2c3d4e5f6")
        store.create_run(run)
        assert store.get_run(run.run_id) == run

    def test_a_run_keeps_its_defaults_and_nones(self, store: Store) -> None:
        run = new_run()
        store.create_run(run)
        found = store.get_run(run.run_id)
        assert found == run
        assert found is not None and found.finished_at is None and found.source is None

    def test_creating_a_run_twice_is_an_error_naming_it(self, store: Store) -> None:
        store.create_run(new_run("dup-run"))
        with pytest.raises(StoreError, match="'dup-run' already exists"):
            store.create_run(new_run("dup-run", workflow="other"))
        assert store.get_run("dup-run") == new_run("dup-run")

    def test_store_errors_are_pardag_errors(self, store: Store) -> None:
        store.create_run(new_run())
        with pytest.raises(PardagError):
            store.create_run(new_run())

    def test_a_missing_run_is_none(self, store: Store) -> None:
        assert store.get_run("no-such-run") is None
        assert store.get_steps("no-such-run") == []
        assert store.get_events("no-such-run") == []
        assert store.get_answers("no-such-run") == {}

    def test_run_updates_change_only_the_fields_given(self, store: Store) -> None:
        run = full_run("r-update")
        store.create_run(run)
        store.write(runs=[RunUpdate(run.run_id, status="succeeded", heartbeat_at=T0 + 9)])
        found = store.get_run(run.run_id)
        assert found is not None
        assert (found.status, found.heartbeat_at) == ("succeeded", T0 + 9)
        assert (found.error, found.owner, found.finished_at) == (
            run.error,
            run.owner,
            run.finished_at,
        )
        store.write(runs=[RunUpdate(run.run_id)])  # nothing to change: a no-op
        assert store.get_run(run.run_id) == found

    def test_updating_a_run_that_does_not_exist_is_an_error(self, store: Store) -> None:
        with pytest.raises(StoreError, match="cannot update run 'ghost': no such run"):
            store.write(runs=[RunUpdate("ghost", status="failed")])

    # -- run ids and prefixes -------------------------------------------------------------------

    def test_a_unique_prefix_of_six_characters_finds_the_run(self, store: Store) -> None:
        store.create_run(new_run("abcdef123456"))
        store.create_run(new_run("abcxyz999999"))
        found = store.get_run("abcdef")
        assert found is not None and found.run_id == "abcdef123456"
        assert store.get_run("abcdef1234") is not None
        assert store.get_run("abcde") is None  # five characters never match a prefix
        assert store.get_run("abcdeg") is None
        assert store.get_run("ABCDEF") is None  # ids are case-sensitive

    def test_an_ambiguous_prefix_names_the_matches(self, store: Store) -> None:
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

    def test_an_exact_id_wins_over_longer_ids_it_prefixes(self, store: Store) -> None:
        store.create_run(new_run("cafe0123"))
        store.create_run(new_run("cafe01234567"))
        found = store.get_run("cafe0123")
        assert found is not None and found.run_id == "cafe0123"

    def test_a_prefix_is_matched_literally(self, store: Store) -> None:
        store.create_run(new_run("ab%_cd-rest"))
        store.create_run(new_run("abXYcd-rest"))
        found = store.get_run("ab%_cd")
        assert found is not None and found.run_id == "ab%_cd-rest"

    # -- listing runs ---------------------------------------------------------------------------

    def test_runs_are_listed_newest_first(self, store: Store) -> None:
        seed_runs(store)
        assert ids(store.list_runs()) == ["r5", "r4", "r3", "r2", "r1"]

    def test_each_filter_narrows_the_list(self, store: Store) -> None:
        seed_runs(store)
        assert ids(store.list_runs(workflow="etl")) == ["r4", "r2", "r1"]
        assert ids(store.list_runs(status="succeeded")) == ["r4", "r3", "r1"]
        assert ids(store.list_runs(since=T0 + 3)) == ["r5", "r4", "r3"]  # since is inclusive
        assert ids(store.list_runs(until=T0 + 3)) == ["r2", "r1"]  # until is exclusive
        assert ids(store.list_runs(workflow="nope")) == []

    def test_filters_combine(self, store: Store) -> None:
        seed_runs(store)
        found = store.list_runs(workflow="etl", status="succeeded", since=T0 + 2, until=T0 + 5)
        assert ids(found) == ["r4"]
        assert ids(store.list_runs(workflow="report", status="succeeded")) == ["r3"]

    def test_limit_keeps_the_newest(self, store: Store) -> None:
        seed_runs(store)
        assert ids(store.list_runs(limit=2)) == ["r5", "r4"]
        assert ids(store.list_runs(workflow="etl", limit=1)) == ["r4"]
        assert len(store.list_runs(limit=0)) == 5  # 0: no limit

    def test_listing_reflects_updates(self, store: Store) -> None:
        seed_runs(store)
        store.write(runs=[RunUpdate("r5", status="succeeded", finished_at=T0 + 6)])
        assert ids(store.list_runs(status="paused")) == []
        assert ids(store.list_runs(status="succeeded", limit=1)) == ["r5"]

    # -- steps ----------------------------------------------------------------------------------

    def test_a_step_attempt_round_trips_every_field(self, store: Store) -> None:
        store.create_run(new_run())
        step = full_step("run000001")
        store.write(steps=[step])
        assert store.get_steps("run000001") == [step]

    def test_a_step_keeps_its_defaults_and_nones(self, store: Store) -> None:
        store.create_run(new_run())
        step = StepRecord("run000001", "a", 1, "running")
        store.write(steps=[step])
        assert store.get_steps("run000001") == [step]
        got = store.get_steps("run000001")[0]
        assert got.output_stored is True and got.cached is False and got.output_json is None

    def test_write_upserts_a_step_attempt_by_its_key(self, store: Store) -> None:
        store.create_run(new_run())
        running = StepRecord("run000001", "a", 1, "running", "threads", started_at=T0)
        store.write(steps=[running])
        done = StepRecord("run000001", "a", 1, "succeeded", "threads", T0, T0 + 1, "[1, 2]")
        store.write(steps=[done])
        assert store.get_steps("run000001") == [done]
        retry = StepRecord("run000001", "a", 2, "running", "threads", started_at=T0 + 2)
        store.write(steps=[retry])
        assert store.get_steps("run000001") == [done, retry]

    def test_the_last_record_of_a_key_in_one_write_wins(self, store: Store) -> None:
        store.create_run(new_run())
        first = StepRecord("run000001", "a", 1, "running")
        last = StepRecord("run000001", "a", 1, "succeeded", output_json='"ok"')
        store.write(steps=[first, StepRecord("run000001", "b", 1, "running"), last])
        states = {(s.step_id, s.state) for s in store.get_steps("run000001")}
        assert states == {("a", "succeeded"), ("b", "running")}

    def test_steps_come_by_step_id_then_attempt(self, store: Store) -> None:
        store.create_run(new_run())
        keys = [("b", 2), ("a10", 1), ("B", 1), ("a2", 1), ("b", 1), ("a", 3), ("a", 1)]
        store.write(steps=[StepRecord("run000001", s, n, "succeeded") for s, n in keys])
        got = [(s.step_id, s.attempt) for s in store.get_steps("run000001")]
        assert got == sorted(keys)

    def test_steps_of_other_runs_stay_apart(self, store: Store) -> None:
        store.create_run(new_run("run-a"))
        store.create_run(new_run("run-b"))
        store.write(steps=[StepRecord("run-a", "s", 1, "ok"), StepRecord("run-b", "s", 1, "no")])
        assert [s.state for s in store.get_steps("run-a")] == ["ok"]
        assert [s.state for s in store.get_steps("run-b")] == ["no"]

    def test_a_step_of_a_run_never_created_is_an_error(self, store: Store) -> None:
        with pytest.raises(StoreError, match="run ghost: the run does not exist"):
            store.write(steps=[StepRecord("ghost", "a", 1, "running")])

    # -- events ---------------------------------------------------------------------------------

    def test_events_round_trip_in_seq_order(self, store: Store) -> None:
        store.create_run(new_run())
        events = [
            EventRecord("run000001", 3, T0 + 3, "step_succeeded", "a", 1, '{"out": "é"}'),
            EventRecord("run000001", 1, T0 + 1, "run_started"),
            EventRecord("run000001", 2, T0 + 2, "step_started", "a", 1, BIG_JSON),
        ]
        store.write(events=events[:2])
        store.write(events=events[2:])
        assert store.get_events("run000001") == sorted(events, key=lambda e: e.seq)

    def test_events_by_step(self, store: Store) -> None:
        store.create_run(new_run())
        kinds = [(1, None), (2, "a"), (3, "b"), (4, "a"), (5, None), (6, "b")]
        store.write(events=[EventRecord("run000001", n, T0 + n, "k", step) for n, step in kinds])
        assert [e.seq for e in store.get_events("run000001", step="a")] == [2, 4]
        assert [e.seq for e in store.get_events("run000001", step="b")] == [3, 6]
        assert store.get_events("run000001", step="zzz") == []

    def test_events_after_a_seq_are_only_the_newer_ones(self, store: Store) -> None:
        store.create_run(new_run())
        kinds = [(1, None), (2, "a"), (3, "b"), (4, "a"), (5, None)]
        store.write(events=[EventRecord("run000001", n, T0 + n, "k", step) for n, step in kinds])
        assert [e.seq for e in store.get_events("run000001", after=2)] == [3, 4, 5]
        assert [e.seq for e in store.get_events("run000001", step="a", after=2)] == [4]
        assert store.get_events("run000001", after=5) == []

    def test_a_duplicate_event_is_an_error(self, store: Store) -> None:
        store.create_run(new_run())
        store.write(events=[EventRecord("run000001", 1, T0, "run_started")])
        with pytest.raises(StoreError, match="already recorded"):
            store.write(events=[EventRecord("run000001", 1, T0, "again")])
        assert [e.kind for e in store.get_events("run000001")] == ["run_started"]

    def test_a_write_is_all_or_nothing(self, store: Store) -> None:
        store.create_run(new_run())
        store.write(events=[EventRecord("run000001", 1, T0, "run_started")])
        with pytest.raises(StoreError):
            store.write(
                runs=[RunUpdate("run000001", status="succeeded")],
                steps=[StepRecord("run000001", "a", 1, "succeeded")],
                events=[
                    EventRecord("run000001", 2, T0, "ok"),
                    EventRecord("run000001", 1, T0, "x"),
                ],
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

    def test_an_empty_write_does_nothing(self, store: Store) -> None:
        store.write()
        store.write(runs=[], steps=[], events=[])
        assert store.list_runs() == []

    # -- step logs ------------------------------------------------------------------------------

    def test_a_step_log_round_trips_in_attempt_then_seq_order(self, store: Store) -> None:
        store.create_run(new_run())
        pieces = [
            LogRecord("run000001", "a", 2, 1, "stdout", "second attempt\n"),
            LogRecord("run000001", "a", 1, 2, "stderr", UNICODE + "\n"),
            LogRecord("run000001", "a", 1, 1, "stdout", BIG_JSON),
            LogRecord("run000001", "a", 1, 3, "log", "WARNING root: careful\n"),
        ]
        store.write(logs=pieces[:2])
        store.write(logs=pieces[2:])
        assert store.get_logs("run000001", "a") == sorted(pieces, key=lambda p: (p.attempt, p.seq))

    def test_a_step_log_after_a_piece_is_only_the_newer_ones(self, store: Store) -> None:
        store.create_run(new_run())
        keys = [(1, 1), (1, 2), (2, 1), (2, 2), (3, 1)]
        store.write(logs=[LogRecord("run000001", "a", n, s, "stdout", "x") for n, s in keys])
        store.write(logs=[LogRecord("run000001", "b", 1, 9, "stdout", "other step")])
        assert [(p.attempt, p.seq) for p in store.get_logs("run000001", "a", after=(1, 2))] == [
            (2, 1),
            (2, 2),
            (3, 1),
        ]
        assert [(p.attempt, p.seq) for p in store.get_logs("run000001", "a", (2, 1))] == [
            (2, 2),
            (3, 1),
        ]
        assert store.get_logs("run000001", "a", after=(3, 1)) == []
        assert store.get_logs("run000001", "zzz") == []
        assert store.get_logs("no-such-run", "a") == []

    def test_a_log_piece_recorded_twice_or_of_no_run_is_an_error(self, store: Store) -> None:
        store.create_run(new_run())
        piece = LogRecord("run000001", "a", 1, 1, "stdout", "once")
        store.write(logs=[piece])
        with pytest.raises(StoreError, match="step logs of run run000001: one of them is already"):
            store.write(
                steps=[StepRecord("run000001", "a", 1, "failed")],
                logs=[LogRecord("run000001", "a", 1, 1, "stdout", "twice")],
            )
        assert store.get_logs("run000001", "a") == [piece]
        assert store.get_steps("run000001") == []  # all or nothing
        with pytest.raises(StoreError, match="run ghost: the run does not exist"):
            store.write(logs=[LogRecord("ghost", "a", 1, 1, "stdout", "x")])

    # -- answers --------------------------------------------------------------------------------

    def test_answers_round_trip_and_replace(self, store: Store) -> None:
        store.create_run(new_run())
        first = Answer("run000001", "approve", "rejected", "null", "not today " + UNICODE, T0)
        other = Answer("run000001", "sign-off", "approved", '{"by": "ana"}', None, T0 + 1)
        store.put_answer(first)
        store.put_answer(other)
        assert store.get_answers("run000001") == {"approve": first, "sign-off": other}
        again = Answer("run000001", "approve", "approved", '{"amount": 12.5}', None, T0 + 2)
        store.put_answer(again)
        assert store.get_answers("run000001") == {"approve": again, "sign-off": other}

    def test_answers_of_an_unknown_run_or_decision_are_refused(self, store: Store) -> None:
        with pytest.raises(StoreError, match="answer to step 'a' of run 'ghost'"):
            store.put_answer(Answer("ghost", "a", "approved"))
        store.create_run(new_run())
        with pytest.raises(StoreError, match="'maybe' is not 'approved' or 'rejected'"):
            store.put_answer(Answer("run000001", "a", "maybe"))
        assert store.get_answers("run000001") == {}

    # -- cache ----------------------------------------------------------------------------------

    def test_cache_round_trips_and_replaces(self, store: Store) -> None:
        entry = CacheEntry("key:é", BIG_JSON, T0, None, "run000001", "a")
        store.put_cache(entry)
        assert store.get_cache("key:é", T0 + 10**9) == entry  # no expiry: forever
        newer = CacheEntry("key:é", "2", T0 + 5, T0 + 65)
        store.put_cache(newer)
        assert store.get_cache("key:é", T0 + 6) == newer
        assert store.get_cache("other", T0) is None

    def test_a_cache_entry_expires_at_its_time(self, store: Store) -> None:
        store.put_cache(CacheEntry("k", "1", T0, expires_at=T0 + 60))
        assert store.get_cache("k", T0 + 59.999) is not None
        assert store.get_cache("k", T0 + 60) is None
        assert store.get_cache("k", T0 + 61) is None
        store.put_cache(CacheEntry("k", "2", T0 + 61, expires_at=T0 + 121))  # stored again: fresh
        fresh = store.get_cache("k", T0 + 62)
        assert fresh is not None and fresh.output_json == "2"

    def test_step_durations_average_the_latest_runs_of_a_workflow(self, store: Store) -> None:
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
