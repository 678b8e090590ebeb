"""Organisations' secrets over a real server (SQLite and PostgreSQL): set, listed and deleted
by admins, never returned; a run of the organisation gets its own value (and no other
organisation's), masked in events, logs, answers and every table of the store."""

from __future__ import annotations

import hashlib
import sqlite3
import stat
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from cryptography.fernet import Fernet
from psycopg import sql

from pardag.secrets import KEY_ENV
from pardag.store import Store
from pardag.tokens import issue
from pardag.vault import Keyring, set_secret
from tests.server.conftest import MARKER, PATIENCE, Served
from tests.server.test_serve import _start, _stop

ACME = "acme-tok-9f2c41d7e3b8"
RIVAL = MARKER + "-tok"

FLOW = """\
name: uses-secret
secrets: [TOKEN]
steps:
  show:
    kind: shell
    command: >-
      echo "templated {{ secrets.TOKEN }}";
      echo "environment $TOKEN" >&2;
      printf %s "$TOKEN" | sha256sum
"""


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def put(served: Served, who: str, name: str, value: str) -> Any:
    return served.call(who, "PUT", f"/api/secrets/{name}", json={"value": value})


def every_row(store: Store) -> str:
    """The text of every row of every table of ``store``'s database (and, for SQLite, the
    bytes of its files), read beside pardag."""
    if not store.url.startswith("postgresql:"):
        files = [Path(store.url), Path(store.url + "-wal")]
        raw = "".join(p.read_bytes().decode("latin-1") for p in files if p.exists())
        conn = sqlite3.connect(store.url)
        try:
            names = [
                n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            ]
            return raw + "".join(
                str(conn.execute(f'SELECT * FROM "{n}"').fetchall()) for n in names
            )
        finally:
            conn.close()
    with psycopg.connect(store.url, autocommit=True) as conn:
        names = [
            n
            for (n,) in conn.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = current_schema()"
            )
        ]
        query = sql.SQL("SELECT t::text FROM {} t")
        return "".join(str(conn.execute(query.format(sql.Identifier(n))).fetchall()) for n in names)


def test_a_secret_is_set_listed_and_deleted_but_never_returned(served: Served) -> None:
    first = put(served, "admin", "LISTED", "value-one-4411")
    again = put(served, "admin", "LISTED", "value-two-4422")
    assert first.status_code == again.status_code == 200
    assert first.json()["created"] is True and again.json()["created"] is False
    assert again.json()["updated_at"] >= first.json()["created_at"] == again.json()["created_at"]
    listed = served.call("admin", "GET", "/api/secrets")
    assert "LISTED" in [s["name"] for s in listed.json()["secrets"]]
    answers = [first, again, listed]
    assert set(listed.json()["secrets"][0]) == {"name", "created_at", "updated_at"}
    assert served.call("admin", "DELETE", "/api/secrets/LISTED").status_code == 200
    gone = served.call("admin", "DELETE", "/api/secrets/LISTED")
    assert gone.status_code == 404
    assert "there is no secret 'LISTED' in your organisation" in gone.json()["error"]["message"]
    for answer in answers:
        assert "value-one-4411" not in answer.text and "value-two-4422" not in answer.text
    names = [s["name"] for s in served.call("admin", "GET", "/api/secrets").json()["secrets"]]
    assert "LISTED" not in names


@pytest.mark.parametrize("who", ["viewer", "operator", "approver"])
def test_only_an_admin_reaches_the_secrets(served: Served, who: str) -> None:
    for method, path in [
        ("GET", "/api/secrets"),
        ("PUT", "/api/secrets/X"),
        ("DELETE", "/api/secrets/X"),
    ]:
        answer = served.call(who, method, path, json={"value": "some-value"})
        assert answer.status_code == 403, (method, answer.text)
        assert "needs the admin role" in answer.json()["error"]["message"]
    assert served.call(None, "GET", "/api/secrets").status_code == 401


def test_a_bad_name_or_a_short_value_is_refused_without_echoing_it(served: Served) -> None:
    bad = put(served, "admin", "no-good", "long-enough-value")
    assert bad.status_code == 400
    assert "'no-good' is not a valid secret name" in bad.json()["error"]["message"]
    short = put(served, "admin", "SHORT", "ab1")
    assert short.status_code == 422 and "ab1" not in short.text
    assert "value" in short.json()["error"]["message"]


def test_another_organisations_secret_is_neither_listed_nor_reached(served: Served) -> None:
    assert put(served, "rival", "RIVALS_ONLY", RIVAL).status_code == 200
    listed = served.call("admin", "GET", "/api/secrets")
    assert "RIVALS_ONLY" not in listed.text and MARKER not in listed.text
    assert served.call("admin", "DELETE", "/api/secrets/RIVALS_ONLY").status_code == 404
    names = [s["name"] for s in served.call("rival", "GET", "/api/secrets").json()["secrets"]]
    assert names.count("RIVALS_ONLY") == 1  # still there, for its own organisation


