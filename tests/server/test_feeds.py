"""The shared feed of all runs (``server.feeds``) on a real SQLite store, with a tail so short
that it is trimmed while streams follow: a stream at any cursor (in the tail, behind it,
joining late) gets every event after it once, in order, and never another organisation's.
"""

from __future__ import annotations

import time
from pathlib import Path

import anyio
import pytest

from pardag.server import feeds
from pardag.server.feeds import Hub, Subscription
from pardag.server.wakeups import Wakeups
from pardag.store import EventRecord, RunRecord, Store, open_store


def _write(store: Store, run_id: str, seqs: range) -> None:
    store.write(events=[EventRecord(run_id, n, time.time(), "step_succeeded") for n in seqs])


async def _drain(subscription: Subscription, after: int, until: int) -> list[int]:
    """Every cursor a stream at ``after`` pulls, up to ``until``."""
    got: list[int] = []
    while after < until:
        _, items = await subscription.pull(after)
        if items:
            got += [i.cursor for i in items]
            after = items[-1].cursor
        else:
            await subscription.idle(0.05)
    return got


def test_streams_at_any_cursor_get_every_event_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(feeds, "TAIL", 3)
    monkeypatch.setattr(feeds, "PAGE", 2)
    with open_store(tmp_path / "runs.db") as store:
        for run_id, org in (("mine", "acme"), ("theirs", "rival")):
            store.create_run(RunRecord(run_id, "wf", "running", time.time(), org=org))
        for n in range(1, 11):  # interleaved: acme's numbers are not consecutive
            _write(store, "mine", range(n, n + 1))
            _write(store, "theirs", range(n, n + 1))
        mine = [e.gseq or 0 for e in store.org_events("acme")]

        async def follow() -> tuple[list[int], list[int], list[int]]:
            hub = Hub(store, Wakeups(store, poll=0.01))
            with hub.subscribe("acme", 0) as first, hub.subscribe("acme", mine[5]) as second:
                got_first = await _drain(first, 0, mine[-1])
                got_second = await _drain(second, mine[5], mine[-1])
                _write(store, "mine", range(11, 21))  # more while they follow: trimmed
                last = store.org_events("acme", after=mine[-1], limit=100)[-1].gseq or 0
                with hub.subscribe("acme", 0) as late:  # far behind the trimmed tail
                    got_late = await _drain(late, 0, last)
                got_first += await _drain(first, mine[-1], last)
            assert hub.feeds == {}  # dropped with its last stream
            return got_first, got_second, got_late

        got_first, got_second, got_late = anyio.run(follow)
        everything = [e.gseq for e in store.org_events("acme", limit=100)]
    assert got_first == got_late == everything
    assert got_second == everything[6:10]
