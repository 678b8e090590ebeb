"""The run page's buttons: cancel, retry, approve and reject, as forms.

Each form is checked for the session's CSRF token, then for the user's role, then done by the
API's own code for the same action (``routes_runs``), so the page and the API refuse the same
things in the same words. Success redirects back to the run (post, redirect, get); a refusal is
an error page saying why, with the status the API would answer.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from pardag.server import routes_runs
from pardag.server.auth import require, store_of
from pardag.server.errors import ApiError
from pardag.server.routes_runs import RetryIn, run_of
from pardag.server.ui.approvals import answer_from
from pardag.server.ui.session import PageUser, User, check_csrf, form_of
from pardag.server.ui.snapshot import approval_fields, compiled_of
from pardag.store.base import APPROVED, REJECTED

__all__ = ["checked_form", "router"]

router = APIRouter(include_in_schema=False)


async def checked_form(request: Request, user: User, role: str) -> dict[str, str]:
    form = await form_of(request)
    check_csrf(user, form, request)
    require(user.who, role)
    return form


def _back(run_id: str, done: str) -> Response:
    return RedirectResponse(f"/runs/{run_id}?done={done}", status_code=303)


@router.post("/runs/{run_id}/cancel")
async def cancel(request: Request, run_id: str, user: PageUser) -> Response:
    await checked_form(request, user, "operator")
    await run_in_threadpool(routes_runs.cancel_run, request, Response(), run_id, user.who)
    return _back(run_id, "cancel")


@router.post("/runs/{run_id}/retry")
async def retry(request: Request, run_id: str, user: PageUser) -> Response:
    form = await checked_form(request, user, "operator")
    asked = RetryIn.model_validate(
        {"from": form.get("from") or "failed", "downstream": form.get("downstream") == "1"}
    )
    await run_in_threadpool(routes_runs.retry_run, request, run_id, user.who, asked)
    return _back(run_id, "retry")


@router.post("/runs/{run_id}/steps/{step}/approve")
async def approve(request: Request, run_id: str, step: str, user: PageUser) -> Response:
    form = await checked_form(request, user, "approver")
    record = await run_in_threadpool(run_of, store_of(request), user.who, run_id)
    fields = approval_fields(compiled_of(record), step) or []
    try:
        value = answer_from(fields, form)
    except ValueError as exc:
        raise ApiError(422, "invalid_answer", f"step {step!r}: {exc}") from None
    await run_in_threadpool(
        routes_runs.answer, request, user.who, run_id, step, APPROVED, value, None
    )
    return _back(run_id, "approve")


@router.post("/runs/{run_id}/steps/{step}/reject")
async def reject(request: Request, run_id: str, step: str, user: PageUser) -> Response:
    form = await checked_form(request, user, "approver")
    reason = form.get("reason", "").strip() or None
    await run_in_threadpool(
        routes_runs.answer, request, user.who, run_id, step, REJECTED, None, reason
    )
    return _back(run_id, "reject")
