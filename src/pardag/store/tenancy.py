"""What the service keeps beside runs: API tokens and stored workflows, each in one organisation.

A token is kept as the SHA-256 of its text, never the text: whoever reads the store cannot
use a token they find there. A stored workflow is a definition (a file's text) under a name in
an organisation, in numbered versions: posting the same name again adds a version, and a run
is started from the latest. Both SQL backends run the statements here
(``pardag.store.sql``); nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

__all__ = [
    "ROLES",
    "StoredWorkflow",
    "TokenRecord",
    "token_from_row",
    "workflow_from_row",
]

ROLES = ("viewer", "operator", "approver", "admin")
"""The roles a token can have, each with the rights of those before it (docs/server.md)."""


@dataclass
class TokenRecord:
    """An API token: ``token_hash`` is the hex SHA-256 of the token's text (the text itself is
    shown once, when it is created, and kept nowhere). ``expires_at`` None never expires;
    ``revoked_at`` set: refused from then on."""

    token_id: str
    org: str
    role: str
    name: str
    token_hash: str
    created_at: float
    expires_at: float | None = None
    revoked_at: float | None = None


@dataclass
class StoredWorkflow:
    """One version of a workflow kept in the store: ``definition`` is its file's text in
    ``format`` (``yaml``, ``json`` or ``toml``), ``workflow_id`` the same for every version
    of ``name`` in ``org``."""

    workflow_id: str
    version: int
    org: str
    name: str
    format: str
    definition: str
    created_at: float


TOKEN_COLUMNS = tuple(f.name for f in fields(TokenRecord))
WORKFLOW_COLUMNS = tuple(f.name for f in fields(StoredWorkflow))

MIGRATION = (
    """CREATE TABLE api_tokens (
        token_id TEXT NOT NULL PRIMARY KEY,
        org TEXT NOT NULL,
        role TEXT NOT NULL CHECK (role IN ('viewer', 'operator', 'approver', 'admin')),
        name TEXT NOT NULL,
        token_hash TEXT NOT NULL UNIQUE,
        created_at DOUBLE PRECISION NOT NULL,
        expires_at DOUBLE PRECISION,
        revoked_at DOUBLE PRECISION
    )""",
    "CREATE INDEX api_tokens_by_org ON api_tokens (org, created_at)",
    """CREATE TABLE workflow_versions (
        workflow_id TEXT NOT NULL,
        version INTEGER NOT NULL,
        org TEXT NOT NULL,
        name TEXT NOT NULL,
        format TEXT NOT NULL,
        definition TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (workflow_id, version),
        UNIQUE (org, name, version)
    )""",
)
"""Schema version 5's statements (``schema.MIGRATIONS``)."""

TABLES = ("api_tokens", "workflow_versions")

_TOKENS = ", ".join(TOKEN_COLUMNS)
_WORKFLOWS = ", ".join(WORKFLOW_COLUMNS)

INSERT_TOKEN = f"INSERT INTO api_tokens ({_TOKENS}) VALUES ({', '.join('?' * len(TOKEN_COLUMNS))})"
SELECT_TOKEN_BY_HASH = f"SELECT {_TOKENS} FROM api_tokens WHERE token_hash = ?"
SELECT_TOKENS = f"SELECT {_TOKENS} FROM api_tokens ORDER BY created_at, token_id"
SELECT_ORG_TOKENS = f"SELECT {_TOKENS} FROM api_tokens WHERE org = ? ORDER BY created_at, token_id"
COUNT_TOKENS = "SELECT COUNT(*) FROM api_tokens"
REVOKE_TOKEN = (
    "UPDATE api_tokens SET revoked_at = ? WHERE token_id = ? AND revoked_at IS NULL "
    "RETURNING token_id"
)

INSERT_WORKFLOW = (
    f"INSERT INTO workflow_versions ({_WORKFLOWS}) "
    f"VALUES ({', '.join('?' * len(WORKFLOW_COLUMNS))})"
)
LATEST_OF_NAME = (
    "SELECT workflow_id, MAX(version) FROM workflow_versions WHERE org = ? AND name = ? "
    "GROUP BY workflow_id"
)
SELECT_VERSIONS = (
    f"SELECT {_WORKFLOWS} FROM workflow_versions WHERE org = ? AND workflow_id = ? ORDER BY version"
)
SELECT_LATEST = (
    f"SELECT {_WORKFLOWS} FROM workflow_versions w WHERE org = ? AND version = "
    "(SELECT MAX(v.version) FROM workflow_versions v WHERE v.workflow_id = w.workflow_id) "
    "ORDER BY name, workflow_id"
)
DELETE_WORKFLOW = (
    "DELETE FROM workflow_versions WHERE org = ? AND workflow_id = ? RETURNING version"
)


def token_from_row(values: Any) -> TokenRecord:
    return TokenRecord(*values)


def workflow_from_row(values: Any) -> StoredWorkflow:
    return StoredWorkflow(*values)
