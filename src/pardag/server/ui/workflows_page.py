"""The workflows list, a workflow (its graph, versions and definition) and its Run form.

The Run form has one field per param the workflow declares, its default filled in; a value is
read as JSON when the default is not a string (``3``, ``[1, 2]``, ``true``), so that a param
keeps its type. Starting the run is the API's own ``start_run``, queued for a worker, and the
page goes to the new run.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from pardag.server import routes_workflows
from pardag.server.auth import store_of
from pardag.server.definitions import read_definition
from pardag.server.errors import ApiError
from pardag.server.routes_workflows import RunIn, versions_of
from pardag.server.ui.actions import checked_form
from pardag.server.ui.render import page
from pardag.server.ui.session import PageUser
from pardag.server.ui.snapshot import graph_json

__all__ = ["router"]

router = APIRouter(include_in_schema=False)


@router.get("/workflows")
def workflows(request: Request, user: PageUser) -> Response:
    listed = store_of(request).list_workflows(user.who.org)
    return page(request, "workflows.html", user, workflows=listed)


@router.get("/workflows/{workflow_id}")
def workflow_page(request: Request, workflow_id: str, user: PageUser) -> Response:
    versions = versions_of(request, user.who, workflow_id)
    latest = versions[-1]
    wf = read_definition(latest.name, latest.format, latest.definition)
    graph = graph_json(wf.compile(), [])
    graph["critical"] = []
    params = {name: _shown(value) for name, value in wf.params.items()}
    return page(
        request,
        "workflow.html",
        user,
        workflow=latest,
        versions=list(reversed(versions)),
        data={"graph": graph},
        params=params,
    )


def _shown(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


@router.post("/workflows/{workflow_id}/run")
async def run_workflow(request: Request, workflow_id: str, user: PageUser) -> Response:
    form = await checked_form(request, user, "operator")
    versions = await run_in_threadpool(versions_of, request, user.who, workflow_id)
    latest = versions[-1]
    wf = read_definition(latest.name, latest.format, latest.definition)
    params = {
        name: _param(name, form[f"p.{name}"], default)
        for name, default in wf.params.items()
        if f"p.{name}" in form
    }
    started = await run_in_threadpool(
        routes_workflows.start_run, request, workflow_id, RunIn(params=params), user.who
    )
    return RedirectResponse(f"/runs/{started['id']}", status_code=303)


def _param(name: str, raw: str, default: Any) -> Any:
    if isinstance(default, str):
        return raw
    try:
        return json.loads(raw)
    except ValueError:
        raise ApiError(
            422,
            "invalid_param",
            f"param {name!r}: {raw[:60]!r} is not JSON; its default is {json.dumps(default)}, "
            "so give a value of that kind",
        ) from None
