"""The run store: where runs, step attempts and events are recorded, and how to open one.

``open_store(url)`` picks the backend from the URL: a file path or ``sqlite:`` URL is an
embedded SQLite file (the default, ``.pardag/runs.db`` in the current directory), a
``postgresql://`` URL a PostgreSQL database. Both implement ``Store`` (``base.py``) and pass
one conformance suite; the PostgreSQL driver is imported only when a URL asks for it.
``instance_parent`` and ``instances_of`` (``pardag.instances``) tell which recorded steps are
the instances of a mapped step.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from pardag.instances import instance_parent, instances_of
from pardag.store.base import (
    Answer,
    CacheEntry,
    EventRecord,
    LogRecord,
    RunRecord,
    RunUpdate,
    StepRecord,
    Store,
    StoreError,
    mask_url,
)
from pardag.store.schema import SCHEMA_VERSION
from pardag.store.sqlite import SQLiteStore

__all__ = [
    "DEFAULT_PATH",
    "ENVIRONMENT",
    "SCHEMA_VERSION",
    "Answer",
    "CacheEntry",
    "EventRecord",
    "LogRecord",
    "RunRecord",
    "RunUpdate",
    "SQLiteStore",
    "StepRecord",
    "Store",
    "StoreError",
    "instance_parent",
    "instances_of",
    "mask_url",
    "open_store",
]

DEFAULT_PATH = Path(".pardag") / "runs.db"
"""The store used when nothing says otherwise, relative to the current directory."""
ENVIRONMENT = "PARDAG_STORE"
"""The environment variable naming the store when ``open_store`` gets no URL."""
ACCEPTED = (
    "a file path, sqlite:///absolute/path.db, sqlite:relative/path.db, "
    "or postgresql://user:password@host:5432/database"
)
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")


def open_store(url: str | os.PathLike[str] | None = None, *, create: bool = True) -> Store:
    """The store ``url`` names (None: ``$PARDAG_STORE``, else ``.pardag/runs.db`` here).

    ``create=False`` refuses to create a store that does not exist yet (for commands that
    only read); an existing store of an older schema is migrated either way. Raises
    StoreError naming the store (password masked) for anything unusable.
    """
    if url is None:
        url = os.environ.get(ENVIRONMENT) or None
    if url is None:
        url = DEFAULT_PATH
    if isinstance(url, os.PathLike):
        return _sqlite_store(url, create)
    scheme = _scheme(url)
    if scheme is None:
        return _sqlite_store(url, create)
    if scheme == "sqlite":
        return _sqlite_store(_sqlite_path(url), create)
    if scheme in ("postgresql", "postgres"):
        return _postgres_store("postgresql" + url[len(scheme) :], create)
    raise StoreError(f"store URL {mask_url(url)!r} is not supported; use {ACCEPTED}")


POSTGRES_EXTRA = "pip install 'pardag[postgres]'"
"""How to get the PostgreSQL driver, which is an extra: SQLite users never need it."""


def _postgres_store(url: str, create: bool) -> Store:
    """A ``PostgresStore``; psycopg is imported only here, and its absence is a StoreError."""
    try:
        import psycopg  # noqa: F401
    except ImportError as exc:
        raise StoreError(
            f"the store {mask_url(url)} is a PostgreSQL database, and PostgreSQL needs the "
            f"psycopg driver, which is not installed ({exc}); install it with: {POSTGRES_EXTRA}"
        ) from exc
    from pardag.store.postgres import PostgresStore

    return PostgresStore(url, create=create)


def _scheme(url: str) -> str | None:
    """The URL's scheme in lower case, or None for a plain path (``C:\\`` counts as a path)."""
    match = _SCHEME.match(url)
    if match is None or len(match.group(1)) == 1:
        return None
    return match.group(1).lower()


def _sqlite_path(url: str) -> str:
    """``sqlite:///abs/path.db`` -> ``/abs/path.db``; ``sqlite:rel.db`` -> ``rel.db``."""
    rest = url.split(":", 1)[1]
    if rest.startswith("//"):
        host, _, path = rest[2:].partition("/")
        if host not in ("", "localhost"):
            raise StoreError(
                f"store URL {url!r} names a host ({host}); SQLite stores are local files: "
                "write sqlite:///absolute/path.db or sqlite:relative/path.db"
            )
        rest = "/" + path
    if rest in ("", "/") or rest.endswith(":memory:"):
        raise StoreError(
            f"store URL {url!r} names no file; write sqlite:///absolute/path.db or "
            "sqlite:relative/path.db (an in-memory store would forget every run)"
        )
    return rest


def _sqlite_store(path: str | os.PathLike[str], create: bool) -> SQLiteStore:
    """An SQLite store; a ``.pardag`` folder it creates is private and ignored by git."""
    folder = Path(path).expanduser().absolute().parent
    if create and folder.name == DEFAULT_PATH.parent.name:
        _ignore_in_git(folder)
    return SQLiteStore(path, create=create)


def _ignore_in_git(directory: Path) -> None:
    """Create ``directory`` (0700: only its owner may read run history) with a ``.gitignore``
    of ``*``, so run history is never committed."""
    if directory.exists():
        return
    try:
        directory.mkdir(parents=True, mode=0o700)
        (directory / ".gitignore").write_text("# created by pardag: run history\n*\n")
    except FileExistsError:
        pass  # another process made it first
    except OSError as exc:
        raise StoreError(f"cannot create the run store's directory {directory}: {exc}") from exc
