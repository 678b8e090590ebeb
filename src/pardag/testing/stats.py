"""The store conformance suite, part five: ``org_stats``, the figures of ``GET /metrics``.

``StoreSuite`` (``pardag.testing.stores``) inherits these tests. Every figure is one
organisation's: another's runs, workers and steps are never counted.
"""

from __future__ import annotations

from pardag.store import StepRecord, Store
from pardag.store.stats import WorkerStats
from pardag.testing.queues import queued_run
from pardag.testing.records import T0, new_run

__all__ = ["StatsSuite"]


def _ran(
    run_id: str, step_id: str, seconds: float, state: str = "succeeded", cached: bool = False
) -> StepRecord:
    """An attempt that took ``seconds``."""
    return StepRecord(
        run_id, step_id, 1, state, started_at=T0, finished_at=T0 + seconds, cached=cached
    )


class StatsSuite:
    """``org_stats``'s tests of ``StoreSuite`` (not collected itself)."""

    def test_runs_are_counted_by_status_in_one_organisation(self, store: Store) -> None:
        store.enqueue(queued_run("q-1", org="acme"))
        store.enqueue(queued_run("q-2", org="acme", created_at=T0 + 1))
        store.enqueue(queued_run("q-3", org="other"))
        store.create_run(new_run("r-1", org="acme", status="succeeded", finished_at=T0 + 5))
        assert store.org_stats("acme", T0).runs == {"queued": 2, "succeeded": 1}
        assert store.org_stats("other", T0).runs == {"queued": 1}
        assert store.org_stats("nobody", T0).runs == {}

    def test_workers_count_the_runs_they_hold_and_claimed_lately(self, store: Store) -> None:
        for i in range(2):
            store.enqueue(queued_run(f"q-{i}", org="acme", created_at=T0 + i))
        store.enqueue(queued_run("q-other", org="other"))
        claims = [store.claim(w, 60, T0 + 10 * n) for n, w in enumerate(("w1", "w2", "w3"), 1)]
        assert [(c.run_id, c.worker) for c in claims if c] == [
            ("q-0", "w1"),
            ("q-other", "w2"),  # fairness: the organisation never served goes next
            ("q-1", "w3"),
        ]
        store.release("q-0", "w1")  # w1 holds nothing now, but claimed at T0 + 10
        stats = store.org_stats("acme", T0 + 5)
        assert stats.workers == (WorkerStats("w1", 0, 1), WorkerStats("w3", 1, 1))
        later = store.org_stats("acme", T0 + 15)  # w1's claim is before the window
        assert later.workers == (WorkerStats("w3", 1, 1),)
        assert store.org_stats("other", T0).workers == (WorkerStats("w2", 1, 1),)

    def test_step_durations_are_those_that_ran_in_finished_runs(self, store: Store) -> None:
        store.create_run(new_run("done", org="acme", status="failed", finished_at=T0 + 9))
        store.create_run(new_run("going", org="acme", status="running"))
        store.create_run(new_run("theirs", org="other", status="succeeded", finished_at=T0))
        store.write(
            steps=[
                _ran("done", "a", 2.0),
                _ran("done", "b", 0.5, state="failed"),
                _ran("done", "hit", 0.01, cached=True),  # from the cache: did not run
                _ran("done", "no", 7.0, state="skipped"),
                _ran("going", "a", 3.0),  # its run has not finished
                _ran("theirs", "a", 4.0),
            ]
        )
        assert sorted(store.org_stats("acme", T0).durations) == [0.5, 2.0]
        assert store.org_stats("other", T0).durations == (4.0,)