def run_flow(served: Served, who: str) -> dict[str, Any]:
    """A run of FLOW in ``who``'s organisation, through the API, to its end."""
    run_id = served.start(who, served.workflow(who, FLOW))
    return dict(served.wait_for(who, run_id, lambda r: r["status"] not in ("queued", "running")))


def test_a_run_gets_its_organisations_value_masked_everywhere(served: Served) -> None:
    assert put(served, "admin", "TOKEN", ACME).status_code == 200
    assert put(served, "rival", "TOKEN", RIVAL).status_code == 200  # one name, two values
    run = run_flow(served, "admin")
    assert run["status"] == "succeeded", run
    path = f"/api/runs/{run['id']}"
    answers = [
        served.call("viewer", "GET", path),
        served.call("viewer", "GET", f"{path}/steps/show"),
        served.call("viewer", "GET", f"{path}/logs?step=show"),
        served.call("viewer", "GET", f"{path}/events?after=0&wait=5"),
        served.call("viewer", "GET", f"{path}/events", headers={"Accept": "text/event-stream"}),
    ]
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    logs = answers[2].text
    assert digest(ACME) in logs  # the step read acme's value, exactly
    assert "templated ***" in logs and "environment ***" in logs
    text = "".join(a.text for a in answers) + every_row(served.store)
    assert ACME not in text and RIVAL not in text
    assert "uses-secret" in every_row(served.store)  # the scan did read the run's rows

    rival = run_flow(served, "rival")  # the same workflow in rival sees rival's value
    rival_logs = served.call("rival", "GET", f"/api/runs/{rival['id']}/logs?step=show").text
    assert rival["status"] == "succeeded" and digest(RIVAL) in rival_logs
    assert digest(ACME) not in rival_logs
    assert RIVAL not in every_row(served.store)


def test_a_run_of_an_organisation_without_the_secret_fails_saying_how_to_set_it(
    served: Served,
) -> None:
    served.tokens["lone"] = _token(served, "lone")
    run = run_flow(served, "lone")
    assert run["status"] == "failed"
    assert "the secret 'TOKEN' has no value" in run["error"]
    assert "pardag secret set lone TOKEN" in run["error"]
    assert ACME not in str(run) and RIVAL not in str(run)


def test_a_key_that_does_not_open_the_organisations_secrets_is_a_503_naming_it(
    served: Served,
) -> None:
    other = Keyring(environ={KEY_ENV: Fernet.generate_key().decode()})
    set_secret(served.store, other, "keyed", "OLD", "sealed-elsewhere", time.time())
    served.tokens["keyed"] = _token(served, "keyed")
    answer = put(served, "keyed", "NEW", "new-value-1234")
    assert answer.status_code == 503 and answer.json()["error"]["code"] == "secret_key"
    message = answer.json()["error"]["message"]
    assert "sealed with another key than the one from the key file" in message
    assert "--secret-key-file" in message and "new-value-1234" not in answer.text
    names = [s["name"] for s in served.call("keyed", "GET", "/api/secrets").json()["secrets"]]
    assert names == ["OLD"]


def _token(served: Served, org: str) -> str:
    text, _ = issue(served.store, org=org, role="admin", name=org, now=time.time())
    return text


def test_pardag_serve_seals_and_opens_with_its_secret_key_file(tmp_path: Path) -> None:
    key_file = tmp_path / "keys" / "service.key"
    process, url, token = _start(tmp_path / "runs.db", "--secret-key-file", str(key_file))
    try:
        auth = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=url, headers=auth, timeout=PATIENCE) as client:
            assert client.put("/api/secrets/TOKEN", json={"value": ACME}).status_code == 200
            posted = client.post("/api/workflows", json={"definition": FLOW}).json()
            run_id = client.post(f"/api/workflows/{posted['id']}/runs", json={}).json()["id"]
            deadline = time.monotonic() + PATIENCE
            while (run := client.get(f"/api/runs/{run_id}").json())["status"] in (
                "queued",
                "running",
            ):
                assert time.monotonic() < deadline, "the run never ended"
                time.sleep(0.1)
            logs = client.get(f"/api/runs/{run_id}/logs?step=show").text
    finally:
        code, err = _stop(process)
    assert code == 0, err
    assert run["status"] == "succeeded", run  # its worker opened it with the same key
    assert digest(ACME) in logs and ACME not in logs + err
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert not (tmp_path / ".pardag" / "secret.key").exists()  # not the default file
