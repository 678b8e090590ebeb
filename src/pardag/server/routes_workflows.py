"""``/api/workflows``: an organisation's stored workflows, and starting runs of them.

Admins store and delete workflows (a definition is validated before it is kept: a 422 lists
every problem, with lines); viewers read them; operators start runs, queued in the store for
the workers with the caller's organisation (``pardag.worker.submit``), marked as the API's so
that workers run them under the service's egress preset.
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, model_validator

from pardag.server.auth import Admin, Operator, Principal, Viewer, not_found, store_of
from pardag.server.definitions import read_definition
from pardag.server.shapes import run_json, workflow_json
from pardag.server.triggers import check_names, register, trigger_json
from pardag.states import Mode, OnFailure
from pardag.store.tenancy import StoredWorkflow
from pardag.worker import submit

__all__ = ["RUN_SETTINGS", "router"]

router = APIRouter(prefix="/api/workflows", tags=["workflows"])


class WorkflowIn(BaseModel):
    """A workflow to store: its file's text and the syntax it is written in."""

    definition: str = Field(min_length=1, description="The workflow file's text.")
    format: Literal["yaml", "json", "toml"] = "yaml"
    name: str | None = Field(
        None, min_length=1, max_length=200, description="Default: the workflow's own name."
    )


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


def _versions(request: Request, who: Principal, workflow_id: str) -> list[StoredWorkflow]:
    versions = store_of(request).workflow_versions(who.org, workflow_id)
    if not versions:
        raise not_found("workflow", workflow_id)
    return versions


@router.post("", status_code=201, summary="Store a workflow (a new version of its name)")
def post_workflow(request: Request, body: WorkflowIn, who: Admin) -> dict[str, Any]:
    wf = read_definition(body.name, body.format, body.definition)
    name = body.name or wf.name
    store = store_of(request)
    check_names(store, who.org, name, wf.triggers)
    stored = store.put_workflow(who.org, name, body.format, body.definition, time.time())
    answer = workflow_json(stored, _versions(request, who, stored.workflow_id))
    return {**answer, "triggers": register(store, who.org, stored.workflow_id, wf.triggers)}


@router.get("", summary="The organisation's workflows (latest versions)")
def list_workflows(request: Request, who: Viewer) -> dict[str, Any]:
    return {"workflows": [workflow_json(w) for w in store_of(request).list_workflows(who.org)]}


@router.get("/{workflow_id}", summary="A workflow: its latest definition and its versions")
def get_workflow(request: Request, workflow_id: str, who: Viewer) -> dict[str, Any]:
    versions = _versions(request, who, workflow_id)
    triggers = store_of(request).list_triggers(who.org, workflow_id)
    return {**workflow_json(versions[-1], versions), "triggers": list(map(trigger_json, triggers))}


@router.delete("/{workflow_id}", summary="Delete a workflow, every version")
def delete_workflow(request: Request, workflow_id: str, who: Admin) -> dict[str, Any]:
    if not store_of(request).delete_workflow(who.org, workflow_id):
        raise not_found("workflow", workflow_id)
    return {"deleted": workflow_id}


@router.post("/{workflow_id}/runs", status_code=202, summary="Start a run (queued for a worker)")
def start_run(request: Request, workflow_id: str, body: RunIn, who: Operator) -> dict[str, Any]:
    latest = _versions(request, who, workflow_id)[-1]
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
