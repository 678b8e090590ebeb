"""The store conformance suite, part three: the run queue (enqueue, claim, renew, release).

``StoreSuite`` (``pardag.testing.stores``) inherits these tests; they use its ``store`` and
``opener`` fixtures. Times are given explicitly (``now``), so leases expire without waiting.
"""

from __future__ import annotations

import threading
from collections import Counter

import pytest

from pardag.store import RunRecord, Store, StoreError
from pardag.testing.records import T0, new_run

__all__ = ["QueueSuite", "queued_run"]

LEASE = 10.0


def queued_run(
    run_id: str, org: str = "default", created_at: float = T0, **fields: object
) -> RunRecord:
    """A queued run of workflow ``wf`` in ``org``."""
    return new_run(run_id, status="queued", org=org, created_at=created_at, **fields)


class QueueSuite:
    """The run queue's tests of ``StoreSuite`` (not collected itself)."""

    def test_a_queued_run_keeps_its_org_and_trigger_data(self, store: Store) -> None:
        run = queued_run("q-1", org="acme ü", trigger_json='{"body": "ü"}', params_json='{"n": 1}')
        assert store.enqueue(run) == "q-1"
        assert store.get_run("q-1") == run
        assert store.list_runs(status="queued") == [run]

    def test_only_a_queued_run_can_be_enqueued(self, store: Store) -> None:
        with pytest.raises(StoreError, match=r"status is 'running'.*as 'queued'"):
            store.enqueue(new_run("r-1"))
        assert store.get_run("r-1") is None

    def test_a_claim_takes_the_oldest_queued_run_with_a_lease(self, store: Store) -> None:
        assert store.claim("w1", LEASE, T0) is None
        store.enqueue(queued_run("q-new", created_at=T0 + 2))
        store.enqueue(queued_run("q-old", created_at=T0 + 1))
        got = store.claim("w1", LEASE, T0 + 5)
        assert got is not None and got.run_id == "q-old"
        assert (got.status, got.worker, got.claims) == ("running", "w1", 1)
        assert (got.lease_until, got.claimed_at) == (T0 + 5 + LEASE, T0 + 5)
        assert store.get_run("q-old") == got
        second = store.claim("w2", LEASE, T0 + 6)
        assert second is not None and second.run_id == "q-new"
        assert store.claim("w3", LEASE, T0 + 7) is None

    def test_runs_no_worker_holds_are_never_claimed(self, store: Store) -> None:
        store.create_run(new_run("cli-run"))  # running in `pardag run`'s process: no lease
        store.create_run(new_run("done", status="succeeded", worker="w0", lease_until=T0))
        store.create_run(new_run("paused", status="paused", worker="w0", lease_until=T0))
        assert store.claim("w1", LEASE, T0 + 1000) is None

    def test_organisations_take_turns(self, store: Store) -> None:
        for n in range(3):
            store.enqueue(queued_run(f"a{n}", org="a", created_at=T0 + n))
        store.enqueue(queued_run("b0", org="b", created_at=T0 + 10))
        store.enqueue(queued_run("c0", org="c", created_at=T0 + 11))
        order = []
        for n in range(6):
            got = store.claim("w", LEASE, T0 + 100 + n)
            order.append(got.run_id if got is not None else None)
        assert order == ["a0", "b0", "c0", "a1", "a2", None]

    def test_an_organisation_served_earlier_waits_for_one_never_served(self, store: Store) -> None:
        store.enqueue(queued_run("a0", org="a", created_at=T0))
        store.enqueue(queued_run("a1", org="a", created_at=T0 + 1))
        got = store.claim("w", LEASE, T0 + 5)
        assert got is not None and got.run_id == "a0"
        store.enqueue(queued_run("b0", org="b", created_at=T0 + 6))  # newer, but b's turn
        got = store.claim("w", LEASE, T0 + 7)
        assert got is not None and got.run_id == "b0"

    def test_an_expired_lease_is_taken_over_before_queued_runs(self, store: Store) -> None:
        store.enqueue(queued_run("q-1", created_at=T0))
        store.enqueue(queued_run("q-2", created_at=T0 + 1))
        first = store.claim("w1", LEASE, T0 + 2)
        assert first is not None and first.run_id == "q-1"
        live = store.claim("w2", LEASE, T0 + 3)  # w1's lease holds: the queued one
        assert live is not None and live.run_id == "q-2"
        store.enqueue(queued_run("q-3", created_at=T0 + 4))
        taken = store.claim("w3", LEASE, T0 + 2 + LEASE + 0.5)  # q-1's lease ran out
        assert taken is not None and taken.run_id == "q-1"
        assert (taken.worker, taken.claims, taken.status) == ("w3", 2, "running")
        assert not store.renew("q-1", "w1", LEASE, T0 + 13)  # w1 lost it
        assert store.renew("q-1", "w3", LEASE, T0 + 13)

    def test_renewing_keeps_the_run_from_other_workers(self, store: Store) -> None:
        store.enqueue(queued_run("q-1"))
        assert store.claim("w1", LEASE, T0) is not None
        assert store.renew("q-1", "w1", LEASE, T0 + 8)
        found = store.get_run("q-1")
        assert found is not None and found.lease_until == T0 + 8 + LEASE
        assert store.claim("w2", LEASE, T0 + 15) is None
        assert not store.renew("q-1", "w2", LEASE, T0 + 15)  # not w2's to renew
        assert not store.renew("nope", "w1", LEASE, T0 + 15)

    def test_a_released_run_is_not_taken_over(self, store: Store) -> None:
        store.enqueue(queued_run("q-1"))
        assert store.claim("w1", LEASE, T0) is not None
        assert not store.release("q-1", "w2")
        assert store.release("q-1", "w1")
        found = store.get_run("q-1")
        assert found is not None and found.lease_until is None and found.worker == "w1"
        assert store.claim("w2", LEASE, T0 + 1000) is None
        assert not store.renew("q-1", "w1", LEASE, T0 + 1)
        assert not store.release("q-1", "w1")

    def test_a_queued_run_is_cancelled_unless_a_worker_claimed_it(self, store: Store) -> None:
        store.enqueue(queued_run("q-1"))
        store.enqueue(queued_run("q-2", created_at=T0 + 1))
        assert store.cancel_queued("q-1", T0 + 5, "run cancelled: by you")
        found = store.get_run("q-1")
        assert found is not None
        assert (found.status, found.finished_at, found.error) == (
            "cancelled",
            T0 + 5,
            "run cancelled: by you",
        )
        claimed = store.claim("w1", LEASE, T0 + 6)
        assert claimed is not None and claimed.run_id == "q-2"
        assert not store.cancel_queued("q-2", T0 + 7, "too late")
        assert not store.cancel_queued("q-1", T0 + 7, "again")
        assert not store.cancel_queued("nope", T0 + 7, "no such run")
        still = store.get_run("q-2")
        assert still is not None and (still.status, still.error) == ("running", None)

    def test_concurrent_claims_take_each_run_once(self, store: Store, opener: object) -> None:
        runs, workers = 40, 6
        for n in range(runs):
            store.enqueue(queued_run(f"q{n:03d}", org=f"org{n % 3}", created_at=T0 + n))
        got: list[str] = []
        lock, start = threading.Lock(), threading.Barrier(workers)

        def work(name: str) -> None:
            own = opener()  # type: ignore[operator]
            try:
                start.wait()
                while (run := own.claim(name, LEASE, T0 + 100)) is not None:
                    with lock:
                        got.append(run.run_id)
            finally:
                own.close()

        threads = [threading.Thread(target=work, args=(f"w{n}",)) for n in range(workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        counts = Counter(got)
        assert sorted(counts) == [f"q{n:03d}" for n in range(runs)]
        assert set(counts.values()) == {1}
        claimed = store.list_runs(status="running", limit=0)
        assert len(claimed) == runs and all(r.claims == 1 for r in claimed)

    def test_only_a_paused_run_is_queued_again(self, store: Store) -> None:
        store.create_run(new_run("p-1", status="paused", worker="w0", claims=1))
        store.create_run(new_run("r-1", worker="w1", lease_until=T0 + LEASE))
        assert store.requeue("p-1")
        assert not store.requeue("p-1")  # queued now, not paused
        assert not store.requeue("r-1") and not store.requeue("ghost")
        got = store.claim("w2", LEASE, T0)
        assert got is not None and (got.run_id, got.status, got.claims) == ("p-1", "running", 2)

    def test_runs_list_by_organisation_a_page_after_another(self, store: Store) -> None:
        for n in range(5):
            store.create_run(new_run(f"a-{n}", org="acme", created_at=T0 + n // 2))
        store.create_run(new_run("b-1", org="other", created_at=T0 + 1))
        first = store.list_runs(org="acme", limit=2)
        assert [r.run_id for r in first] == ["a-4", "a-3"]
        last = first[-1]
        rest = store.list_runs(org="acme", limit=0, before=(last.created_at, last.run_id))
        assert [r.run_id for r in rest] == ["a-2", "a-1", "a-0"]  # ties split by id, none twice

    def test_a_finished_run_is_reopened_once(self, store: Store) -> None:
        done = new_run("r-1", status="failed", finished_at=T0 + 1, error="step 'b' failed")
        done.worker, done.lease_until, done.claims = "w1", T0 + 9, 2
        store.create_run(done)
        settings = '{"retried": {"count": 1}}'
        assert store.reopen("r-1", "failed", "queued", settings, None)
        found = store.get_run("r-1")
        assert found is not None
        assert (found.status, found.finished_at, found.error) == ("queued", None, None)
        assert (found.settings_json, found.lease_until, found.claims) == (settings, None, 0)
        assert not store.reopen("r-1", "failed", "running", "{}", "me")  # the other retry lost
        claimed = store.claim("w2", LEASE, T0 + 5)
        assert claimed is not None and (claimed.run_id, claimed.claims) == ("r-1", 1)
        assert not store.reopen("nope", "failed", "running", "{}", "me")

    def test_a_run_is_reopened_running_or_queued_only(self, store: Store) -> None:
        store.create_run(new_run("r-1", status="succeeded", finished_at=T0 + 1))
        with pytest.raises(StoreError, match=r"as 'paused'.*'running' or 'queued'"):
            store.reopen("r-1", "succeeded", "paused", "{}", None)
        assert store.reopen("r-1", "succeeded", "running", "{}", "host:1")
        found = store.get_run("r-1")
        assert found is not None and (found.status, found.owner) == ("running", "host:1")
