"""A stored workflow's triggers, registered when it is stored: webhooks get their secrets here.

Storing a workflow (``POST /api/workflows``) makes its declared triggers (``pardag.triggers``)
the registered ones of that workflow: a trigger it declared before stays as it was (a webhook
keeps its secret, a schedule its fired slots), a new webhook gets a new secret, shown in that
answer only, and what it no longer declares is removed (deleting the workflow removes all).
A webhook's name is unique in its organisation: a name another workflow has is a 409.
"""

from __future__ import annotations

import secrets
import time
import uuid
from typing import Any

from pardag.server.errors import ApiError
from pardag.store.base import Store
from pardag.store.triggers import TriggerRecord
from pardag.triggers import TriggerSpec, Webhook

__all__ = ["SECRET_PREFIX", "check_names", "register", "trigger_json"]

SECRET_PREFIX = "pdgh_"
"""A webhook secret is this and 256 random bits (URL-safe base64): recognisable in a leak."""


def check_names(store: Store, org: str, name: str, declared: tuple[TriggerSpec, ...]) -> None:
    """A 409 if a webhook ``declared`` for workflow ``name`` is another workflow's (checked
    before the workflow is stored, so that a refused one stores nothing)."""
    for spec in declared:
        if not isinstance(spec, Webhook):
            continue
        found = store.webhook(org, spec.name)
        versions = store.workflow_versions(org, found.workflow_id) if found else []
        if versions and versions[-1].name != name:
            raise ApiError(
                409,
                "conflict",
                f"webhook {spec.name!r} belongs to workflow {versions[-1].name!r} "
                f"({found.workflow_id if found else ''}); give this one another name, or "
                "delete that workflow first",
            )


def register(
    store: Store, org: str, workflow_id: str, declared: tuple[TriggerSpec, ...]
) -> list[dict[str, Any]]:
    """Make ``declared`` the triggers of the stored workflow; each as JSON, a new webhook's
    with its secret."""
    now = time.time()
    wanted = [_record(spec, org, workflow_id, now) for spec in declared]
    made = {t.trigger_id for t in store.set_triggers(org, workflow_id, wanted)}
    current = store.list_triggers(org, workflow_id)
    return [trigger_json(t, with_secret=t.trigger_id in made) for t in current]


def _record(spec: TriggerSpec, org: str, workflow_id: str, now: float) -> TriggerRecord:
    ident = "trg_" + uuid.uuid4().hex[:16]
    if isinstance(spec, Webhook):
        secret = SECRET_PREFIX + secrets.token_urlsafe(32)
        return TriggerRecord(ident, org, workflow_id, "webhook", spec.name, None, None, secret, now)
    return TriggerRecord(ident, org, workflow_id, "cron", None, spec.cron, spec.timezone, None, now)


def trigger_json(trigger: TriggerRecord, *, with_secret: bool = False) -> dict[str, Any]:
    """A trigger as the API shows it; a webhook's secret only when ``with_secret`` (once)."""
    if trigger.kind == "cron":
        return {
            "id": trigger.trigger_id,
            "kind": "cron",
            "cron": trigger.cron,
            "timezone": trigger.timezone,
        }
    out = {
        "id": trigger.trigger_id,
        "kind": "webhook",
        "name": trigger.name,
        "url": f"/hooks/{trigger.org}/{trigger.name}",
    }
    if with_secret:
        out["secret"] = trigger.secret
    return out
