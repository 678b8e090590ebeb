"""``/api/tokens``: an organisation's API tokens, managed by its admins over the API.

The same tokens as ``pardag token create|list|revoke`` (``pardag.tokens``), always in the
caller's organisation: an admin makes tokens for its own organisation only, lists only its
own, and another organisation's token is a 404 to revoke. A new token's text is in the answer
that makes it, once; lists carry no text and no hash.
"""

from __future__ import annotations

import time
from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from pardag.server.auth import Admin, not_found, store_of
from pardag.server.errors import ApiError
from pardag.store.tenancy import TokenRecord
from pardag.tokens import issue, parse_expiry

__all__ = ["router", "token_json"]

router = APIRouter(prefix="/api/tokens", tags=["tokens"])


class TokenIn(BaseModel):
    """A token to make: its role, a label, a lifetime (``30d``, ``12h``; none: never
    expires), and optionally the organisation, which must be the caller's."""

    model_config = ConfigDict(extra="forbid")

    role: Literal["viewer", "operator", "approver", "admin"]
    name: str = Field(default="", max_length=200)
    expires: str | None = Field(default=None, max_length=40, description="Such as 30d or 12h.")
    org: str | None = Field(default=None, max_length=200)


def token_json(token: TokenRecord, now: float) -> dict[str, Any]:
    """A token as lists show it: never its text or hash."""
    if token.revoked_at is not None:
        status = "revoked"
    elif token.expires_at is not None and token.expires_at <= now:
        status = "expired"
    else:
        status = "active"
    fields = ("org", "role", "name", "created_at", "expires_at", "revoked_at")
    return {"id": token.token_id, **{f: getattr(token, f) for f in fields}, "status": status}


@router.post("", status_code=201, summary="Make a token (its text is shown once, here)")
def create_token(request: Request, body: TokenIn, who: Admin) -> dict[str, Any]:
    if body.org is not None and body.org != who.org:
        raise ApiError(
            403,
            "forbidden",
            f"token {who.token_id} is an admin of {who.org!r} and makes tokens for it only; "
            f"an admin of {body.org!r} makes that organisation's tokens",
        )
    lifetime = parse_expiry(body.expires, "expires") if body.expires is not None else None
    now = time.time()
    text, record = issue(
        store_of(request), org=who.org, role=body.role, name=body.name, now=now, expires_in=lifetime
    )
    return {**token_json(record, now), "token": text}


@router.get("", summary="The organisation's tokens (no text, no hash)")
def list_tokens(request: Request, who: Admin) -> dict[str, Any]:
    now = time.time()
    return {"tokens": [token_json(t, now) for t in store_of(request).list_tokens(who.org)]}


@router.delete("/{token_id}", summary="Revoke a token (its requests and streams are refused)")
def revoke_token(request: Request, token_id: str, who: Admin) -> dict[str, Any]:
    store = store_of(request)
    mine = {t.token_id: t for t in store.list_tokens(who.org)}
    if token_id not in mine:
        raise not_found("token", token_id)
    if mine[token_id].revoked_at is None:
        store.revoke_token(token_id, time.time())
    return {"revoked": token_id}
