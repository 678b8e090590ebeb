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

import functools
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
from pardag.secrets import MASK, FileSource, Masker, Secret, SecretMissing, Secrets
from pardag.steplog import StepLog
from pardag.store import open_store
from pardag.store.masked import MaskedStore
from pardag.testing.stores import Opener, StoreSuite

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
    retry: {retries: 1, delay: 0}
  coded:
    kind: python
    depends_on: [shout]
    code: |
      def run(inputs):
          print("coded", inputs["shout"]["stdout"])
          return inputs["shout"]["stdout"]
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
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
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


def private(directory: Path, text: str, mode: int = 0o600) -> Path:
    """A secrets file holding ``text``, with ``mode``."""
    path = directory / "private.env"
    path.write_text(text)
    path.chmod(mode)
    return path


def secrets_file(directory: Path, names: str) -> Path:
    """A private secrets file with the planted secrets ``names`` (JSON-quoted values)."""
    return private(directory, "".join(f"{n}={json.dumps(VALUES[n])}\n" for n in names))


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
    logs = [cli(project, "logs", run_id, s, env=env) for s in ("shout", "give", "tail", "coded")]
    tables = [cli(project, "show", run_id, *step, env=env) for step in ((), ("boom",))]
    events = (project / "events.jsonl").read_text()
    sinks = {
        "run stdout (--json)": run.stdout,
        "run stderr": run.stderr,
        "--events": events,
        "show --json": shown.stdout + shown.stderr,
        **{f"logs {i}": p.stdout + p.stderr for i, p in enumerate(logs)},
        **{f"show {i}": p.stdout + p.stderr for i, p in enumerate(tables)},
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
    assert "coded A=*** C=*** D=***" in logs[3].stdout  # printed in a worker process
    assert "boom: {'stdout': 'A=***" in tables[1].stdout  # its traceback, as text
    assert "warn ***" in logs[0].stdout and "logged {'stdout': 'A=*** C=***" in logs[1].stdout
    retrying = [json.loads(line) for line in events.splitlines() if "step_retrying" in line]
    assert "A=*** C=*** D=***" in retrying[0]["data"]["error"]


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


# -- the parts --------------------------------------------------------------------------------


def test_a_secret_never_shows_its_value() -> None:
    secret = Secret("hunter2-xyz")
    assert str(secret) == MASK and "hunter2" not in repr(secret)
    assert f"{secret}" == MASK and secret.reveal() == "hunter2-xyz"
    assert "TOKEN" in repr(Secret.named("TOKEN")) and Secret.named("TOKEN").reveal() is None


def test_the_masker_finds_each_spelling_of_a_value() -> None:
    value = 'p@ss/w+rd "q"'
    masker = Masker([value])
    spelt = [
        value,
        json.dumps(value),  # in JSON
        repr(value),  # in a traceback's repr
        "https://x/?t=" + "p%40ss%2Fw%2Brd%20%22q%22",  # URL-encoded (quote)
        "?t=p%40ss%2Fw%2Brd+%22q%22",  # quote_plus
    ]
    for text in spelt:
        assert "ss/w" not in masker.text(text) and "ss%2Fw" not in masker.text(text)
        assert MASK in masker.text(text)
    nested = {"k": [value, {"deep": f"x{value}y"}], value: 1}
    assert masker.value(nested) == {"k": [MASK, {"deep": f"x{MASK}y"}], MASK: 1}
    stored = masker.json(json.dumps({"out": value, "n": 12}))
    assert json.loads(stored or "") == {"out": MASK, "n": 12}  # still JSON


def test_the_longest_value_is_masked_first() -> None:
    masker = Masker(["abcd", "abcdefgh"])
    assert masker.text("xabcdefghx abcd") == "x***x ***"


def test_a_secret_split_across_two_pieces_of_a_log_is_masked_whole() -> None:
    """A step's log is handed on in pieces; a secret cut between two is still masked."""
    secret = "split-S3crX-9999"
    pieces: list[str] = []
    log = StepLog(lambda seq, stream, text: pieces.append(text), mask=Masker([secret]))
    log.write("stdout", "x" * (70 * 1024) + secret[:7])  # past FLUSH_BYTES: handed on now
    assert pieces and not pieces[-1].endswith(secret[:7])  # its beginning waits
    log.write("stdout", secret[7:] + " done\n")
    log.close()
    text = "".join(pieces)
    assert "S3crX" not in text and text.endswith("x" + MASK + " done\n")


def test_a_secret_a_shell_step_writes_in_two_pieces_is_stored_masked(tmp_path: Path) -> None:
    """The log reaches the store in pieces (64 KiB, or after a quiet half second): the start
    of a secret at the end of one piece waits for the rest, so no piece holds a part."""
    wf = pardag.Workflow("w", secrets=["A"])
    slow = "printf '%70000s' ' '; printf 'alpha-S3crA'; sleep 1; printf -- '-1111 end\\n'"
    wf.add("slow", kind="shell", params={"command": slow})
    store = tmp_path / "runs.db"
    result = wf.run(store=str(store), secrets={"A": VALUES["A"]}, secret_sources=[])
    assert result.ok, result.error
    with open_store(str(store)) as opened:
        pieces = opened.get_logs(result.run_id, "slow")
    assert "".join(p.text for p in pieces).endswith(f"{MASK} end\n")
    assert [p.text[-20:] for p in pieces if "S3cr" in p.text] == []
    assert leaks(store_bytes(tmp_path)) == []


def test_a_secrets_file_others_may_read_is_refused(tmp_path: Path) -> None:
    path = private(tmp_path, "TOKEN=abcdefgh\n", mode=0o644)
    with pytest.raises(SecretMissing, match=r"mode 0644.*chmod 600"):
        FileSource(path).get("TOKEN")
    path.chmod(0o600)
    assert FileSource(path).get("TOKEN") == "abcdefgh"


def test_a_secrets_file_line_that_is_not_name_value_is_named(tmp_path: Path) -> None:
    path = private(tmp_path, '# comment\nexport A=\'single $quoted\'\nB="a \\"b\\""\nnot a line\n')
    with pytest.raises(SecretMissing, match=r"private.env:4: expected NAME=value"):
        FileSource(path).get("A")
    path.write_text('# comment\nexport A=\'single $quoted\'\nB="a \\"b\\""\n')
    assert FileSource(path).get("A") == "single $quoted" and FileSource(path).get("B") == 'a "b"'


def test_a_declared_secret_with_no_value_stops_the_run_before_it_starts(tmp_path: Path) -> None:
    wf = pardag.Workflow("w", secrets=["API_TOKEN"])
    ran: list[int] = []
    wf.add("a", lambda: ran.append(1))
    store = tmp_path / "runs.db"
    with pytest.raises(SecretMissing) as caught:
        wf.run(store=str(store), secret_sources=[])
    message = str(caught.value)
    assert "'API_TOKEN' has no value" in message and "--secrets-file" in message
    assert "secrets={'API_TOKEN'" in message
    with pytest.raises(SecretMissing, match="PARDAG_SECRET_API_TOKEN"):
        wf.run()
    with pytest.raises(SecretMissing, match="at least 4 characters"):
        wf.run(secrets={"API_TOKEN": "ab"})
    assert ran == [] and not store.exists()


def test_a_template_reading_an_undeclared_secret_is_a_validation_problem() -> None:
    wf = pardag.Workflow("w", secrets=["TOKEN"])
    wf.add("call", kind="shell", params={"command": "echo {{ secrets.TOKNE }}"})
    with pytest.raises(pardag.ValidationError) as caught:
        wf.compile()
    message = str(caught.value)
    assert "step 'call'" in message or "call" in message
    assert "command reads secrets.TOKNE" in message and "did you mean 'TOKEN'?" in message


CODED = """\
def run(inputs):
    text = inputs["tpl"]["stdout"].strip()
    assert text == "abcd-1234", text  # the real value reaches the worker
    print("coded", text)
    return text + " in a worker process"
"""


def test_a_secret_in_a_steps_params_is_a_problem_saying_how_to_give_it() -> None:
    wf = pardag.Workflow("w")
    headers = {"X-Api-Key": Secret("key-1234-abcd")}
    wf.add("call", kind="http", params={"url": "http://127.0.0.1:9/", "headers": headers})
    with pytest.raises(pardag.ValidationError) as caught:
        wf.compile()
    message = str(caught.value)
    assert "headers holds a pardag.Secret" in message and "{{ secrets.NAME }}" in message
    assert "key-1234" not in message


def test_shell_steps_get_each_secret_as_a_variable_and_templates_read_it() -> None:
    wf = pardag.Workflow("w", secrets=["TOKEN"])
    wf.add("env", kind="shell", params={"command": 'test "$TOKEN" = abcd-1234 && echo same'})
    wf.add("coded", kind="python", params={"code": CODED}, depends_on=["tpl"])
    wf.add("tpl", kind="shell", params={"command": "echo {{ secrets.TOKEN }}"})
    result = wf.run(secrets={"TOKEN": "abcd-1234"}, secret_sources=[])
    assert result.ok, result.error
    assert result.outputs["env"]["stdout"] == "same\n"
    assert result.outputs["tpl"]["stdout"] == MASK + "\n"  # ran with it, shown masked
    assert result.outputs["coded"] == f"{MASK} in a worker process"


GATED = """\
name: gated
secrets: [TOKEN]
params: {key: none}
steps:
  echo:
    kind: shell
    command: 'echo "$TOKEN"'
  ok:
    kind: approval
    prompt: go on?
    depends_on: [echo]
  gate:
    kind: shell
    depends_on: [ok, echo]
    command: 'echo "$INPUT_ECHO" | grep -q "$TOKEN" && test "$(printf %s {{ params.key }} | wc -c)" -eq 14 && echo {{ params.key }}'
"""


def test_a_resumed_run_takes_its_secrets_again_and_reruns_outputs_that_held_one(
    tmp_path: Path,
) -> None:
    """The store keeps no secret, so a run going on in a new process (here: after an
    approval) needs each again, from its sources, and a step whose output held one runs
    again rather than pass ``***`` downstream."""
    store = str(tmp_path / "runs.db")
    (tmp_path / "gated.yaml").write_text(GATED)
    wf = pardag.load(tmp_path / "gated.yaml")
    first = wf.run(
        store=store,
        secrets={"TOKEN": "tok-S3crR-5555"},
        params={"key": Secret("key-S3crK-6666")},
        secret_sources=[],
    )
    assert first.status is pardag.RunStatus.PAUSED
    with pytest.raises(SecretMissing, match="'TOKEN' has no value"):
        pardag.approve(first.run_id, "ok", store=store, secret_sources=[])
    given = private(tmp_path, "TOKEN=tok-S3crR-5555\nkey=key-S3crK-6666\n")
    again = pardag.approve(first.run_id, "ok", store=store, secret_sources=[FileSource(given)])
    assert again.ok, again.error
    assert again.steps["echo"].attempts == 2  # its output held the secret: it ran again
    assert again.outputs["gate"]["stdout"] == f"{MASK}\n"
    assert [t for t in ("S3crR", "S3crK") if t.encode() in store_bytes(tmp_path)] == []


def test_a_run_without_secrets_is_as_before() -> None:
    wf = pardag.Workflow("w")
    wf.add("a", lambda: {"x": "***not-masked"})
    result = wf.run()
    assert result.outputs["a"] == {"x": "***not-masked"}
    assert len(Secrets()) == 0 and not Secrets().masker


def test_a_shell_orchestrator_file_declares_secrets_too(tmp_path: Path) -> None:
    path = tmp_path / "sf.yaml"
    path.write_text(
        "name: sf\nsecrets: [API_TOKEN]\nsteps:\n"
        '  - name: a\n    command: test "$API_TOKEN" = tok-abcd-1234 && echo "t $API_TOKEN"\n'
    )
    wf = pardag.load(path)
    assert wf.secrets == ("API_TOKEN",)
    result = wf.run(secrets={"API_TOKEN": "tok-abcd-1234"}, secret_sources=[])
    assert result.ok, result.error
    assert result.outputs["a"]["stdout"] == f"t {MASK}\n"
    path.write_text(path.read_text().replace("[API_TOKEN]", "[API_TOKEN, 3]"))
    with pytest.raises(pardag.ValidationError, match=r"sf.yaml:2: secrets: 3 is not a valid"):
        pardag.load(path)


def test_a_step_process_inherits_no_secret_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A secret set for the runner (``PARDAG_SECRET_X``, the secrets file's path) does not reach
    the environment of a shell step, nor of a shell-orchestrator command, that did not ask for
    it; the one a step asks for still arrives."""
    monkeypatch.setenv("PARDAG_SECRET_DB_PASS", "hunter2-not-asked-for")
    monkeypatch.setenv("PARDAG_SECRET_API_TOKEN", "tok-abcd-1234")
    empty = tmp_path / "secrets.env"
    empty.write_text("# none here\n")
    empty.chmod(0o600)
    monkeypatch.setenv("PARDAG_SECRETS_FILE", str(empty))
    wf = pardag.Workflow("env", secrets=["API_TOKEN"])
    wf.add("shell", kind="shell", params={"command": "env | grep -c PARDAG_SECRET || true"})
    wf.add("asks", kind="shell", params={"command": "echo {{ secrets.API_TOKEN }}"})
    result = wf.run()
    assert result.outputs["shell"]["stdout"] == "0\n"
    assert result.outputs["asks"]["stdout"] == f"{MASK}\n"
    path = tmp_path / "sf.yaml"
    path.write_text("name: sf\nsteps:\n  - name: a\n    command: env\n")
    out = pardag.load(path).run().outputs["a"]["stdout"]
    assert "hunter2" not in out and "PARDAG_SECRET" not in out, out


def _masked_sqlite(path: str) -> MaskedStore:
    return MaskedStore(open_store(path), Masker(["never-in-the-records"]))


class TestMaskedStoreKeepsTheContract(StoreSuite):
    """A store seen through ``MaskedStore`` (with a secret the records do not hold) passes the
    store conformance suite: masking changes what holds a secret and nothing else."""

    @pytest.fixture
    def opener(self, tmp_path: Path) -> Opener:
        return functools.partial(_masked_sqlite, str(tmp_path / "store" / "runs.db"))
