"""``POST /hooks/{org}/{name}``: a webhook starts a run of its workflow, the body as trigger data.

No Bearer token: the caller proves it holds the hook's secret by signing the body, as GitHub
signs its webhooks: ``X-Pardag-Signature: sha256=<hex HMAC-SHA256 of the raw body, keyed with
the secret>``, compared in constant time. An unknown hook is a 404, a missing or wrong
signature a 401, a body over ``MAX_HOOK_BODY`` a 413, a body that is not a JSON object a 400;
else the latest version of the hook's workflow is queued (``worker.submit_stored``) with the
body as its trigger data, and the answer is a 202 with the run's id.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from starlette.concurrency import run_in_threadpool

from pardag.server.auth import store_of
from pardag.server.errors import ApiError
from pardag.store.base import Store
from pardag.worker import submit_stored

__all__ = ["MAX_HOOK_BODY", "SIGNATURE", "router", "signature"]

router = APIRouter(tags=["hooks"])

SIGNATURE = "X-Pardag-Signature"
"""The header carrying the body's signature."""
MAX_HOOK_BODY = 256 * 1024
"""The largest webhook body taken (trigger data is kept with the run)."""

_HOW = (
    f"send {SIGNATURE}: sha256=<the hex HMAC-SHA256 of the exact body, keyed with the "
    "webhook's secret (shown once, when its workflow was stored)>"
)


def signature(secret: str, body: bytes) -> str:
    """The header value that signs ``body`` with ``secret``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@router.post(
    "/hooks/{org}/{name}",
    status_code=202,
    summary="A webhook: start a run of its workflow (signed body, no token)",
)
async def hook(
    request: Request,
    org: str,
    name: str,
    x_pardag_signature: Annotated[str | None, Header()] = None,
) -> dict[str, Any]:
    body = await request.body()
    return await run_in_threadpool(_fire, store_of(request), org, name, body, x_pardag_signature)


def _fire(store: Store, org: str, name: str, body: bytes, signed: str | None) -> dict[str, Any]:
    trigger = store.webhook(org, name)
    if trigger is None or trigger.secret is None:
        raise ApiError(
            404,
            "not_found",
            f"there is no webhook {name!r} in organisation {org!r}; a webhook is declared in "
            "a stored workflow (triggers: [{webhook: NAME}])",
        )
    _verify(trigger.secret, body, signed, name)
    if len(body) > MAX_HOOK_BODY:
        raise ApiError(
            413,
            "too_large",
            f"the webhook's body is over {MAX_HOOK_BODY // 1024} KiB; send less",
        )
    data = _data(body)
    versions = store.workflow_versions(org, trigger.workflow_id)
    if not versions:  # deleted since the hook was looked up
        raise ApiError(404, "not_found", f"webhook {name!r}'s workflow was deleted")
    run_id = submit_stored(store, versions[-1], data, "webhook")
    return {"run_id": run_id, "status": "queued", "webhook": name}


def _verify(secret: str, body: bytes, signed: str | None, name: str) -> None:
    if not signed:
        raise ApiError(401, "unauthenticated", f"webhook {name!r} needs a signature: {_HOW}")
    expected = signature(secret, body)
    if not hmac.compare_digest(signed.strip().lower().encode(), expected.encode()):
        raise ApiError(
            401,
            "unauthenticated",
            f"the signature does not match the body of webhook {name!r}: {_HOW}",
        )


def _data(body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise ApiError(
            400, "refused", f"the webhook's body is not JSON ({exc}); send a JSON object"
        ) from None
    if not isinstance(data, dict):
        raise ApiError(
            400,
            "refused",
            f"the webhook's body is a JSON {type(data).__name__}; send a JSON object (its "
            "keys become the run's trigger data)",
        )
    return data
