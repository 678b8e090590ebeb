"""``/api/secrets``: the caller's organisation's secrets, for admins; never a value back.

``PUT`` seals a value into the store (``pardag.vault``) with the service's key; ``GET`` lists
names and times; ``DELETE`` forgets one. No route returns a value, and an error never holds
one: a value too short is refused by its length, not shown. The key is the one ``pardag
serve`` was given (``app.state.keyring``), else ``PARDAG_SECRET_KEY`` or the default key file.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, Field

from pardag.secrets import MIN_LENGTH, check_name
from pardag.server.auth import Admin, not_found, store_of
from pardag.server.errors import ApiError
from pardag.vault import Keyring, SecretKeyError, delete_secret, list_secrets, set_secret

__all__ = ["router"]

router = APIRouter(prefix="/api/secrets", tags=["secrets"])

Name = Annotated[str, Path(max_length=200, description="Letters, digits and _, e.g. API_TOKEN.")]


class SecretIn(BaseModel):
    """A secret's new value (kept sealed; never returned)."""

    value: str = Field(min_length=MIN_LENGTH, description="The value; never returned.")


def _keyring(request: Request) -> Keyring:
    keyring = getattr(request.app.state, "keyring", None)
    return keyring if isinstance(keyring, Keyring) else Keyring()


@router.put("/{name}", summary="Set a secret of the organisation (its value is never returned)")
def put_secret(request: Request, name: Name, body: SecretIn, who: Admin) -> dict[str, Any]:
    check_name(name)
    store = store_of(request)
    try:
        created = set_secret(store, _keyring(request), who.org, name, body.value, time.time())
    except SecretKeyError as exc:  # the server's setting, not the caller's request
        raise ApiError(503, "secret_key", str(exc)) from None
    found = next(i for i in list_secrets(store, who.org) if i.name == name)
    return {**found.shown(), "created": created}


@router.get("", summary="The organisation's secrets: names and times, never values")
def get_secrets(request: Request, who: Admin) -> dict[str, Any]:
    return {"secrets": [i.shown() for i in list_secrets(store_of(request), who.org)]}


@router.delete("/{name}", summary="Delete a secret of the organisation")
def remove_secret(request: Request, name: Name, who: Admin) -> dict[str, Any]:
    if not delete_secret(store_of(request), who.org, name):
        raise not_found("secret", name)
    return {"deleted": name}
