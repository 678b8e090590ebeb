"""``/api/runs``: an organisation's runs, their steps and logs, and steering them.

A run of another organisation is a 404, as a run that does not exist; lists never include
one. Run ids are exact here (the command line's id prefixes could match another organisation's
runs). Cancelling goes through ``pardag.history.cancel``: a run a worker holds gets a cancel
request (a 202: the worker stops it within about its poll interval), any other unfinished run
is cancelled at once (a 200); an answer to an approval is checked
and recorded as ``pardag approve`` does, then the run is queued again for a worker to go on
with it (the request does not wait for the run). A retry goes through ``pardag.retry``,
queued for a worker: what the run's state refuses is a 409, a ``from`` naming no step a 422,
each in the engine's words.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from pardag import history
from pardag.errors import ArgumentError
from pardag.rerun import ALL, FAILED, plan_retry, retry
from pardag.server.auth import Approver, Operator, Principal, Viewer, not_found, store_of
from pardag.server.errors import ApiError
from pardag.server.shapes import attempt_json, run_json, steps_json
from pardag.states import RunStatus
from pardag.store.base import APPROVED, REJECTED, RunRecord, Store, StoreError

__all__ = [
    "RetryIn",
    "after_cursor",
    "answer",
    "cancel_run",
    "cursor_of",
    "retry_run",
    "router",
    "run_of",
    "time_of",
]

router = APIRouter(prefix="/api/runs", tags=["runs"])


PAGE = 50
"""Runs per page of ``GET /api/runs``."""


def run_of(store: Store, who: Principal, run_id: str) -> RunRecord:
    """The caller's run ``run_id`` (exactly that id); a 404 for any other."""
    try:
        record = store.get_run(run_id)
    except StoreError as exc:  # an ambiguous prefix names other runs, maybe others': not found
        if "ambiguous" not in str(exc):
            raise  # the store is unreachable: a 503 saying so
        record = None
    if record is None or record.run_id != run_id or record.org != who.org:
        raise not_found("run", run_id)
    return record


def cursor_of(record: RunRecord) -> str:
    raw = json.dumps([record.created_at, record.run_id]).encode()
    return base64.urlsafe_b64encode(raw).decode()


def after_cursor(cursor: str) -> tuple[float, str]:
    try:
        created, run_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        return float(created), str(run_id)
    except (ValueError, TypeError, binascii.Error):
        raise ApiError(
            400, "bad_cursor", "cursor is not one this API gave; pass next_cursor as it came"
        ) from None


@router.get("", summary="The organisation's runs, newest first, a page at a time")
def list_runs(
    request: Request,
    who: Viewer,
    workflow: str | None = None,
    status: str | None = None,
    since: str | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = PAGE,
) -> dict[str, Any]:
    history.check_status(status, "status")
    before = after_cursor(cursor) if cursor else None
    start = time_of(since) if since else None
    found = store_of(request).list_runs(
        workflow=workflow, status=status, org=who.org, before=before, limit=limit + 1
    )
    if start is not None:  # newest first: past the first older run, every other is older
        found = [r for r in found if r.created_at >= start]
    page = found[:limit]
    following = cursor_of(page[-1]) if len(found) > limit else None
    return {"runs": [run_json(r) for r in page], "next_cursor": following}


def time_of(text: str) -> float:
    """``since=``: seconds since the epoch, or an ISO 8601 time (UTC unless it says)."""
    try:
        seconds = float(text)
    except ValueError:
        seconds = None
    if seconds is not None and math.isfinite(seconds):
        return seconds
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ApiError(
            400,
            "bad_since",
            f"since={text!r} is no time: give seconds since the epoch (1764770400) or an ISO "
            "8601 time (2026-12-03T14:00:00Z)",
        ) from None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


@router.get("/{run_id}", summary="A run and its steps")
def get_run(request: Request, run_id: str, who: Viewer) -> dict[str, Any]:
    store = store_of(request)
    record = run_of(store, who, run_id)
    return {**run_json(record), "steps": steps_json(store.get_steps(run_id))}


@router.get("/{run_id}/steps/{step}", summary="A step: every attempt, outputs and tracebacks")
def get_step(request: Request, run_id: str, step: str, who: Viewer) -> dict[str, Any]:
    store = store_of(request)
    run_of(store, who, run_id)
    attempts = [s for s in store.get_steps(run_id) if s.step_id == step]
    if not attempts:
        raise not_found("step", step)
    return {"run": run_id, "step": step, "attempts": [attempt_json(a) for a in attempts]}


@router.get("/{run_id}/logs", summary="What the steps wrote (one step's with ?step=)")
def get_logs(request: Request, run_id: str, who: Viewer, step: str | None = None) -> dict[str, Any]:
    store = store_of(request)
    run_of(store, who, run_id)
    names = [step] if step else list(dict.fromkeys(s.step_id for s in store.get_steps(run_id)))
    pieces = [
        {"step": p.step_id, "attempt": p.attempt, "stream": p.stream, "text": p.text}
        for name in names
        for p in store.get_logs(run_id, name)
    ]
    return {"run": run_id, "logs": pieces}


