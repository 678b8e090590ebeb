"""What only the PostgreSQL store does: reaching the server, URLs, schemas, lost connections."""

from __future__ import annotations

import uuid
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from pardag.store import EventRecord, RunRecord, StepRecord, StoreError, open_store
from tests.store.conftest import with_search_path


def with_password(url: str, password: str) -> str:
    parts = urlsplit(url)
    user = parts.username or "postgres"
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:{password}@{host}"))


def test_an_unreachable_server_is_named_with_the_password_masked() -> None:
    url = "postgresql://ana:s3cret-pw@127.0.0.1:1/runs"  # nothing listens on port 1
    with pytest.raises(StoreError) as caught:
        open_store(url)
    message = str(caught.value)
    assert message.startswith("cannot reach the run store postgresql://ana:***@127.0.0.1:1/runs")
    assert "s3cret-pw" not in message
    assert "check that PostgreSQL runs there" in message


def test_a_database_that_does_not_exist_is_named(postgres: str) -> None:
    parts = urlsplit(postgres)
    url = urlunsplit(parts._replace(path="/no_such_database_for_pardag"))
    with pytest.raises(StoreError, match="no_such_database_for_pardag") as caught:
        open_store(url)
    assert "cannot reach the run store" in str(caught.value)


def test_a_bad_url_says_what_to_write() -> None:
    with pytest.raises(StoreError, match="is not a valid PostgreSQL URL") as caught:
        open_store("postgresql://ana:s3cret@127.0.0.1/db?no_such_option=1")
    assert "s3cret" not in str(caught.value) and "postgresql://ana:***@" in str(caught.value)


def test_the_store_url_never_shows_the_password(postgres_url: str) -> None:
    url = with_password(postgres_url, "s3cret-pw")  # trust authentication ignores it
    with open_store(url) as store:
        assert "s3cret-pw" not in store.url and ":***@" in store.url
        store.create_run(RunRecord("pw-run", "wf", "running", 1.0))
        with pytest.raises(StoreError) as caught:
            store.create_run(RunRecord("pw-run", "wf", "running", 1.0))
        assert "s3cret-pw" not in str(caught.value) and ":***@" in str(caught.value)


def test_a_search_path_naming_no_schema_is_explained(postgres: str) -> None:
    url = with_search_path(postgres, f"missing_{uuid.uuid4().hex[:8]}")
    with pytest.raises(StoreError, match=r"no schema to create tables in .*CREATE SCHEMA"):
        open_store(url)


def test_nul_characters_in_text_become_replacement_characters(postgres_url: str) -> None:
    with open_store(postgres_url) as store:
        store.create_run(RunRecord("nul", "wf", "failed", 1.0, error="bad\0byte"))
        store.write(steps=[StepRecord("nul", "a", 1, "failed", traceback="x\0y")])
        found = store.get_run("nul")
        assert found is not None and found.error == "bad\ufffdbyte"
        assert [s.traceback for s in store.get_steps("nul")] == ["x\ufffdy"]
        # read with a NUL as written: found, where the server refused it (a 503 in the API)
        store.create_run(RunRecord("nul2", "w\0f", "failed", 1.0))
        assert [r.run_id for r in store.list_runs(workflow="w\0f")] == ["nul2"]


def test_a_broken_connection_is_replaced(postgres: str, postgres_url: str) -> None:
    name = f"pardag_test_{uuid.uuid4().hex[:8]}"
    url = postgres_url + f"&application_name={name}"
    with open_store(url) as store:
        store.create_run(RunRecord("still-here", "wf", "running", 1.0))
        with psycopg.connect(postgres, autocommit=True) as admin:  # as a server restart would
            ended = admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = %s",
                (name,),
            ).fetchall()
        assert ended and all(ok for (ok,) in ended)
        found = store.get_run("still-here")  # a read tries once more on a new connection
        assert found is not None
        store.write(steps=[StepRecord("still-here", "a", 1, "running")])
        assert len(store.get_steps("still-here")) == 1


def test_several_stores_share_one_database_through_schemas(postgres_url: str) -> None:
    with open_store(postgres_url) as first:
        first.create_run(RunRecord("only-here", "wf", "running", 1.0))
    other_url = postgres_url.replace("search_path%3Dt_", "search_path%3Du_")
    assert other_url != postgres_url
    name = other_url.rsplit("%3D", 1)[1]
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{name}"')
    try:
        with open_store(other_url) as second:
            assert second.get_run("only-here") is None
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute(f'DROP SCHEMA "{name}" CASCADE')


def test_a_listener_whose_connection_broke_says_so_and_listens_again(postgres_url: str) -> None:
    with open_store(postgres_url) as store:
        listener = store.listen()
        assert listener is not None
        try:
            assert listener.wait(1.0) == {"*"}  # connected: anything may be new
            with psycopg.connect(postgres_url, autocommit=True) as admin:
                channel = admin.execute("SELECT current_schema()").fetchone()
                assert channel is not None
                admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE query LIKE %s AND pid <> pg_backend_pid()",
                    (f"LISTEN %pardag_events_{channel[0]}%",),
                )
            with pytest.raises(StoreError, match="listening for new events failed"):
                for _ in range(60):
                    listener.wait(0.5)
            assert listener.wait(1.0) == {"*"}  # listening again; what it missed: anything
            store.create_run(RunRecord("again", "wf", "running", 1.0))
            store.write(events=[EventRecord("again", 1, 1.0, "run_started")])
            assert listener.wait(10.0) == {"again"}
        finally:
            listener.close()
