"""Secrets (issue 13 §7): four secrets planted four ways, every sink grepped for them.

The workflow prints its secrets, returns them in outputs, logs them, fails with them in a
Python exception, in a shell step's stderr tail and in an HTTP URL's query (against a real
server on loopback). Run through ``pardag run`` and through the Python API, on SQLite and on
PostgreSQL; then the store's raw bytes (the database, its WAL), ``show --json``, ``logs``,
``run --json``, the ``--events`` file, the CLI's stdout and stderr and the ``RunResult``
must hold no part of any secret, and ``***`` where each was.
"""

# ruff: noqa: E501 (the workflow file's long lines)
from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import pardag
from pardag.secrets import MASK, Secret

# Each value carries a token (S3crA..) found in every spelling of it (JSON, URL, repr):
# grepping for the token finds a leak whatever escaping it went through.
VALUES = {
    "A": "alpha-S3crA-1111",
    "B": "bravo/S3crB+2222",  # '/' and '+': URL-encoded in the HTTP step's URL
    "C": 'charlie "S3crC" 3333',  # '"': escaped in JSON, in the store and the events
    "D": "delta_S3crD_4444",
}
TOKENS = ["S3crA", "S3crB", "S3crC", "S3crD"]

FLOW = """\
name: leaky
secrets: [A, B, C, D]
params:
  c: none
  port: 0
execution:
  on_failure: continue
steps:
  shout:
    kind: shell
    command: 'echo "A=$A C=$C D=$D"; echo B= {{ secrets.B }} P= {{ params.c }}; echo warn {{ secrets.A }} >&2'
  give:
    kind: python
    function: "leakmod:give"
    depends_on: [shout]
  boom:
    kind: python
    function: "leakmod:boom"
    depends_on: [shout]
  tail:
    kind: shell
    command: 'echo "stderr tail $B $C $D" >&2; exit 3'
  fetch:
    kind: http
    url: "http://127.0.0.1:{{ params.port }}/missing?token={{ secrets.D }}&b={{ secrets.B }}&a={{ secrets.A }}"
"""

LEAKMOD = """\
import logging

def give(shout, params):
    logging.getLogger("leak").warning("logged %s / %s", shout, params["c"])
    print("printed", shout)
    return {"shell": shout, "param": params["c"], "nested": [{"again": shout}]}

def boom(shout):
    raise RuntimeError("boom: " + str(shout))
"""


class _NotFound(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[int]:
    """A real HTTP server on loopback answering 404 to everything; its port."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NotFound)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd.server_address[1]
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def flow(tmp_path: Path) -> Path:
    (tmp_path / ".git").mkdir()
    (tmp_path / "leakmod.py").write_text(LEAKMOD)
    path = tmp_path / "leaky.yaml"
    path.write_text(FLOW)
    return path


def secrets_file(directory: Path, names: str) -> Path:
    path = directory / "secrets.env"
    path.write_text("".join(f"{n}={json.dumps(VALUES[n])}\n" for n in names))
    path.chmod(0o600)
    return path


def leaks(text: str | bytes) -> list[str]:
    data = text.encode() if isinstance(text, str) else text
    return [t for t in TOKENS if t.encode() in data]


def store_bytes(directory: Path) -> bytes:
    """The raw bytes of every file of the SQLite store: the database, its WAL, its SHM."""
    files = sorted(directory.glob("runs.db*"))
    assert files, f"no store in {directory}"
    return b"".join(f.read_bytes() for f in files)


def clean_env(**extra: str) -> dict[str, str]:
    """No PARDAG_ settings; this pardag's sources first on the path (a worktree's too)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARDAG_")}
    source = str(Path(pardag.__file__).resolve().parents[1])
    return {**env, "COLUMNS": "200", "PYTHONPATH": source, **extra}


