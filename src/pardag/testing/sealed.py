"""The store conformance suite, part five: organisations' sealed secrets.

``StoreSuite`` (``pardag.testing.stores``) inherits these tests. A store keeps what it is
given (ciphertext: ``pardag.vault`` seals values before a store sees them) under
(organisation, name); one organisation never reaches another's.
"""

from __future__ import annotations

from pardag.store import Store
from pardag.testing.records import T0

__all__ = ["SealedSuite"]


class SealedSuite:
    """Organisations' secrets (not collected itself)."""

    def test_a_secret_is_kept_replaced_and_listed_without_its_value(self, store: Store) -> None:
        assert store.put_secret("acme", "TOKEN", "sealed-1", T0)
        assert not store.put_secret("acme", "TOKEN", "sealed-2", T0 + 5)  # replaced, not new
        assert store.put_secret("acme", "API_KEY", "sealed-3", T0 + 6)
        assert store.secret_ciphertext("acme", "TOKEN") == "sealed-2"
        infos = store.list_secrets("acme")
        assert [(i.name, i.created_at, i.updated_at) for i in infos] == [
            ("API_KEY", T0 + 6, T0 + 6),
            ("TOKEN", T0, T0 + 5),
        ]
        assert store.secret_ciphertext("acme", None) in ("sealed-2", "sealed-3")

    def test_another_organisations_secret_is_never_reached(self, store: Store) -> None:
        store.put_secret("acme", "TOKEN", "acme-sealed", T0)
        store.put_secret("other", "TOKEN", "other-sealed", T0 + 1)
        assert store.secret_ciphertext("other", "TOKEN") == "other-sealed"
        assert [i.org for i in store.list_secrets("other")] == ["other"]
        assert store.secret_ciphertext("nobody", "TOKEN") is None
        assert store.secret_ciphertext("nobody", None) is None
        assert store.list_secrets("nobody") == []
        assert not store.delete_secret("nobody", "TOKEN")
        assert store.delete_secret("other", "TOKEN")
        assert not store.delete_secret("other", "TOKEN")  # already gone
        assert store.secret_ciphertext("other", "TOKEN") is None
        assert store.secret_ciphertext("acme", "TOKEN") == "acme-sealed"
