"""Signing in to the page: a token pasted once, kept in an HttpOnly, SameSite=Strict cookie.

The cookie holds the token itself, so revoking the token signs every browser out at its next
request, and any number of server processes accept it without sharing a session table. Every
state-changing form carries a CSRF token derived from the session's token (an HMAC of it), which
a page on another site can neither read nor compute; ``check_csrf`` refuses a form without it.
A page asked for without a valid session answers with a redirect to ``/login``.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from pardag.server.auth import COOKIE, Principal, store_of
from pardag.server.errors import ApiError
from pardag.server.ui.render import page
from pardag.tokens import TokenRefused, check, outranks

__all__ = ["LoginNeeded", "PageUser", "User", "check_csrf", "form_of", "router", "user_of"]

router = APIRouter(include_in_schema=False)

MAX_FORM = 256 * 1024
"""Bytes a page's form may send (an approval's answer is the largest)."""


class LoginNeeded(Exception):
    """No valid session: the page answers with a redirect to the login form."""

    def __init__(self, back: str, why: str = "") -> None:
        super().__init__(why)
        self.back, self.why = back, why


@dataclass(frozen=True)
class User:
    """A signed-in user: the principal of their token, and their forms' CSRF token."""

    who: Principal
    csrf: str
    name: str

    def may(self, role: str) -> bool:
        """Whether the user's role is ``role`` or above (which buttons the page shows)."""
        return outranks(self.who.role, role)


def csrf_of(token: str) -> str:
    """The CSRF token of the session holding ``token``."""
    return hmac.new(token.encode(), b"pardag page form", hashlib.sha256).hexdigest()[:40]


def user_of(request: Request) -> User:
    """The signed-in user; LoginNeeded without a valid session."""
    text = request.cookies.get(COOKIE)
    back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if not text:
        raise LoginNeeded(back)
    try:
        record = check(store_of(request), text, time.time())
    except TokenRefused as exc:
        raise LoginNeeded(back, str(exc)) from None
    return User(Principal(record.token_id, record.org, record.role), csrf_of(text), record.name)


PageUser = Annotated[User, Depends(user_of)]
"""A page's parameter: the signed-in user (a redirect to the login form otherwise)."""


async def form_of(request: Request) -> dict[str, str]:
    """A urlencoded form's fields (the last value of each)."""
    body = await request.body()
    if len(body) > MAX_FORM:
        raise ApiError(413, "too_large", f"the form is over {MAX_FORM // 1024} KiB")
    fields = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    return {name: values[-1] for name, values in fields.items()}


def check_csrf(user: User, form: dict[str, str], request: Request) -> None:
    """Refuse a form whose CSRF token (field ``csrf`` or header ``X-CSRF-Token``) is not the
    session's: a forged request from another page."""
    given = form.get("csrf") or request.headers.get("x-csrf-token") or ""
    if not hmac.compare_digest(given.encode(), user.csrf.encode()):
        raise ApiError(
            403,
            "csrf",
            "this form's security token is missing or stale: reload the page and send it again",
        )


def _safe_back(target: str | None) -> str:
    """Where to go after signing in: a path of this site only (never another site)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


@router.get("/login")
def login_form(request: Request, next: str = "/", why: str = "") -> Response:
    return page(request, "login.html", None, back=_safe_back(next), why=why)


@router.post("/login")
async def login(request: Request) -> Response:
    if request.headers.get("sec-fetch-site") == "cross-site":  # another site signing you in
        raise ApiError(403, "cross_site", "sign in from this site's own login form")
    form = await form_of(request)
    text, back = form.get("token", "").strip(), _safe_back(form.get("next"))
    try:
        check(store_of(request), text, time.time())
    except TokenRefused as exc:
        refused = page(request, "login.html", None, back=back, why=str(exc))
        refused.status_code = 401
        return refused
    answer = RedirectResponse(back, status_code=303)
    answer.set_cookie(
        COOKIE,
        text,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    return answer


@router.post("/logout")
async def logout(request: Request, user: PageUser) -> Response:
    check_csrf(user, await form_of(request), request)
    answer = RedirectResponse("/login", status_code=303)
    answer.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return answer


def to_login(request: Request, exc: Exception) -> Response:
    """The answer to LoginNeeded: the login form, then back to the page asked for."""
    assert isinstance(exc, LoginNeeded)
    target = f"/login?next={quote(exc.back, safe='')}"
    if exc.why:
        target += f"&why={quote(exc.why, safe='')}"
    if request.headers.get("hx-request"):  # htmx follows a redirect inside the page: go whole
        return Response(status_code=204, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)
