"""The embedded PostgreSQL that the test session starts when no server answers (conftest).

Tested on every run, even where the machine's own server answers, so the fallback that a
fresh machine depends on is never found broken only there.
"""

from __future__ import annotations

import time

from pardag.store import RunRecord, open_store
from pardag.store.postgres import PostgresStore
from tests.store.conftest import embedded_server


def test_the_embedded_server_holds_a_pardag_store() -> None:
    with embedded_server() as server:
        url = server.get_uri()
        with open_store(url) as store:
            assert isinstance(store, PostgresStore)
            store.create_run(RunRecord("a" * 32, "wf", "running", time.time()))
        with open_store(url, create=False) as again:
            assert [r.run_id for r in again.list_runs()] == ["a" * 32]
