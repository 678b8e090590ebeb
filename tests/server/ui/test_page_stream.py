"""The page's event streams sign in with the session cookie, and keep doing so.

A stream checks its token again every ``recheck`` seconds (0.2 s in the tests' service): with
the cookie it must stay open across those checks, and end once the cookie's token is revoked.
"""

from __future__ import annotations

import json
import time

import httpx

from pardag.server.auth import COOKIE
from pardag.tokens import issue
from tests.server.conftest import FLOW, PATIENCE, Served


def test_a_stream_followed_with_the_cookie_outlives_its_token_checks(site: Served) -> None:
    text, record = issue(site.store, org="acme", role="viewer", name="tab", now=time.time())
    workflow = site.workflow("admin", FLOW)  # a run of it takes 0.3 s and more
    after = site.store.last_gseq()
    started: list[str] = []
    finished: list[str] = []
    frames: list[str] = []
    with (
        httpx.Client(base_url=site.url, cookies={COOKIE: text}, timeout=PATIENCE) as client,
        client.stream(
            "GET", f"/api/events?after={after}", headers={"Accept": "text/event-stream"}
        ) as answer,
    ):
        assert answer.status_code == 200
        started.append(site.start("operator", workflow))
        for line in answer.iter_lines():
            if line.startswith("event: "):
                frames.append(line[7:])
            if not line.startswith("data: "):
                continue
            data = json.loads(line[6:])
            if data.get("kind") == "run_finished":
                finished.append(data["run"])
                if len(finished) == 1:  # it has lived through a check or more: one more run
                    started.append(site.start("operator", workflow))
                elif len(finished) == 2:
                    site.store.revoke_token(record.token_id, time.time())
    assert finished == started  # it outlived the checks...
    assert frames[-1] == "error"  # ...and ended once the token was revoked
