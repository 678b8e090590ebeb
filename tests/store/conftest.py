"""PostgreSQL for the store tests, and plain SQL beside a store (``Raw``).

PostgreSQL is the real server on this machine (``postgresql://postgres@127.0.0.1:5432/test``
with trust authentication; ``PARDAG_TEST_POSTGRES`` points elsewhere). When it does not
answer, the PostgreSQL tests FAIL and say how to start it: CI must never skip them silently.
On a machine without PostgreSQL, ``PARDAG_SKIP_POSTGRES=1`` skips them instead.

Each PostgreSQL test gets a schema of its own, ``t_<random>``, named in the store URL's
``options=-csearch_path=...`` (the way a user puts pardag's tables in a schema), and dropped
afterwards: tests never see each other's rows, even when several people run the suite at once.
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

from pardag.store import mask_url

POSTGRES_URL = os.environ.get("PARDAG_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
HOW_TO_START = (
    "start it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start "
    "(.ci/run does this), or point PARDAG_TEST_POSTGRES at a server with a database you may "
    "create schemas in, or set PARDAG_SKIP_POSTGRES=1 to skip the PostgreSQL tests on a "
    "machine without PostgreSQL"
)


@pytest.fixture(scope="session")
def postgres() -> str:
    """The test server's URL, once it answered; fails (never skips) when it does not."""
    if os.environ.get("PARDAG_SKIP_POSTGRES") == "1":
        pytest.skip("PARDAG_SKIP_POSTGRES=1: the PostgreSQL store tests are skipped")
    try:
        psycopg.connect(POSTGRES_URL, connect_timeout=5).close()
    except psycopg.Error as exc:
        pytest.fail(
            f"PostgreSQL does not answer at {mask_url(POSTGRES_URL)}: {exc}\n{HOW_TO_START}",
            pytrace=False,
        )
    return POSTGRES_URL


def with_search_path(url: str, schema: str) -> str:
    """``url`` with ``options=-csearch_path=<schema>`` added to its query."""
    parts = urlsplit(url)
    option = "options=" + quote(f"-csearch_path={schema}", safe="")
    query = f"{parts.query}&{option}" if parts.query else option
    return urlunsplit(parts._replace(query=query))


@pytest.fixture
def postgres_url(postgres: str) -> Iterator[str]:
    """A URL whose tables land in a new, empty schema of their own (dropped afterwards)."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
    try:
        yield with_search_path(postgres, name)
    finally:
        with psycopg.connect(postgres, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(name)))


class Raw:
    """Plain SQL on a store's database, bypassing pardag: to build old or foreign databases
    and to look at what pardag wrote. Statements use ``?`` placeholders on both backends."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.postgres = url.startswith("postgresql:")

    def __call__(self, statement: str, *params: Any) -> list[tuple[Any, ...]]:
        if self.postgres:
            with psycopg.connect(self.url, autocommit=True) as conn:
                cursor = conn.execute(statement.replace("?", "%s"), params)
                return cursor.fetchall() if cursor.description else []
        Path(self.url).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.url, isolation_level=None)
        try:
            return conn.execute(statement, params).fetchall()
        finally:
            conn.close()
