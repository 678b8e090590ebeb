"""A real ``pardag serve`` service for the API tests: uvicorn on a loopback port, a worker.

One service per test module and backend (``served``: a SQLite file, and a PostgreSQL schema
of its own), started in a thread of the test process with ``pardag.server.Service`` (the very
class ``pardag serve`` runs) and stopped at the module's end. Clients are httpx, over TCP.
Tokens of two organisations: ``acme`` (one per role, plus an expired and a revoked one) and
``rival`` (an admin), whose objects carry ``MARKER`` strings that acme must never see.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from pardag.server.app import create_app
from pardag.server.service import Service
from pardag.store import Store, open_store
from pardag.tokens import issue
from pardag.vault import Keyring
from tests.store.conftest import own_schema, postgres  # noqa: F401  (a fixture)

PATIENCE = 60.0
"""Seconds a test waits for what must happen before it fails (a guard, not a measure)."""
MARKER = "rival-secret-marker-7f3a"
"""A string only the rival organisation's objects hold."""

FLOW = """\
name: chain
params: {who: world}
steps:
  a:
    kind: shell
    command: echo first {{ params.who }}
  b:
    kind: shell
    command: sleep 0.3; echo second
    depends_on: a
  c:
    kind: shell
    command: echo third
    depends_on: b
"""

GATED = """\
name: gated
steps:
  build:
    kind: shell
    command: echo built
  review:
    kind: approval
    depends_on: build
    prompt: Ship it?
    schema: {type: object, required: [target], properties: {target: {enum: [staging, prod]}}}
  ship:
    kind: shell
    command: echo shipped
    depends_on: review
"""


@dataclass
class Served:
    """A running service: its URL, its store, a token per name, and a client per token."""

    url: str
    store: Store
    tokens: dict[str, str] = field(default_factory=dict)
    service: Service | None = None

    def client(self, who: str | None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"} if who else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=PATIENCE)

    def call(self, who: str | None, method: str, path: str, **kw: Any) -> httpx.Response:
        with self.client(who) as client:
            return client.request(method, path, **kw)

    def workflow(self, who: str, definition: str, name: str | None = None) -> str:
        body = {"definition": definition, **({"name": name} if name else {})}
        answer = self.call(who, "POST", "/api/workflows", json=body)
        assert answer.status_code == 201, answer.text
        return str(answer.json()["id"])

    def start(self, who: str, workflow_id: str, **body: Any) -> str:
        answer = self.call(who, "POST", f"/api/workflows/{workflow_id}/runs", json=body)
        assert answer.status_code == 202, answer.text
        return str(answer.json()["id"])

    def frames(
        self,
        path: str,
        last: int | None = None,
        until: Callable[[list[Any]], bool] = lambda got: False,
        who: str = "viewer",
    ) -> list[Any]:
        """(id, event, data) of the SSE frames of the stream at ``path``, until ``until(got)``
        (then the connection is dropped, as a client that goes away) or the stream ends."""
        headers = {"Accept": "text/event-stream"}
        if last is not None:
            headers["Last-Event-ID"] = str(last)
        out: list[Any] = []
        with self.client(who) as client, client.stream("GET", path, headers=headers) as answer:
            assert answer.status_code == 200, answer.read()
            assert answer.headers["content-type"].startswith("text/event-stream")
            fields: dict[str, str] = {}
            for line in answer.iter_lines():
                if line.startswith(":"):
                    continue
                if line:
                    key, _, value = line.partition(": ")
                    fields[key] = value
                    continue
                if fields:
                    seq = int(fields["id"]) if "id" in fields else None
                    out.append((seq, fields.get("event"), json.loads(fields["data"])))
                    fields = {}
                if until(out):
                    break
        return out

    def wait_for(self, who: str, run_id: str, done: Callable[[dict[str, Any]], bool]) -> Any:
        deadline = time.monotonic() + PATIENCE
        while time.monotonic() < deadline:
            run = self.call(who, "GET", f"/api/runs/{run_id}").json()
            if done(run):
                return run
            time.sleep(0.05)
        pytest.fail(f"run {run_id} never got there: {run}")


def _tokens(store: Store) -> dict[str, str]:
    now = time.time()
    made = {}
    for role in ("viewer", "operator", "approver", "admin"):
        made[role], _ = issue(store, org="acme", role=role, name=role, now=now)
    made["rival"], _ = issue(store, org="rival", role="admin", name=MARKER, now=now)
    made["expired"], _ = issue(
        store, org="acme", role="admin", name="short", now=now - 100, expires_in=1
    )
    made["revoked"], record = issue(store, org="acme", role="admin", name="gone", now=now)
    store.revoke_token(record.token_id, now)
    return made


APP_OPTIONS = ("max_body", "poll", "recheck", "fallback")
"""The options ``serving`` gives ``create_app``; the others go to ``Service``."""


@contextlib.contextmanager
def serving(
    store: Store, keyring: Keyring | None = None, *, workers: int = 1, **options: Any
) -> Iterator[Served]:
    """``store`` served on a free loopback port, with ``workers`` workers, until the block
    ends (organisations' secrets sealed with ``keyring``'s key). ``options``: of
    ``create_app`` (``APP_OPTIONS``), else of ``Service``."""
    made = {name: options.pop(name) for name in APP_OPTIONS if name in options}
    app = create_app(store, **{"recheck": 0.2, **made})  # a revoked token: ends in 0.2 s
    service = Service(
        store,
        host="127.0.0.1",
        port=0,
        workers=workers,
        lease=5,
        poll=0.05,
        say=_quiet,
        app=app,
        keyring=keyring,
        **options,
    )
    thread = threading.Thread(target=service.run, name="pardag-test-service", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + PATIENCE
        while not service.server.started and time.monotonic() < deadline:
            time.sleep(0.01)
        yield Served(service.url, store, _tokens(store), service)
    finally:
        service.stop()
        thread.join(PATIENCE)


def _quiet(line: str) -> None:
    """The workers' lines are not the tests' business."""


@contextlib.contextmanager
def served_on(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, **options: Any
) -> Iterator[Served]:
    """A service (``serving``'s ``options``) on the backend ``request.param`` names: a
    SQLite file, or a PostgreSQL schema of its own."""
    with contextlib.ExitStack() as stack:
        if request.param == "sqlite":
            url = str(tmp_path_factory.mktemp("served") / "runs.db")
        else:
            url = stack.enter_context(own_schema(request.getfixturevalue("postgres")))
        store = stack.enter_context(open_store(url))
        keyring = Keyring(tmp_path_factory.mktemp("key") / "secret.key")  # made on first use
        yield stack.enter_context(serving(store, keyring, **options))


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    """A service on a SQLite file, then on PostgreSQL, for the tests of a module."""
    with served_on(request, tmp_path_factory) as service:
        yield service
