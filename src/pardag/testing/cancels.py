"""The store conformance suite's cancel requests: a run a worker holds is cancelled by asking
that worker (``request_cancel``), which reads the requests beside its lease renewals
(``cancel_requests``).

``StoreSuite`` (``pardag.testing.stores``) inherits these tests; they use its ``store``
fixture. Times are given explicitly (``now``).
"""

from __future__ import annotations

from pardag.store import RunUpdate, Store
from pardag.testing.queues import LEASE, queued_run
from pardag.testing.records import T0, new_run

__all__ = ["CancelSuite"]


class CancelSuite:
    """The cancel request tests of ``StoreSuite`` (not collected itself)."""

    def test_a_cancel_request_reaches_the_worker_holding_the_run(self, store: Store) -> None:
        store.enqueue(queued_run("q-1"))
        store.enqueue(queued_run("q-2", created_at=T0 + 1))
        assert store.claim("w1", LEASE, T0) is not None
        assert store.claim("w2", LEASE, T0) is not None
        assert store.cancel_requests("w1") == {}
        assert store.request_cancel("q-1", "`pardag cancel`", T0 + 2)
        assert store.request_cancel("q-1", "token 'ops' over the API", T0 + 3)  # still asked
        assert store.cancel_requests("w1") == {"q-1": "`pardag cancel`"}  # the first asker
        assert store.cancel_requests("w2") == {}  # another worker's run is not its business
        found = store.get_run("q-1")
        assert found is not None
        assert (found.cancel_requested, found.cancel_requested_at) == ("`pardag cancel`", T0 + 2)
        assert store.release("q-1", "w1")
        assert store.cancel_requests("w1") == {}  # no longer held: nothing to stop

    def test_only_a_run_a_worker_holds_takes_a_cancel_request(self, store: Store) -> None:
        store.enqueue(queued_run("queued"))
        store.create_run(new_run("cli-run"))  # `pardag run`'s process: no lease
        store.create_run(new_run("paused", status="paused", worker="w0"))
        store.create_run(new_run("done", status="succeeded", worker="w0", lease_until=T0))
        for run_id in ("queued", "cli-run", "paused", "done", "ghost"):
            assert not store.request_cancel(run_id, "me", T0), run_id
            found = store.get_run(run_id)
            assert found is None or found.cancel_requested is None, run_id
        assert store.cancel_requests("w0") == {}

    def test_a_run_taken_over_keeps_its_cancel_request(self, store: Store) -> None:
        store.enqueue(queued_run("q-1"))
        assert store.claim("w1", LEASE, T0) is not None
        assert store.request_cancel("q-1", "me", T0 + 1)
        taken = store.claim("w2", LEASE, T0 + LEASE + 1)  # w1 died: its lease ran out
        assert taken is not None and taken.cancel_requested == "me"
        assert store.cancel_requests("w2") == {"q-1": "me"}
        assert store.cancel_requests("w1") == {}

    def test_queueing_again_or_reopening_drops_the_request(self, store: Store) -> None:
        store.create_run(new_run("p-1", worker="w1", lease_until=T0 + LEASE))
        assert store.request_cancel("p-1", "me", T0)
        store.write(
            runs=[RunUpdate("p-1", status="paused")]
        )  # it paused before its worker read the request
        assert store.requeue("p-1")
        found = store.get_run("p-1")
        assert found is not None and found.cancel_requested is None
        claimed = store.claim("w2", LEASE, T0 + 1)
        assert claimed is not None and store.cancel_requests("w2") == {}
        store.create_run(new_run("r-1", worker="w3", lease_until=T0 + LEASE))
        assert store.request_cancel("r-1", "me", T0)
        store.write(runs=[RunUpdate("r-1", status="cancelled", finished_at=T0 + 2)])
        assert store.reopen("r-1", "cancelled", "queued", "{}", None)
        found = store.get_run("r-1")
        assert found is not None and (found.cancel_requested, found.cancel_requested_at) == (
            None,
            None,
        )