def cli(cwd: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pardag", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_no_sink_of_a_cli_run_holds_a_secret(flow: Path, server: int) -> None:
    project = flow.parent
    env = clean_env(PARDAG_SECRET_A=VALUES["A"])
    file = secrets_file(project, "BCD")
    run = cli(
        project,
        *("run", flow.name, "--json", "--events", "events.jsonl", "--secrets-file", str(file)),
        *("--set", f"port={server}"),
        env=env,
    )
    assert run.returncode == 1, run.stderr  # steps failed, as written
    run_id = run.stderr.split()[1]
    shown = cli(project, "show", run_id, "--json", env=env)
    logs = [cli(project, "logs", run_id, step, env=env) for step in ("shout", "give", "tail")]
    events = (project / "events.jsonl").read_text()
    sinks = {
        "run stdout (--json)": run.stdout,
        "run stderr": run.stderr,
        "--events": events,
        "show --json": shown.stdout + shown.stderr,
        **{f"logs {i}": p.stdout + p.stderr for i, p in enumerate(logs)},
        "the store's files": store_bytes(project / ".pardag"),
    }
    assert {name: leaks(text) for name, text in sinks.items() if leaks(text)} == {}
    # ... and *** stands where each value was
    result = json.loads(run.stdout)
    shout = {"stdout": "A=*** C=*** D=***\nB= *** P= none\n", "stderr": "warn ***\n"}
    assert result["outputs"]["shout"] == {**shout, "exit_code": 0}
    assert result["outputs"]["give"]["nested"] == [{"again": result["outputs"]["shout"]}]
    steps = json.loads(shown.stdout)["steps"]
    assert "boom: {'stdout': 'A=*** C=*** D=***\\nB= ***" in steps["boom"]["error"]
    assert "stderr tail *** *** ***" in steps["tail"]["error"]
    assert "token=***&b=***&a=***" in steps["fetch"]["error"]  # the URL, as sent, masked
    assert "warn ***" in logs[0].stdout and "logged {'stdout': 'A=*** C=***" in logs[1].stdout
    assert f"{MASK}" in events and "step_failed" in events


def run_python(flow: Path, server: int, store: str) -> pardag.RunResult:
    """The Python API's run: A from the environment, B from a secrets file, C a
    ``pardag.Secret`` param, D given with ``run(secrets=)``."""
    wf = pardag.load(flow)
    file = secrets_file(flow.parent, "B")
    os.environ["PARDAG_SECRET_A"] = VALUES["A"]
    try:
        return wf.run(
            params={"c": Secret(VALUES["C"], name="C"), "port": server},
            secrets={"D": VALUES["D"]},
            secrets_file=file,
            store=store,
        )
    finally:
        del os.environ["PARDAG_SECRET_A"]


def check_python_result(result: pardag.RunResult) -> None:
    assert result.status is pardag.RunStatus.FAILED
    shown = repr(result) + repr(dict(result.outputs)) + repr(result.params)
    shown += "".join(
        str(s.error) + (s.error.traceback if s.error else "") for s in result.steps.values()
    )
    assert leaks(shown) == []
    assert result.outputs["shout"]["stdout"] == "A=*** C=*** D=***\nB= *** P= ***\n"
    assert result.params["c"] == MASK
    assert "boom: {'stdout': 'A=***" in str(result.steps["boom"].error)


def test_no_sink_of_a_python_run_holds_a_secret(flow: Path, server: int) -> None:
    directory = flow.parent / "store"
    result = run_python(flow, server, str(directory / "runs.db"))
    check_python_result(result)
    assert leaks(store_bytes(directory)) == []


def test_no_row_of_a_postgres_store_holds_a_secret(flow: Path, server: int) -> None:
    psycopg = pytest.importorskip("psycopg")
    from psycopg import sql

    from tests.store.conftest import LOCAL_URL, answers, with_search_path

    if os.environ.get("PARDAG_SKIP_POSTGRES") == "1" or answers(LOCAL_URL) is not None:
        pytest.skip(f"no PostgreSQL at {LOCAL_URL}")
    schema = f"t_secrets_{os.getpid()}"
    with psycopg.connect(LOCAL_URL, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    try:
        url = with_search_path(LOCAL_URL, schema)
        check_python_result(run_python(flow, server, url))
        with psycopg.connect(url, autocommit=True) as conn:
            tables = [
                row[0]
                for row in conn.execute(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                    (schema,),
                )
            ]
            dump = "".join(
                str(row)
                for table in tables
                for row in conn.execute(
                    sql.SQL("SELECT t::text FROM {}.{} t").format(
                        sql.Identifier(schema), sql.Identifier(table)
                    )
                )
            )
        assert "steps" in tables and "***" in dump
        assert leaks(dump) == []
    finally:
        with psycopg.connect(LOCAL_URL, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
