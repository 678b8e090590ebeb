"""The runs list, a run, and a step: the page's reading side.

Each page is whole HTML that reads without JavaScript (the list, a run's table of steps, a
step's attempts and logs); the page's script (``static/js``) adds the live parts on top: the
list's rows update, the run's DAG and timeline follow its event stream from the snapshot's
``seq`` on, a running step's log tails.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, RedirectResponse, Response

from pardag.errors import ArgumentError
from pardag.instances import instance_parent, instances_of
from pardag.server.auth import not_found, store_of
from pardag.server.errors import ApiError
from pardag.server.routes_runs import run_of
from pardag.server.shapes import attempt_json, steps_json
from pardag.server.ui.listing import TRIGGERS, Filters, list_runs, trigger_of
from pardag.server.ui.render import page
from pardag.server.ui.session import PageUser
from pardag.server.ui.snapshot import run_view
from pardag.states import RunStatus
from pardag.store.base import RunRecord, Store
from pardag.store.tenancy import StoredWorkflow

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

LOG_LIMIT = 2 * 1024 * 1024
"""Characters of a step's log the step page shows (the download has all of it)."""


@router.get("/")
def home() -> Response:
    return RedirectResponse("/runs", status_code=303)


@router.get("/runs")
def runs(request: Request, user: PageUser) -> Response:
    filters = Filters.of(request.query_params)
    store = store_of(request)
    since = store.last_gseq()  # before the list is read: the stream brings what follows
    try:
        listing, problem = list_runs(store, user.who.org, filters), None
    except (ApiError, ArgumentError) as exc:  # a filter's bad value: said above the list
        listing, problem = None, str(exc)
    workflows = sorted({w.name for w in store.list_workflows(user.who.org)})
    return page(
        request,
        "runs.html",
        user,
        listing=listing,
        problem=problem,
        filters=filters,
        statuses=[s.value for s in RunStatus],
        triggers=TRIGGERS,
        workflows=workflows,
        trigger_of=trigger_of,
        gseq=since,
    )


@router.get("/runs/{run_id}/row")
def run_row(request: Request, run_id: str, user: PageUser) -> Response:
    record = run_of(store_of(request), user.who, run_id)
    return page(request, "_run_row.html", user, run=record, trigger_of=trigger_of)


DONE = {
    "cancel": "Cancel asked: the run stops within its worker's poll interval.",
    "retry": "Retry queued: a worker runs the chosen steps again.",
    "approve": "Approved: the run goes on once a worker takes it.",
    "reject": "Rejected: the step fails with your reason.",
}
"""What the run's page says after each of its forms (``?done=``)."""


@router.get("/runs/{run_id}")
def run_page(request: Request, run_id: str, user: PageUser, done: str = "") -> Response:
    store = store_of(request)
    view = run_view(store, run_of(store, user.who, run_id))
    return page(
        request,
        "run.html",
        user,
        view=view,
        actions=_actions(view.record.status),
        version=version_of(store, view.record),
        done=DONE.get(done, ""),
    )


def version_of(store: Store, record: RunRecord) -> StoredWorkflow | None:
    """The stored workflow version whose text the run ran (None: not a stored workflow's)."""
    for stored in store.list_workflows(record.org):
        if stored.name == record.workflow:
            versions = store.workflow_versions(record.org, stored.workflow_id)
            return next((v for v in versions if v.definition == record.definition), None)
    return None


@router.get("/runs/{run_id}/panel/{step}")
def step_panel(request: Request, run_id: str, step: str, user: PageUser) -> Response:
    """The side panel of a step of the run's graph: its state, why, its retry buttons, and a
    mapped step's instances."""
    store = store_of(request)
    record = run_of(store, user.who, run_id)
    records = store.get_steps(run_id)
    mine = [r for r in records if r.step_id == step]
    ids = {r.step_id for r in records}
    mapped = instances_of(ids).get(step, [])  # in item order
    wanted = set(mapped)
    latest = {s["step"]: s for s in steps_json([r for r in records if r.step_id in wanted])}
    instances = [latest[sid] for sid in mapped]
    return page(
        request,
        "_panel.html",
        user,
        run=record,
        step=step,
        latest=mine[-1] if mine else None,
        attempts=len(mine),
        instances=instances,
        retry=RunStatus(record.status).is_final() and instance_parent(step, ids) is None,
    )


def _actions(status: str) -> dict[str, bool]:
    """Which of a run's actions its status allows (the user's role is checked apart)."""
    state = RunStatus(status)
    return {
        "cancel": not state.is_final(),
        "retry": state.is_final() and state is not RunStatus.SUCCEEDED,
        "retry_all": state.is_final(),
    }


@router.get("/runs/{run_id}/steps/{step}")
def step_page(request: Request, run_id: str, step: str, user: PageUser) -> Response:
    store = store_of(request)
    record = run_of(store, user.who, run_id)
    attempts = [attempt_json(a) for a in store.get_steps(run_id) if a.step_id == step]
    if not attempts:
        raise not_found("step", step)
    logs = store.get_logs(run_id, step)
    text, cut = _joined(logs)
    last = [logs[-1].attempt, logs[-1].seq] if logs else [0, 0]
    return page(
        request,
        "step.html",
        user,
        run=record,
        step=step,
        attempts=attempts,
        log=text,
        log_cut=cut,
        log_after=last,
        live=not RunStatus(record.status).is_final(),
    )


def _joined(logs: list[Any]) -> tuple[str, bool]:
    text = "".join(p.text for p in logs)
    return (text[-LOG_LIMIT:], True) if len(text) > LOG_LIMIT else (text, False)


@router.get("/runs/{run_id}/steps/{step}/log")
def step_log(
    request: Request, run_id: str, step: str, user: PageUser, attempt: int = 0, seq: int = 0
) -> dict[str, Any]:
    """What the step wrote after (attempt, seq): the step page's live tail reads this."""
    store = store_of(request)
    record = run_of(store, user.who, run_id)
    pieces = store.get_logs(run_id, step, after=(attempt, seq))
    last = [pieces[-1].attempt, pieces[-1].seq] if pieces else [attempt, seq]
    return {
        "text": "".join(p.text for p in pieces),
        "after": last,
        "final": RunStatus(record.status).is_final(),
    }


@router.get("/runs/{run_id}/steps/{step}/log.txt")
def step_log_download(request: Request, run_id: str, step: str, user: PageUser) -> Response:
    store = store_of(request)
    run_of(store, user.who, run_id)
    text = "".join(p.text for p in store.get_logs(run_id, step))
    name = f"{run_id[:12]}-{step}.log".replace('"', "")
    return PlainTextResponse(
        text, headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )
