"""The conformance suite of a store on pardag's SQL schema: ``StoreSuite`` and more.

A store built on ``pardag.store.schema`` (its tables, versions and migrations), as pardag's
SQLite and PostgreSQL stores are, must also create, migrate and refuse databases as pardag
does; these tests look at the database itself, beside the store.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from pardag.store import SCHEMA_VERSION, Store, StoreError, schema
from pardag.testing.feeds import FeedMigrationSuite
from pardag.testing.records import T0, new_run
from pardag.testing.stores import Opener, StoreSuite

__all__ = ["RawSQL", "SQLStoreSuite"]

RawSQL = Callable[..., list[tuple[Any, ...]]]
"""``raw(statement, *params)``: the rows of one SQL statement run beside the store."""


class SQLStoreSuite(StoreSuite, FeedMigrationSuite):
    """``StoreSuite`` and the tests of a store on pardag's SQL schema (``pardag.store.schema``:
    its tables, versions and migrations), as pardag's SQLite and PostgreSQL stores are.

    Besides ``opener``, which must take ``create=False`` like ``pardag.store.open_store``
    (then refuse to create a store that does not exist), a subclass provides the fixture
    ``raw``: a callable that runs one plain SQL statement with ``?`` placeholders on the
    store's database, bypassing the store, and returns the rows (``[]`` for none).
    """

    @pytest.fixture
    def raw(self) -> RawSQL:
        pytest.fail(f"{type(self).__name__} must define the fixture 'raw'", pytrace=False)

    def test_a_new_store_records_the_latest_schema_version(self, store: Store, raw: RawSQL) -> None:
        versions = raw("SELECT version FROM pardag_schema ORDER BY version")
        assert [v for (v,) in versions] == list(range(1, SCHEMA_VERSION + 1))

    def test_an_older_database_is_migrated_and_keeps_its_rows(
        self, opener: Opener, raw: RawSQL, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        with opener() as old:
            old.create_run(new_run("kept-run"))
        later = schema.Migration(
            SCHEMA_VERSION + 1,
            "a later release adds a column",
            ("ALTER TABLE runs ADD COLUMN note TEXT", "UPDATE runs SET note = 'migrated'"),
        )
        monkeypatch.setattr(schema, "MIGRATIONS", [*schema.MIGRATIONS, later])
        with opener(create=False) as new:
            assert new.get_run("kept-run") == new_run("kept-run")
        assert raw("SELECT note FROM runs") == [("migrated",)]
        versions = [v for (v,) in raw("SELECT version FROM pardag_schema ORDER BY version")]
        assert versions == list(range(1, SCHEMA_VERSION + 2))
        with opener():  # already migrated: not applied twice
            pass
        assert raw("SELECT count(*) FROM pardag_schema") == [(SCHEMA_VERSION + 1,)]

    def test_a_failing_migration_leaves_the_database_as_it_was(
        self, opener: Opener, raw: RawSQL, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        with opener() as old:
            old.create_run(new_run("kept-run"))
        broken = schema.Migration(
            SCHEMA_VERSION + 1,
            "half works",
            ("ALTER TABLE runs ADD COLUMN note TEXT", "THIS IS NOT SQL"),
        )
        monkeypatch.setattr(schema, "MIGRATIONS", [*schema.MIGRATIONS, broken])
        with pytest.raises(StoreError, match="opening it failed"):
            opener()
        monkeypatch.undo()
        assert raw("SELECT max(version) FROM pardag_schema") == [(SCHEMA_VERSION,)]
        with pytest.raises(Exception, match="note"):  # the first statement was rolled back too
            raw("SELECT note FROM runs")
        with opener() as again:
            assert again.get_run("kept-run") == new_run("kept-run")

    def test_a_newer_database_is_refused_untouched(self, opener: Opener, raw: RawSQL) -> None:
        with opener() as current:
            current.create_run(new_run("kept-run"))
        raw("INSERT INTO pardag_schema VALUES (?, ?, ?)", SCHEMA_VERSION + 41, T0, "pardag 9.0")
        before = raw("SELECT * FROM runs")
        with pytest.raises(StoreError) as caught:
            opener()
        message = str(caught.value)
        assert f"newer pardag (pardag 9.0: schema {SCHEMA_VERSION + 41}, " in message
        assert f"this one knows {SCHEMA_VERSION}); upgrade pardag" in message
        assert raw("SELECT * FROM runs") == before
        assert raw("SELECT max(version) FROM pardag_schema") == [(SCHEMA_VERSION + 41,)]

    def test_tables_pardag_did_not_create_are_left_alone(self, opener: Opener, raw: RawSQL) -> None:
        raw("CREATE TABLE runs (id INTEGER, mine TEXT)")
        raw("INSERT INTO runs VALUES (1, 'theirs')")
        with pytest.raises(
            StoreError, match=r"is not a pardag run store: it holds tables \(runs\)"
        ):
            opener()
        assert raw("SELECT * FROM runs") == [(1, "theirs")]
        with pytest.raises(Exception, match="pardag_schema"):
            raw("SELECT * FROM pardag_schema")

    def test_create_false_refuses_to_create_a_store(self, opener: Opener, raw: RawSQL) -> None:
        raw("SELECT 1")  # the database (or an empty file) exists, but holds no store
        with pytest.raises(StoreError, match="no pardag run store"):
            opener(create=False)
        with pytest.raises(Exception, match="pardag_schema"):
            raw("SELECT * FROM pardag_schema")
