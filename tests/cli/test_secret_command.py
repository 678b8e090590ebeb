"""``pardag secret set|list|delete`` as real processes: a value read from stdin, never shown
or stored in clear; the key file made private on first use; a queued run of the organisation,
run by ``pardag worker --secret-key-file``, reads it; errors name the fix, with no traceback."""

from __future__ import annotations

import hashlib
import json
import os
import pty
import select
import stat
import subprocess
import sys
import time
from pathlib import Path

from cryptography.fernet import Fernet

from pardag.store import open_store
from pardag.vault import Keyring, StoredSecrets
from tests.cli.support import clean_env, write

VALUE = "cli-secret-7d1e0b55"
FLOW = """\
name: reads-token
secrets: [TOKEN]
steps:
  show:
    kind: shell
    command: 'echo "got {{ secrets.TOKEN }}"; printf %s "$TOKEN" | sha256sum'
"""


def pardag(cwd: Path, *args: str, stdin: str = "", **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pardag", *args],
        cwd=cwd,
        env=clean_env(**env),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_secret_set_from_stdin_serves_a_queued_run_and_is_never_shown(tmp_path: Path) -> None:
    done = pardag(tmp_path, "secret", "set", "acme", "TOKEN", stdin=VALUE + "\n")
    assert done.returncode == 0, done.stderr
    assert "secret TOKEN of acme set" in done.stderr
    key_file = tmp_path / ".pardag" / "secret.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    again = pardag(tmp_path, "secret", "set", "acme", "TOKEN", stdin=VALUE)  # same, no newline
    assert again.returncode == 0 and "replaced" in again.stderr
    listed = pardag(tmp_path, "secret", "list", "acme")
    as_json = pardag(tmp_path, "secret", "list", "acme", "--json")
    assert listed.stdout.startswith("TOKEN  set ")
    assert [s["name"] for s in json.loads(as_json.stdout)] == ["TOKEN"]
    assert pardag(tmp_path, "secret", "list", "other", "--json").stdout.strip() == "[]"

    write(tmp_path, "f.yaml", FLOW)
    queued = pardag(tmp_path, "run", "f.yaml", "--queue", "--org", "acme")
    assert queued.returncode == 0, queued.stderr
    worked = pardag(
        tmp_path, "worker", "--until-idle", "--poll", "0.05s", "--secret-key-file", str(key_file)
    )
    assert worked.returncode == 0, worked.stderr
    with open_store(tmp_path / ".pardag" / "runs.db") as store:
        [run] = store.list_runs()
    assert run.status == "succeeded", run.error
    shown = pardag(tmp_path, "logs", run.run_id, "show")
    assert hashlib.sha256(VALUE.encode()).hexdigest() in shown.stdout  # the step read it
    assert "got ***" in shown.stdout
    outputs = [done, again, listed, as_json, queued, worked, shown]
    assert all(VALUE not in p.stdout + p.stderr for p in outputs)
    files = b"".join(p.read_bytes() for p in (tmp_path / ".pardag").iterdir() if p.is_file())
    assert VALUE.encode() not in files

    deleted = pardag(tmp_path, "secret", "delete", "acme", "TOKEN")
    assert deleted.returncode == 0 and "secret TOKEN of acme deleted" in deleted.stderr
    gone = pardag(tmp_path, "secret", "delete", "acme", "TOKEN")
    assert gone.returncode == 2
    assert "organisation 'acme' has no secret 'TOKEN'" in gone.stderr
    assert "pardag secret list acme" in gone.stderr


def test_no_value_a_value_as_an_argument_or_a_wrong_key_is_refused_saying_why(
    tmp_path: Path,
) -> None:
    empty = pardag(tmp_path, "secret", "set", "acme", "TOKEN", stdin="")
    assert empty.returncode == 2
    assert "no value for the secret 'TOKEN' on stdin; pipe it in" in empty.stderr
    argued = pardag(tmp_path, "secret", "set", "acme", "TOKEN", VALUE)
    assert argued.returncode == 2 and "unexpected extra argument" in argued.stderr
    assert pardag(tmp_path, "secret", "set", "acme", "A", stdin=VALUE).returncode == 0
    wrong = pardag(
        tmp_path,
        "secret",
        "set",
        "acme",
        "B",
        stdin=VALUE,
        PARDAG_SECRET_KEY="Zm9vYmFyZm9vYmFyZm9vYmFyZm9vYmFyZm9vYmFyMTI=",
    )
    assert wrong.returncode == 2
    assert "sealed with another key than the one from PARDAG_SECRET_KEY" in wrong.stderr
    assert "Traceback" not in wrong.stderr + empty.stderr
    short = pardag(tmp_path, "secret", "set", "acme", "C", stdin="abc")
    assert short.returncode == 2 and "at least 4 characters" in short.stderr


def _read_until(fd: int, wanted: bytes, seen: bytes = b"") -> bytes:
    """What the terminal ``fd`` shows, read until ``wanted`` or its end."""
    deadline = time.monotonic() + 60
    while wanted not in seen:
        assert time.monotonic() < deadline, seen
        if select.select([fd], [], [], 0.1)[0]:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # the other end closed: the process exited
                break
            if not chunk:
                break
            seen += chunk
    return seen


def test_in_a_terminal_the_value_is_asked_for_and_not_echoed(tmp_path: Path) -> None:
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "pardag", "secret", "set", "acme", "TOKEN"],
        cwd=tmp_path,
        env=clean_env(TERM="xterm"),
        stdin=follower,
        stdout=follower,
        stderr=follower,
        start_new_session=True,
    )
    os.close(follower)
    try:
        seen = _read_until(leader, b"value of TOKEN: ")  # the space: once echo is off
        os.write(leader, VALUE.encode() + b"\n")
        seen = _read_until(leader, b"\x00never", seen)  # to its end
        assert proc.wait(timeout=60) == 0, seen
    finally:
        proc.kill()
        os.close(leader)
    assert b"secret TOKEN of acme set" in seen and VALUE.encode() not in seen  # no echo
    with open_store(tmp_path / ".pardag" / "runs.db") as store:
        keyring = Keyring(tmp_path / ".pardag" / "secret.key")
        assert StoredSecrets(store, "acme", keyring).get("TOKEN") == VALUE


def test_reseal_moves_an_organisations_secrets_to_the_new_key(tmp_path: Path) -> None:
    old, new = (Fernet.generate_key().decode() for _ in range(2))
    first = pardag(tmp_path, "secret", "set", "acme", "A", stdin=VALUE, PARDAG_SECRET_KEY=old)
    assert first.returncode == 0, first.stderr
    refused = pardag(tmp_path, "secret", "set", "acme", "B", stdin=VALUE, PARDAG_SECRET_KEY=new)
    assert refused.returncode == 2  # A is sealed with the old key only
    resealed = pardag(tmp_path, "secret", "reseal", "acme", PARDAG_SECRET_KEY=f"{new},{old}")
    assert resealed.returncode == 0 and "1 secret(s) of acme sealed again" in resealed.stderr
    done = pardag(tmp_path, "secret", "set", "acme", "B", stdin=VALUE, PARDAG_SECRET_KEY=new)
    assert done.returncode == 0, done.stderr  # the new key alone opens A now