@router.post(
    "/{run_id}/cancel",
    summary="Cancel a run that has not finished",
    responses={202: {"description": "Cancel requested: the worker holding the run stops it"}},
)
def cancel_run(request: Request, response: Response, run_id: str, who: Operator) -> dict[str, Any]:
    store = store_of(request)
    run_of(store, who, run_id)
    by = f"token {_token_name(store, who)} over the API"
    said = _refused_as_conflict(lambda: history.cancel(run_id, store=store, by=by))
    record = run_of(store, who, run_id)
    if record.status == RunStatus.RUNNING and record.cancel_requested is not None:
        response.status_code = 202  # the worker has yet to stop it
    return {**run_json(record), "message": said}


def _token_name(store: Store, who: Principal) -> str:
    """The caller's token's name, as cancelled steps name who cancelled them (its id when
    the token is gone meanwhile)."""
    for token in store.list_tokens(who.org):
        if token.token_id == who.token_id:
            return repr(token.name)
    return who.token_id


class ApprovalIn(BaseModel):
    """An approval's answer: ``input`` is the step's output (checked against its schema)."""

    input: Any = Field(default=True)


class RejectionIn(BaseModel):
    """A rejection: the step fails with ``reason``."""

    reason: str = ""


@router.post("/{run_id}/steps/{step}/approve", status_code=202, summary="Approve a paused step")
def approve_step(
    request: Request, run_id: str, step: str, who: Approver, body: ApprovalIn | None = None
) -> dict[str, Any]:
    value = True if body is None else body.input
    return answer(request, who, run_id, step, APPROVED, value, None)


@router.post("/{run_id}/steps/{step}/reject", status_code=202, summary="Reject a paused step")
def reject_step(
    request: Request, run_id: str, step: str, who: Approver, body: RejectionIn | None = None
) -> dict[str, Any]:
    reason = body.reason if body is not None else ""
    return answer(request, who, run_id, step, REJECTED, None, reason or None)


def answer(
    request: Request,
    who: Principal,
    run_id: str,
    step: str,
    decision: str,
    value: Any,
    reason: str | None,
) -> dict[str, Any]:
    store = store_of(request)
    record = run_of(store, who, run_id)
    if RunStatus(record.status).is_final():
        raise ApiError(409, "conflict", f"run {run_id} already finished: {record.status}")
    if record.status != RunStatus.PAUSED:
        raise ApiError(
            409,
            "conflict",
            f"run {run_id} is not paused yet (it is {record.status}): answer once it has paused "
            "(a run goes on with its other steps first, and reads answers when it resumes)",
        )
    _refused_as_conflict(
        lambda: history.record_answer(store, run_id, step, decision, value, reason)
    )
    if not store.requeue(run_id):
        raise ApiError(
            409,
            "conflict",
            f"run {run_id} was queued again by another answer meanwhile; it goes on with the "
            "answers recorded when a worker takes it",
        )
    return run_json(run_of(store, who, run_id))


class RetryIn(BaseModel):
    """A retry: which steps run again (``failed``, ``all`` or a step's id) and whether what
    depends on them does too."""

    model_config = ConfigDict(populate_by_name=True)

    from_: str = Field(default=FAILED, alias="from", min_length=1, max_length=200)
    downstream: bool = True


@router.post("/{run_id}/retry", status_code=202, summary="Retry a finished run (queued)")
def retry_run(
    request: Request, run_id: str, who: Operator, body: RetryIn | None = None
) -> dict[str, Any]:
    asked = body or RetryIn()
    store = store_of(request)
    _check_retry(store, run_of(store, who, run_id), asked)
    from_, downstream = asked.from_, asked.downstream
    _refused_as_conflict(
        lambda: retry(run_id, from_=from_, downstream=downstream, queue=True, store=store)
    )
    return run_json(run_of(store, who, run_id))


def _check_retry(store: Store, record: RunRecord, asked: RetryIn) -> None:
    """The engine's refusal of a retry, if any: a 422 when ``from`` names no step of a
    finished run, else a 409 (the run has not finished, or nothing of it failed)."""
    try:
        plan_retry(store, record, asked.from_, asked.downstream)
    except ArgumentError as exc:
        unknown = RunStatus(record.status).is_final() and asked.from_ not in (FAILED, ALL)
        code = "unknown_step" if unknown else "conflict"
        raise ApiError(422 if unknown else 409, code, str(exc)) from None


def _refused_as_conflict(act: Any) -> Any:
    """``act()``; what pardag refuses for the run's state (an ArgumentError) is a 409."""
    try:
        return act()
    except ArgumentError as exc:
        raise ApiError(409, "conflict", str(exc)) from None
