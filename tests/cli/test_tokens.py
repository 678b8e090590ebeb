"""``pardag token create|list|revoke``: a token printed once, kept hashed, refused once revoked."""

from __future__ import annotations

import json
import time
from pathlib import Path

from pardag.store import open_store
from pardag.tokens import TokenRefused, check
from tests.cli.support import pardag


def test_a_token_is_printed_once_kept_hashed_and_revoked(project: Path) -> None:
    made = pardag(project, "token", "create", "--org", "acme", "--role", "operator", "--name", "ci")
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert token.startswith("pdg_") and len(token) == 47  # 256 bits, url-safe base64
    assert token not in made.stderr and "shown once" in made.stderr
    store_file = project / ".pardag" / "runs.db"
    assert token.encode() not in store_file.read_bytes()  # only its hash is kept

    listed = pardag(project, "token", "list", "--json")
    [entry] = json.loads(listed.stdout)
    assert (entry["org"], entry["role"], entry["name"]) == ("acme", "operator", "ci")
    assert entry["status"] == "active, never expires" and token not in listed.stdout
    with open_store(store_file) as store:
        assert check(store, token, time.time()).token_id == entry["token_id"]

    revoked = pardag(project, "token", "revoke", entry["token_id"])
    assert revoked.returncode == 0, revoked.stderr
    assert "revoked" in pardag(project, "token", "list").stdout
    with open_store(store_file) as store:
        try:
            check(store, token, time.time())
        except TokenRefused as exc:
            assert "was revoked" in str(exc)
        else:
            raise AssertionError("a revoked token was accepted")
    again = pardag(project, "token", "revoke", entry["token_id"])
    assert again.returncode == 2 and "no token" in again.stderr


def test_an_expiry_and_a_bad_role_are_checked(project: Path) -> None:
    made = pardag(
        project, "token", "create", "--org", "acme", "--role", "admin", "--expires", "30d"
    )
    assert made.returncode == 0, made.stderr
    [entry] = json.loads(pardag(project, "token", "list", "--json").stdout)
    assert abs(entry["expires_at"] - entry["created_at"] - 30 * 86400) < 1
    bad = pardag(project, "token", "create", "--org", "acme", "--role", "root")
    assert bad.returncode == 2 and "role 'root' is unknown; use one of viewer" in bad.stderr
    bad = pardag(
        project, "token", "create", "--org", "acme", "--role", "admin", "--expires", "soon"
    )
    assert bad.returncode == 2 and "--expires 'soon' is not a duration" in bad.stderr
    assert "Traceback" not in bad.stderr
