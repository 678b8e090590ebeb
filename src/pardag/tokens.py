"""API tokens: made, checked and ranked here; kept (hashed) by the run store.

A token is ``pdg_`` and 256 random bits (``secrets.token_urlsafe(32)``). The store keeps its
SHA-256 only, so a copy of the store gives nobody a working token; a presented token is looked
up by its hash and the hashes compared in constant time (``hmac.compare_digest``). The text is
shown once, when made, and never written to a log, an event or an error.

Roles rank: viewer reads; operator also starts and cancels runs; approver also answers
approvals; admin also manages workflows and tokens (docs/server.md).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid

from pardag.errors import ArgumentError, PardagError
from pardag.store.base import Store
from pardag.store.tenancy import ROLES, TokenRecord
from pardag.units import parse_duration

__all__ = [
    "PREFIX",
    "ROLES",
    "TokenRefused",
    "check",
    "hash_token",
    "issue",
    "outranks",
    "parse_expiry",
]

_DAY = 86400.0

PREFIX = "pdg_"
"""How every pardag token begins, so that a leaked one is recognisable (secret scanners)."""


class TokenRefused(PardagError):
    """A presented token is malformed, unknown, revoked or expired; the message says which
    (never the token)."""


def hash_token(text: str) -> str:
    """The hex SHA-256 the store keeps for a token's text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def issue(
    store: Store, *, org: str, role: str, name: str, now: float, expires_in: float | None = None
) -> tuple[str, TokenRecord]:
    """Make a token for ``org`` with ``role``; (its text, to show once, and its record)."""
    if role not in ROLES:
        raise ArgumentError(f"role {role!r} is unknown; use one of {', '.join(ROLES)}")
    if not org.strip():
        raise ArgumentError("--org is empty; give the organisation's name, such as 'default'")
    if expires_in is not None and expires_in <= 0:
        raise ArgumentError(f"expires in {expires_in:g}s: give a duration above 0, such as 30d")
    text = PREFIX + secrets.token_urlsafe(32)
    expires_at = None if expires_in is None else now + expires_in
    record = TokenRecord(
        "tok_" + uuid.uuid4().hex[:12], org, role, name, hash_token(text), now, expires_at
    )
    store.create_token(record)
    return text, record


def check(store: Store, text: str, now: float) -> TokenRecord:
    """The record of the token ``text``, if it may be used at ``now``; else TokenRefused."""
    if not text.startswith(PREFIX) or len(text) > 200:
        raise TokenRefused(
            "the token is malformed: pardag tokens begin with pdg_ "
            "(send Authorization: Bearer pdg_...; pardag token create makes one)"
        )
    digest = hash_token(text)
    record = store.token_by_hash(digest)
    if record is None or not hmac.compare_digest(record.token_hash, digest):
        raise TokenRefused("the token is not known here; ask an admin for a token of this server")
    if record.revoked_at is not None:
        raise TokenRefused(f"token {record.token_id} was revoked; ask an admin for a new one")
    if record.expires_at is not None and record.expires_at <= now:
        raise TokenRefused(f"token {record.token_id} has expired; ask an admin for a new one")
    return record


def parse_expiry(text: str, what: str = "--expires") -> float:
    """Seconds from ``30d``, ``12h``, ``90m`` or ``3600s``; an error naming ``what``."""
    cleaned = text.strip().lower()
    try:
        if cleaned.endswith("d"):
            seconds = float(cleaned[:-1]) * _DAY
        else:
            seconds = parse_duration(cleaned, what)
    except ValueError:
        raise ArgumentError(
            f"{what} {text!r} is not a duration; write it like 30d, 12h, 90m or 3600s"
        ) from None
    if not seconds > 0 or seconds == float("inf"):
        raise ArgumentError(f"{what} {text!r}: give a duration above 0, such as 30d")
    return seconds


def outranks(have: str, need: str) -> bool:
    """Whether a token of role ``have`` may do what needs role ``need``."""
    return ROLES.index(have) >= ROLES.index(need)
