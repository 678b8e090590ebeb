"""``/api/workflows``: an organisation's stored workflows, and starting runs of them.

Admins store and delete workflows (a definition is validated before it is kept: a 422 lists
every problem, with lines); viewers read them; operators start runs, queued in the store for
the workers with the caller's organisation (``pardag.worker.submit``), marked as the API's so
that workers run them under the service's egress preset.
"""

from __future__ import annotations

import json
import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from pardag.server.auth import Admin, Operator, Principal, Viewer, not_found, store_of
from pardag.server.definitions import read_definition
from pardag.server.errors import ApiError
from pardag.server.shapes import run_json, workflow_json
from pardag.server.triggers import check_names, register, trigger_json
from pardag.states import Mode, OnFailure
from pardag.store.tenancy import StoredWorkflow
from pardag.worker import submit

__all__ = ["RUN_SETTINGS", "RunIn", "router", "versions_of"]

router = APIRouter(prefix="/api/workflows", tags=["workflows"])


class WorkflowIn(BaseModel):
    """A workflow to store: its file's text and the syntax it is written in."""

    definition: str = Field(min_length=1, description="The workflow file's text.")
    format: Literal["yaml", "json", "toml"] = "yaml"
    name: str | None = Field(
        None, min_length=1, max_length=200, description="Default: the workflow's own name."
    )


RAW_FORMATS = {
    "application/yaml": "yaml",
    "application/x-yaml": "yaml",
    "text/yaml": "yaml",
    "text/x-yaml": "yaml",
    "application/toml": "toml",
    "text/x-toml": "toml",
}
"""Content types of a workflow file sent as the body itself, and the syntax each means (a JSON
body is ``WorkflowIn``, or a workflow file written in JSON when it has neither
``definition`` nor ``format``)."""
_WORKFLOW_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/WorkflowIn"}},
            **{kind: {"schema": {"type": "string"}} for kind in RAW_FORMATS},
        },
    }
}


async def workflow_in(request: Request) -> WorkflowIn:
    """The workflow a ``POST /api/workflows`` sends: ``{name, definition, format}`` as JSON,
    or a workflow file itself (YAML or TOML by its content type; JSON without ``definition``
    or ``format``), named by ``?name=`` or by itself."""
    kind = request.headers.get("content-type", "application/json").split(";")[0].strip()
    text = (await request.body()).decode("utf-8", errors="replace")
    name = request.query_params.get("name") or None
    if kind in RAW_FORMATS:
        return _checked({"definition": text, "format": RAW_FORMATS[kind], "name": name})
    if kind != "application/json":
        known = ", ".join(["application/json", *RAW_FORMATS])
        raise ApiError(415, "unsupported_media_type", f"a workflow is sent as {known}, not {kind}")
    try:
        data = json.loads(text)
    except ValueError as exc:  # as FastAPI words a body that is not JSON
        error = {"type": "json_invalid", "loc": ("body", 0), "msg": "JSON decode error"}
        raise RequestValidationError([{**error, "input": {}, "ctx": {"error": str(exc)}}]) from None
    if isinstance(data, dict) and ("definition" in data or "format" in data):
        return _checked(data)  # no workflow file has those at its top
    return _checked({"definition": text, "format": "json", "name": name})


def _checked(data: dict[str, Any]) -> WorkflowIn:
    try:
        return WorkflowIn.model_validate(data)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from None


RUN_SETTINGS = ("mode", "max_concurrency", "on_failure", "timeout", "pools")
"""The settings a run started over the API may override. Where steps may connect
(``http_allow``/``http_deny``) and where they run (``executor``, ``dask_address``) are the
workflow file's, which only an admin stores."""


class RunSettings(BaseModel):
    """Settings a run overrides, typed (the rules of ``pardag.settings_rules`` apply after)."""

    model_config = ConfigDict(extra="forbid")

    mode: Mode | None = None
    max_concurrency: Annotated[int, Field(ge=0, strict=True)] | None = None
    on_failure: OnFailure | None = None
    timeout: Annotated[float, Field(gt=0, allow_inf_nan=False, strict=True)] | None = None
    pools: dict[str, Annotated[int, Field(ge=1, strict=True)]] | None = None

    @model_validator(mode="before")
    @classmethod
    def _only_run_settings(cls, given: Any) -> Any:
        refused = sorted(set(given) - set(RUN_SETTINGS)) if isinstance(given, dict) else []
        if refused:
            raise ValueError(
                f"{', '.join(refused)} cannot be set when starting a run; a run may set "
                f"{', '.join(RUN_SETTINGS)} (the others are the workflow file's: store a new "
                "version of it)"
            )
        return given


class RunIn(BaseModel):
    """A run to start: params over the workflow's, trigger data, setting overrides."""

    params: dict[str, Any] = Field(default_factory=dict)
    trigger_data: dict[str, Any] = Field(default_factory=dict)
    settings: RunSettings = Field(default_factory=RunSettings)


def versions_of(request: Request, who: Principal, workflow_id: str) -> list[StoredWorkflow]:
    """Every version of the caller's workflow ``workflow_id``, oldest first; a 404 for any
    other."""
    versions = store_of(request).workflow_versions(who.org, workflow_id)
    if not versions:
        raise not_found("workflow", workflow_id)
    return versions


@router.post(
    "",
    status_code=201,
    summary="Store a workflow (a new version of its name)",
    openapi_extra=_WORKFLOW_BODY,
)
def post_workflow(
    request: Request, body: Annotated[WorkflowIn, Depends(workflow_in)], who: Admin
) -> dict[str, Any]:
    wf = read_definition(body.name, body.format, body.definition)
    name = body.name or wf.name
    store = store_of(request)
    check_names(store, who.org, name, wf.triggers)
    stored = store.put_workflow(who.org, name, body.format, body.definition, time.time())
    answer = workflow_json(stored, versions_of(request, who, stored.workflow_id))
    return {**answer, "triggers": register(store, who.org, stored.workflow_id, wf.triggers)}


@router.get("", summary="The organisation's workflows (latest versions)")
def list_workflows(request: Request, who: Viewer) -> dict[str, Any]:
    return {"workflows": [workflow_json(w) for w in store_of(request).list_workflows(who.org)]}


@router.get("/{workflow_id}", summary="A workflow: its latest definition and its versions")
def get_workflow(request: Request, workflow_id: str, who: Viewer) -> dict[str, Any]:
    versions = versions_of(request, who, workflow_id)
    triggers = store_of(request).list_triggers(who.org, workflow_id)
    return {**workflow_json(versions[-1], versions), "triggers": list(map(trigger_json, triggers))}


@router.delete("/{workflow_id}", summary="Delete a workflow, every version")
def delete_workflow(request: Request, workflow_id: str, who: Admin) -> dict[str, Any]:
    if not store_of(request).delete_workflow(who.org, workflow_id):
        raise not_found("workflow", workflow_id)
    return {"deleted": workflow_id}


@router.post("/{workflow_id}/runs", status_code=202, summary="Start a run (queued for a worker)")
def start_run(request: Request, workflow_id: str, body: RunIn, who: Operator) -> dict[str, Any]:
    latest = versions_of(request, who, workflow_id)[-1]
    wf = read_definition(latest.name, latest.format, latest.definition)
    store = store_of(request)
    run_id = submit(
        wf,
        store=store,
        params=body.params,
        trigger=body.trigger_data,
        org=who.org,
        via="api",
        **body.settings.model_dump(exclude_none=True),
    )
    record = store.get_run(run_id)
    assert record is not None  # just queued
    return run_json(record)
