"""PostgreSQL for the store tests, and plain SQL beside a store (``Raw``).

Which server, first that applies:

1. ``PARDAG_SKIP_POSTGRES=1``: none; the PostgreSQL tests are skipped (say so on purpose).
2. ``PARDAG_TEST_POSTGRES=URL``: that server; the tests FAIL if it does not answer.
   ``PARDAG_TEST_POSTGRES=embedded`` forces step 4.
3. The machine's own server, ``postgresql://postgres@127.0.0.1:5432/test`` with trust
   authentication, when it answers.
4. Otherwise a real PostgreSQL from the ``pgserver`` wheel (a test dependency), started by the
   test session in a temporary folder and stopped at its end, so ``make test`` passes on a
   machine with only ``python3`` and ``make``. If even that cannot start, the tests FAIL
   saying why: CI never skips them silently.

Each PostgreSQL test gets a schema of its own, ``t_<random>``, named in the store URL's
``options=-csearch_path=...`` (the way a user puts pardag's tables in a schema), and dropped
afterwards: tests never see each other's rows, even when several people run the suite at once.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import tempfile
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

from pardag.store import mask_url

LOCAL_URL = "postgresql://postgres@127.0.0.1:5432/test"
EMBEDDED = "embedded"
HOW_TO_FIX = (
    "point PARDAG_TEST_POSTGRES at a server with a database you may create schemas in, "
    "or set PARDAG_SKIP_POSTGRES=1 to skip the PostgreSQL tests"
)


def answers(url: str) -> str | None:
    """None when ``url`` accepts a connection, else why not."""
    try:
        psycopg.connect(url, connect_timeout=5).close()
    except psycopg.Error as exc:
        return str(exc).strip() or type(exc).__name__
    return None


@contextlib.contextmanager
def embedded_server() -> Iterator[Any]:
    """A PostgreSQL server of the ``pgserver`` wheel, stopped and deleted afterwards (its
    ``get_uri()`` is a URL over a Unix socket in its data folder).

    The folder is not under pytest's ``tmp_path``: run as root, pgserver runs the server as
    a user of its own and opens the folder's parents to it, and a second pytest session
    starting meanwhile closes ``/tmp/pytest-of-root`` again (0700), failing ``initdb``.
    """
    with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
        warnings.simplefilter("ignore")
        import pgserver
    folder = Path(tempfile.mkdtemp(prefix="pardag-pgdata-"))
    try:
        server = pgserver.get_server(folder / "data", cleanup_mode="stop")
        try:
            yield server
        finally:
            server.cleanup()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres() -> Iterator[str]:
    """The test server's URL, once it answered (module docstring: which server)."""
    if os.environ.get("PARDAG_SKIP_POSTGRES") == "1":
        pytest.skip("PARDAG_SKIP_POSTGRES=1: the PostgreSQL store tests are skipped")
    chosen = os.environ.get("PARDAG_TEST_POSTGRES")
    if chosen and chosen != EMBEDDED:
        if (why := answers(chosen)) is not None:
            pytest.fail(f"PostgreSQL does not answer at {mask_url(chosen)}: {why}", pytrace=False)
        yield chosen
        return
    if chosen != EMBEDDED and answers(LOCAL_URL) is None:
        yield LOCAL_URL
        return
    with contextlib.ExitStack() as stack:
        try:
            server = stack.enter_context(embedded_server())
        except Exception as exc:
            pytest.fail(
                f"no PostgreSQL answers at {LOCAL_URL} and the embedded one (pgserver) did not "
                f"start: {exc}\n{HOW_TO_FIX}",
                pytrace=False,
            )
        yield server.get_uri()


def with_search_path(url: str, schema: str) -> str:
    """``url`` with ``options=-csearch_path=<schema>`` added to its query."""
    parts = urlsplit(url)
    option = "options=" + quote(f"-csearch_path={schema}", safe="")
    query = f"{parts.query}&{option}" if parts.query else option
    return urlunsplit(parts._replace(query=query))


@contextlib.contextmanager
def own_schema(server: str) -> Iterator[str]:
    """A URL of ``server`` whose tables land in a new, empty schema of their own (dropped
    afterwards)."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
    try:
        yield with_search_path(server, name)
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(name)))


@pytest.fixture
def postgres_url(postgres: str) -> Iterator[str]:
    """A URL whose tables land in a new, empty schema of their own (dropped afterwards)."""
    with own_schema(postgres) as url:
        yield url


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
