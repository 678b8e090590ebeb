"""What the store keeps of an organisation's secrets: each value sealed, never the value.

``pardag.vault`` encrypts a value (Fernet, with the service's secret key) before it gets here,
so a row holds the ciphertext only: whoever reads the store without the key reads no secret.
A secret is (organisation, name), set again to replace its value. Both SQL backends run the
statements here (``pardag.store.sql``); nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["SecretInfo", "info_from_row"]


@dataclass
class SecretInfo:
    """What may be shown of a stored secret: its name and times, never its value."""

    org: str
    name: str
    created_at: float
    updated_at: float

    def shown(self) -> dict[str, str | float]:
        """What the API and ``pardag secret list --json`` show of it."""
        return {"name": self.name, "created_at": self.created_at, "updated_at": self.updated_at}


MIGRATION = (
    """CREATE TABLE org_secrets (
        org TEXT NOT NULL,
        name TEXT NOT NULL,
        ciphertext TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (org, name)
    )""",
)
"""The statements of the schema version that adds the table (``schema.MIGRATIONS``)."""

TABLES = ("org_secrets",)

UPSERT_SECRET = (
    "INSERT INTO org_secrets (org, name, ciphertext, created_at, updated_at) "
    "VALUES (?, ?, ?, ?, ?) ON CONFLICT (org, name) DO UPDATE SET "
    "ciphertext = excluded.ciphertext, updated_at = excluded.updated_at RETURNING created_at"
)
SELECT_CIPHERTEXT = "SELECT ciphertext FROM org_secrets WHERE org = ? AND name = ?"
SELECT_ANY_CIPHERTEXT = "SELECT ciphertext FROM org_secrets WHERE org = ? ORDER BY name LIMIT 1"
SELECT_INFOS = (
    "SELECT org, name, created_at, updated_at FROM org_secrets WHERE org = ? ORDER BY name"
)
DELETE_SECRET = "DELETE FROM org_secrets WHERE org = ? AND name = ? RETURNING name"


def info_from_row(values: Any) -> SecretInfo:
    org, name, created_at, updated_at = values
    return SecretInfo(str(org), str(name), float(created_at), float(updated_at))
