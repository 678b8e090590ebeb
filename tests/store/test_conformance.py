"""The store conformance suite (``pardag.testing.sqlstores``) on SQLite and on PostgreSQL.

Each test gets a store of its own: a SQLite file in ``tmp_path``, or a PostgreSQL schema of
its own (``postgres_url`` in conftest, with its PARDAG_SKIP_POSTGRES/PARDAG_TEST_POSTGRES).
"""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from pardag.store import open_store
from pardag.testing.sqlstores import SQLStoreSuite
from pardag.testing.stores import Opener
from tests.store.conftest import Raw


class BuiltIn(SQLStoreSuite):
    """A built-in backend: opened by its URL (``store_url``, one per class) as users do."""

    @pytest.fixture
    def opener(self, store_url: str) -> Opener:
        return functools.partial(open_store, store_url)

    @pytest.fixture
    def raw(self, store_url: str) -> Raw:
        return Raw(store_url)


class TestSQLite(BuiltIn):
    @pytest.fixture
    def store_url(self, tmp_path: Path) -> str:
        return str(tmp_path / "store" / "runs.db")


class TestPostgreSQL(BuiltIn):
    @pytest.fixture
    def store_url(self, postgres_url: str) -> str:
        return postgres_url
