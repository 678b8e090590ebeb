"""Who is asking: a Bearer token turned into a ``Principal`` (organisation and role).

A browser signed in to the page (``pardag.server.ui``) sends its token in the ``COOKIE``
cookie instead (HttpOnly, SameSite=Strict); the API takes it only for reading (GET and HEAD),
so that a state-changing call always carries a header a page on another site cannot send.
Each route declares the role it needs with ``Depends(need(ROLE))``; ``need`` remembers the
dependency it made (``ROLE_OF``), so that a test can check that every route declares one.
No token, a malformed, unknown, revoked or expired one is a 401; a token whose role is too
low a 403. Another organisation's object is never a 403 but a 404 (``not_found``): whether it
exists is not revealed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.routing import APIRoute

from pardag.server.errors import ApiError
from pardag.store.base import Store
from pardag.tokens import TokenRefused, check, outranks

__all__ = [
    "COOKIE",
    "ROLE_OF",
    "Admin",
    "Approver",
    "Operator",
    "Principal",
    "Viewer",
    "authenticate",
    "credentials",
    "need",
    "not_found",
    "require",
    "store_of",
    "unguarded",
]


@dataclass(frozen=True)
class Principal:
    """The caller: its token's id, organisation and role."""

    token_id: str
    org: str
    role: str


COOKIE = "pardag_session"
"""The page's session cookie: the token the user signed in with."""
SAFE = frozenset({"GET", "HEAD"})
"""The methods the API takes the session cookie for."""

ROLE_OF: dict[Callable[..., Principal], str] = {}
"""Each dependency ``need`` made, and the role it requires."""

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="pardag"'}


def store_of(request: Request) -> Store:
    """The run store the app serves."""
    store: Store = request.app.state.store
    return store


def authenticate(store: Store, header: str | None) -> Principal:
    """The principal of an ``Authorization`` header; ApiError 401 saying what is wrong."""
    if not header:
        raise ApiError(
            401,
            "unauthenticated",
            "this needs a token: send Authorization: Bearer pdg_... "
            "(pardag token create makes one)",
            _CHALLENGE,
        )
    scheme, _, text = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not text.strip():
        raise ApiError(
            401,
            "unauthenticated",
            "the Authorization header is malformed: send Authorization: Bearer pdg_...",
            _CHALLENGE,
        )
    try:
        record = check(store, text.strip(), time.time())
    except TokenRefused as exc:
        raise ApiError(401, "unauthenticated", str(exc), _CHALLENGE) from None
    return Principal(record.token_id, record.org, record.role)


def credentials(request: Request) -> str | None:
    """The ``Authorization`` header, else for a GET the page's session cookie as one."""
    header = request.headers.get("authorization")
    cookie = request.cookies.get(COOKIE)
    if header or not cookie or request.method not in SAFE:
        return header
    return f"Bearer {cookie}"


def require(who: Principal, role: str) -> None:
    """ApiError 403 unless ``who``'s role is ``role`` or a higher one (the API's routes, by
    ``need``, and the web page's forms)."""
    if not outranks(who.role, role):
        raise ApiError(
            403,
            "forbidden",
            f"this needs the {role} role, and token {who.token_id} is a {who.role}; "
            f"ask an admin for a token with the {role} role",
        )


def need(role: str) -> Callable[[Request], Principal]:
    """A dependency admitting callers whose token has ``role`` or a higher one."""

    def principal(request: Request) -> Principal:
        who = authenticate(store_of(request), credentials(request))
        require(who, role)
        request.state.principal = who  # for the middleware counting streams (streams.py)
        return who

    ROLE_OF[principal] = role
    return principal


def not_found(what: str, ident: str) -> ApiError:
    """The one answer for an object that is missing or another organisation's."""
    return ApiError(404, "not_found", f"there is no {what} {ident!r} in your organisation")


Viewer = Annotated[Principal, Depends(need("viewer"))]
"""A route parameter admitting any token: the caller, for reading."""
Operator = Annotated[Principal, Depends(need("operator"))]
"""Admitting operators and above: starting and cancelling runs."""
Approver = Annotated[Principal, Depends(need("approver"))]
"""Admitting approvers and above: answering approvals."""
Admin = Annotated[Principal, Depends(need("admin"))]
"""Admitting admins: storing and deleting workflows."""


def unguarded(routes: Iterable[APIRoute]) -> list[str]:
    """The paths of ``routes`` that do not declare exactly one role (``need``)."""
    out = []
    for route in routes:
        calls = [dep.call for dep in route.dependant.dependencies]
        if sum(call in ROLE_OF for call in calls) != 1:
            out.append(route.path)
    return out
