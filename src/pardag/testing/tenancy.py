"""The store conformance suite, part four: the service's API tokens and stored workflows.

``StoreSuite`` (``pardag.testing.stores``) inherits these tests. Every object belongs to one
organisation: a store asked for another organisation's workflow finds nothing.
"""

from __future__ import annotations

import pytest

from pardag.store import Store, StoreError
from pardag.store.tenancy import TokenRecord
from pardag.testing.records import T0

__all__ = ["TenancySuite"]


def token(
    token_id: str,
    org: str = "acme",
    role: str = "viewer",
    *,
    name: str = "",
    created_at: float = T0,
    expires_at: float | None = None,
) -> TokenRecord:
    """A token record whose hash is made from its id (unique per token)."""
    return TokenRecord(token_id, org, role, name, f"{token_id:0>64}", created_at, expires_at)


class TenancySuite:
    """Tokens and stored workflows (not collected itself)."""

    def test_a_token_is_found_by_its_hash_only(self, store: Store) -> None:
        made = token("tok-1", expires_at=T0 + 60, name="ci ü")
        store.create_token(made)
        assert store.token_by_hash(made.token_hash) == made
        assert store.token_by_hash("0" * 64) is None
        with pytest.raises(StoreError, match="cannot record token 'tok-1'"):
            store.create_token(made)

    def test_tokens_are_listed_by_organisation_and_revoked_once(self, store: Store) -> None:
        store.create_token(token("tok-a", created_at=T0 + 1))
        store.create_token(token("tok-b", org="other", role="admin"))
        store.create_token(token("tok-c", created_at=T0 + 2))
        assert [t.token_id for t in store.list_tokens("acme")] == ["tok-a", "tok-c"]
        assert [t.token_id for t in store.list_tokens()] == ["tok-b", "tok-a", "tok-c"]
        assert store.revoke_token("tok-a", T0 + 5)
        assert not store.revoke_token("tok-a", T0 + 6)  # already revoked: the time stays
        assert not store.revoke_token("tok-none", T0 + 6)
        found = store.token_by_hash(token("tok-a").token_hash)
        assert found is not None and found.revoked_at == T0 + 5

    def test_an_unknown_role_is_refused(self, store: Store) -> None:
        with pytest.raises(StoreError):
            store.create_token(token("tok-x", role="root"))
        assert store.list_tokens() == []

    def test_posting_a_name_again_adds_a_version(self, store: Store) -> None:
        first = store.put_workflow("acme", "etl", "yaml", "steps: {}\n", T0)
        second = store.put_workflow("acme", "etl", "yaml", "steps: {a: 1}\n", T0 + 1)
        other = store.put_workflow("acme", "backup", "json", "{}", T0 + 2)
        assert (first.version, second.version) == (1, 2)
        assert first.workflow_id == second.workflow_id != other.workflow_id
        versions = store.workflow_versions("acme", first.workflow_id)
        assert versions == [first, second]
        assert store.list_workflows("acme") == [other, second]  # the latest of each, by name

    def test_another_organisations_workflow_is_not_found(self, store: Store) -> None:
        mine = store.put_workflow("acme", "etl", "yaml", "secret-of-acme", T0)
        theirs = store.put_workflow("other", "etl", "yaml", "x", T0)
        assert mine.workflow_id != theirs.workflow_id  # one name, two organisations
        assert store.workflow_versions("other", mine.workflow_id) == []
        assert store.list_workflows("other") == [theirs]
        assert not store.delete_workflow("other", mine.workflow_id)
        assert store.workflow_versions("acme", mine.workflow_id) == [mine]
        assert store.delete_workflow("acme", mine.workflow_id)
        assert store.workflow_versions("acme", mine.workflow_id) == []
        assert store.list_workflows("acme") == []
