"""The store conformance suite, part five: the service's registered triggers and cron slots.

``StoreSuite`` (``pardag.testing.stores``) inherits these tests. A workflow stored again keeps
the triggers it declares again (ids, secrets); a webhook name is unique in its organisation;
one cron slot is claimed once, by one of any number of claimers at once.
"""

from __future__ import annotations

import threading

import pytest

from pardag.store import Store, StoreError
from pardag.store.triggers import TriggerRecord
from pardag.testing.records import T0

__all__ = ["TriggerSuite"]


def hook(ident: str, name: str, workflow: str = "wf-1", org: str = "acme") -> TriggerRecord:
    """A webhook record whose secret is made from its id."""
    return TriggerRecord(ident, org, workflow, "webhook", name, None, None, f"s-{ident}", T0)


def cron(
    ident: str, expr: str = "*/5 * * * *", workflow: str = "wf-1", org: str = "acme"
) -> TriggerRecord:
    """A schedule record in Paris time."""
    return TriggerRecord(ident, org, workflow, "cron", None, expr, "Europe/Paris", None, T0)


class TriggerSuite:
    """Triggers and firings (not collected itself)."""

    def test_storing_triggers_again_keeps_those_declared_again(self, store: Store) -> None:
        made = store.set_triggers("acme", "wf-1", [hook("t1", "orders"), cron("t2")])
        assert [t.trigger_id for t in made] == ["t1", "t2"]
        again = [hook("t3", "orders"), cron("t4", "0 6 * * *"), hook("t5", "refunds ü")]
        made = store.set_triggers("acme", "wf-1", again)
        assert [t.trigger_id for t in made] == ["t4", "t5"]  # orders is kept, not made again
        kept = {t.trigger_id: t for t in store.list_triggers("acme", "wf-1")}
        assert set(kept) == {"t1", "t4", "t5"}  # the */5 schedule is gone
        assert kept["t1"].secret == "s-t1"  # its callers' secret still works
        assert store.webhook("acme", "orders") == hook("t1", "orders")
        assert [t.trigger_id for t in store.schedules()] == ["t4"]
        assert store.set_triggers("acme", "wf-1", []) == []
        assert store.list_triggers("acme") == []

    def test_a_webhook_name_is_one_workflows_in_its_organisation(self, store: Store) -> None:
        store.set_triggers("acme", "wf-1", [hook("t1", "orders")])
        with pytest.raises(StoreError, match="webhook 'orders' belongs to another workflow"):
            store.set_triggers("acme", "wf-2", [hook("t2", "orders")])
        assert store.list_triggers("acme", "wf-2") == []
        store.set_triggers("other", "wf-9", [hook("t3", "orders", "wf-9", "other")])
        found = store.webhook("other", "orders")
        assert found is not None and found.secret == "s-t3"
        assert store.webhook("acme", "nothing") is None
        assert store.webhook("third", "orders") is None  # another organisation's: not found
        assert [t.trigger_id for t in store.list_triggers("other")] == ["t3"]

    def test_a_slot_is_claimed_once_and_never_after_a_later_one(self, store: Store) -> None:
        store.set_triggers("acme", "wf-1", [cron("t1"), cron("t2", "0 * * * *")])
        assert store.claim_slot("t1", T0 + 300, T0 + 301)
        assert not store.claim_slot("t1", T0 + 300, T0 + 302)  # fired already
        assert store.claim_slot("t2", T0 + 300, T0 + 303)  # another trigger's slot
        assert not store.claim_slot("t1", T0, T0 + 304)  # an earlier slot: too late
        assert store.claim_slot("t1", T0 + 600, T0 + 601)
        assert not store.claim_slot("ghost", T0 + 600, T0 + 601)  # no such trigger

    def test_a_removed_trigger_fires_nothing(self, store: Store) -> None:
        stored = store.put_workflow("acme", "etl", "yaml", "steps: {}\n", T0)
        store.set_triggers("acme", stored.workflow_id, [cron("t1", workflow=stored.workflow_id)])
        assert store.claim_slot("t1", T0 + 300, T0 + 300)
        assert store.delete_workflow("acme", stored.workflow_id)
        assert store.list_triggers("acme") == [] and store.schedules() == []
        assert not store.claim_slot("t1", T0 + 600, T0 + 600)

    def test_of_many_claims_of_one_slot_at_once_one_wins(self, store: Store) -> None:
        store.set_triggers("acme", "wf-1", [cron("t1")])
        wins: list[bool] = []
        start = threading.Barrier(8)

        def claim() -> None:
            start.wait()
            wins.append(store.claim_slot("t1", T0 + 300, T0 + 300))

        threads = [threading.Thread(target=claim) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(wins) == [False] * 7 + [True]

    def test_claimers_racing_over_consecutive_slots_win_each_once(self, store: Store) -> None:
        """Claimers a slot apart: each slot is won once, even while a later one is claimed
        (pruning a slot's row as soon as a later one fired let a waiting claim in again)."""
        store.set_triggers("acme", "wf-1", [cron("t1", "* * * * *")])
        won: list[float] = []
        start = threading.Barrier(6)

        def claim() -> None:
            start.wait()
            for slot in range(1, 121):
                if store.claim_slot("t1", T0 + 60 * slot, T0 + 60 * slot):
                    won.append(slot)

        threads = [threading.Thread(target=claim) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(won) == list(range(1, 121))
