"""What a client gets when the server itself fails: JSON, never a traceback or the failure's
text (which could hold anything); a run store that cannot answer is a 503 saying so."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pardag.errors import StoreError
from pardag.store import Store, open_store
from pardag.store.delegate import DelegatingStore
from pardag.store.tenancy import StoredWorkflow
from tests.server.conftest import Served, serving


class Failing(DelegatingStore):
    """A real store whose workflow listing fails: unexpectedly, or as an unreachable store."""

    def __init__(self, inner: Store, fail: Exception) -> None:
        super().__init__(inner)
        self.fail = fail

    def list_workflows(self, org: str) -> list[StoredWorkflow]:
        raise self.fail


@pytest.fixture(scope="module")
def failing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Served, Failing]]:
    path: Path = tmp_path_factory.mktemp("failing") / "runs.db"
    with open_store(path) as store:
        broken = Failing(store, RuntimeError("internal detail pdg_secret"))
        with serving(broken) as served:
            yield served, broken


def test_an_unexpected_failure_is_a_json_500_without_its_text(
    failing: tuple[Served, Failing],
) -> None:
    served, store = failing
    store.fail = RuntimeError("internal detail pdg_secret")
    answer = served.call("viewer", "GET", "/api/workflows")
    assert answer.status_code == 500
    error = answer.json()["error"]
    assert error["code"] == "internal" and "RuntimeError" in error["message"]
    assert "internal detail" not in answer.text and "Traceback" not in answer.text
    assert served.call("viewer", "GET", "/healthz").status_code == 200  # it serves on


def test_a_store_that_cannot_answer_is_a_503_saying_so(failing: tuple[Served, Failing]) -> None:
    served, store = failing
    store.fail = StoreError("run store x: reading it failed, the connection to the server broke")
    answer = served.call("viewer", "GET", "/api/workflows")
    assert answer.status_code == 503
    assert answer.json()["error"] == {
        "code": "store_unavailable",
        "message": "run store x: reading it failed, the connection to the server broke",
    }
    assert served.call("viewer", "GET", "/api/runs").status_code == 200  # the rest answers
