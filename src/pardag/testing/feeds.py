"""The store conformance suite, part five: the global event number and its listeners.

``StoreSuite`` inherits ``FeedSuite``; ``SQLStoreSuite`` adds ``FeedMigrationSuite``. Every
event gets a number across runs (``gseq``) in commit order, so that a follower reading the
events above the last number it saw never misses one, and an organisation's events are read
without any other organisation's.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from pardag.store import EventRecord, Store, feed, schema
from pardag.testing.records import T0, new_run
from pardag.testing.storelife import Opener

__all__ = ["FeedMigrationSuite", "FeedSuite"]

WRITERS, WRITES = 4, 60
"""Threads writing at once, and the writes of each, in the follower test."""


def _event(run_id: str, seq: int, kind: str = "step_succeeded") -> EventRecord:
    return EventRecord(run_id, seq, T0 + seq, kind, "a", 1, f'{{"n": {seq}}}')


class FeedSuite:
    """Numbers across runs, by organisation, and listeners (not collected itself)."""

    def test_events_are_numbered_across_runs_and_read_by_organisation(self, store: Store) -> None:
        for run_id, org in (("mine-1", "acme"), ("theirs", "other"), ("mine-2", "acme")):
            store.create_run(new_run(run_id, org=org))
        store.write(events=[_event("mine-1", 1), _event("theirs", 1), _event("mine-2", 1)])
        store.write(events=[_event("mine-2", 2)])
        mine = store.org_events("acme")
        assert [(e.run_id, e.seq) for e in mine] == [("mine-1", 1), ("mine-2", 1), ("mine-2", 2)]
        numbers = [e.gseq or 0 for e in mine]
        assert numbers == sorted(numbers) and len(set(numbers)) == 3 and 0 not in numbers
        assert [e.run_id for e in store.org_events("other")] == ["theirs"]
        assert store.org_events("acme", after=numbers[0], limit=1) == [_event("mine-2", 1)]
        assert [e.gseq for e in store.get_events("mine-2")] == numbers[1:]
        assert store.org_events("nobody") == []

    def test_a_follower_misses_nothing_while_writers_commit_at_once(self, opener: Opener) -> None:
        """Numbers are taken in commit order: a number committed late is never below one a
        follower has already read past."""
        stores = [opener() for _ in range(WRITERS + 1)]
        try:
            for w in range(WRITERS):
                stores[0].create_run(new_run(f"run-{w}", org="acme"))
            threads = [
                threading.Thread(target=_write_many, args=(stores[w], f"run-{w}"))
                for w in range(WRITERS)
            ]
            for thread in threads:
                thread.start()
            seen = _follow(stores[WRITERS], lambda: any(t.is_alive() for t in threads))
            for thread in threads:
                thread.join()
            seen += _follow(stores[WRITERS], lambda: False, after=seen[-1][2] if seen else 0)
        finally:
            for opened in stores:
                opened.close()
        keys = [(run, seq) for run, seq, _ in seen]
        assert len(keys) == len(set(keys)) == WRITERS * WRITES * 2  # none missed, none twice

    def test_a_listener_hears_the_runs_another_store_commits(
        self, store: Store, opener: Opener
    ) -> None:
        listener = store.listen()
        if listener is None:
            return  # this store cannot notify: its readers poll (the server's streams do)
        try:
            assert listener.wait(1.0) == {"*"}  # just connected: anything may be new
            store.create_run(new_run("heard", org="acme"))
            with opener() as other:
                other.write(events=[_event("heard", 1)])
            got: set[str] = set()
            deadline = time.monotonic() + 30
            while not got and time.monotonic() < deadline:
                got = listener.wait(1.0)
            assert got == {"heard"}
            assert listener.wait(0.05) == set()  # each notice heard once
        finally:
            listener.close()


def _write_many(store: Store, run_id: str) -> None:
    for n in range(WRITES):
        store.write(events=[_event(run_id, 2 * n + 1), _event(run_id, 2 * n + 2)])


def _follow(store: Store, going: Callable[[], bool], after: int = 0) -> list[tuple[str, int, int]]:
    """What a follower reads, as the stream of all runs does: the events above the last seen."""
    seen: list[tuple[str, int, int]] = []
    while True:
        alive = going()
        events = store.org_events("acme", after=after)
        for event in events:
            assert event.gseq is not None and event.gseq > after
            seen.append((event.run_id, event.seq, event.gseq))
            after = event.gseq
        if not alive and not events:
            return seen


class FeedMigrationSuite:
    """A store written before events had numbers (not collected itself)."""

    def test_events_recorded_before_get_numbers_in_the_order_they_happened(
        self, opener: Opener, raw: Callable[..., list[Any]], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        version = next(m.version for m in schema.MIGRATIONS if m.statements is feed.MIGRATION)
        with monkeypatch.context() as before:
            before.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[: version - 1])
            with opener():  # a database of that version; its run as that pardag wrote it
                pass
            raw(
                "INSERT INTO runs (run_id, workflow, status, created_at, definition, "
                "definition_format, definition_hash, settings_json, params_json) "
                "VALUES (?, 'wf', 'running', ?, '', 'python', '', '{}', '{}')",
                "old-run",
                T0,
            )
            for seq, at in ((1, T0 + 5), (2, T0 + 1), (3, T0 + 9)):
                raw(
                    "INSERT INTO events (run_id, seq, at, kind, attempt, data_json) "
                    "VALUES (?, ?, ?, 'x', 0, '{}')",
                    "old-run",
                    seq,
                    at,
                )
        with opener() as new:
            assert [(e.seq, e.gseq) for e in new.get_events("old-run")] == [(1, 2), (2, 1), (3, 3)]
            new.write(events=[_event("old-run", 4)])
            assert [e.gseq for e in new.org_events("default", after=3)] == [4]
